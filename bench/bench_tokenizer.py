"""Hugging Face twin of bench_tokenizer.cpp: single-thread encoding speed (MB/s) of a tokenizer.json
on a text file, one sequence per line, through encode_batch_fast (ids without offsets, HF's fastest
path) with one Rayon thread.

  .venv/bin/python bench/bench_tokenizer.py TOKENIZER_DIR TEXT_FILE [--repeat N]
  .venv/bin/python bench/bench_tokenizer.py --make-text OUT [--mb 8]

--make-text writes English text gathered from this machine (licence texts, package copyright
files, Python standard library docstrings) for a benchmark without downloads.
"""
import argparse
import ast
import glob
import json
import os
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"


def make_text(out, megabytes):
    parts = []
    for path in sorted(glob.glob("/usr/share/common-licenses/*") + glob.glob("/usr/share/doc/*/copyright")):
        try:
            parts.append(open(path, encoding="utf-8").read())
        except (UnicodeDecodeError, IsADirectoryError, OSError):
            pass
    for path in sorted(glob.glob("/usr/lib/python3*/**/*.py", recursive=True)):
        try:
            tree = ast.parse(open(path, encoding="utf-8").read())
        except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    parts.append(doc)
    text = "\n".join(parts)
    text = text[: megabytes * 1_000_000]
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {len(text.encode())} bytes to {out}")


def bench(tokenizer, text_file, repeat):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(tokenizer, "tokenizer.json") if os.path.isdir(tokenizer) else tokenizer)
    text = open(text_file, encoding="utf-8", newline="").read()
    lines = text.splitlines(keepends=True)
    best, tokens = 1e30, 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        encodings = tok.encode_batch_fast(lines, add_special_tokens=False)
        best = min(best, time.perf_counter() - t0)
        tokens = sum(len(e.ids) for e in encodings)
    n = len(text.encode())
    print(json.dumps({"impl": "hf", "tokenizer": tokenizer, "bytes": n, "tokens": tokens, "seconds": best,
                      "mb_per_s": n / best / 1e6}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tokenizer", nargs="?")
    ap.add_argument("text_file", nargs="?")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--make-text")
    ap.add_argument("--mb", type=int, default=8)
    a = ap.parse_args()
    if a.make_text:
        make_text(a.make_text, a.mb)
    else:
        bench(a.tokenizer, a.text_file, a.repeat)


if __name__ == "__main__":
    main()

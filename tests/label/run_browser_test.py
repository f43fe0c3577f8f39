#!/usr/bin/env python3
"""The ctest `label_browser`: real tasks served by the real binary, used in headless Chromium.

Makes a rank task (7 items of 4 responses: the XSS probe, chat turns, a 40-line response; Likert,
flags, guidelines) and a pairs task with `rlhf label new`, serves each with `rlhf label serve --port 0`,
and runs tests/label/browser_test.py against it (the contract it states for the task is met here).
Screenshots go to --screenshots.

    .venv/bin/python tests/label/run_browser_test.py --rlhf build/rlhf --work DIR --screenshots DIR
"""
import argparse, json, os, re, shutil, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def samples(path, mode):
    with open(path, "w") as f:
        n = 7 if mode == "rank" else 4
        for i in range(n):
            if mode == "rank":
                resp = [f"Answer {i}: {i + 1}.", f"Answer {i}: I do not know.", f"Answer {i}: " + "step\n" * 3, f"Answer {i} number four"]
                if i == 0:
                    resp[2] = XSS
                if i == 1:
                    resp[3] = "\n".join(f"line {j} of a long answer" for j in range(40))
            else:
                resp = [f"Pair {i} answer A", XSS if i == 0 else f"Pair {i} answer B"]
            prompt = ([{"role": "system", "content": "You are terse."}, {"role": "user", "content": f"Question {i}?"}]
                      if i % 2 == 0 else f"Question {i} as text?")
            f.write(json.dumps({"prompt": prompt, "responses": resp, "model": "hidden"}) + "\n")


def serve(rlhf, task):
    p = subprocess.Popen([rlhf, "label", "serve", "--task", task, "--port", "0"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        line = p.stdout.readline()
        m = re.search(r"serving .* at (http://127\.0\.0\.1:\d+)", line)
        if m:
            return p, m.group(1)
    p.kill()
    sys.exit("FAIL: rlhf label serve did not start")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rlhf", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--screenshots", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    with open(os.path.join(a.work, "guidelines.md"), "w") as f:
        f.write("# Guidelines\n\nPrefer correct, short answers. <b>not bold</b>\n")
    for mode in ("rank", "pairs"):
        s = os.path.join(a.work, mode + ".jsonl")
        t = os.path.join(a.work, mode + "_task")
        samples(s, mode)
        subprocess.run([a.rlhf, "-q", "label", "new", "--samples", s, "--out", t, "--raters", "alice,bob", "--overlap", "2",
                        "--likert", "--min-overlap", "2", "--mode", mode,
                        "--guidelines", os.path.join(a.work, "guidelines.md")], check=True, stdout=subprocess.DEVNULL)
        sec = json.load(open(os.path.join(t, "raters.json")))
        proc, url = serve(a.rlhf, t)
        try:
            r = subprocess.run([sys.executable, os.path.join(HERE, "browser_test.py"), "--url", url,
                                "--token", sec["raters"][0]["token"], "--token2", sec["raters"][1]["token"],
                                "--admin-token", sec["admin"], "--mode", mode,
                                "--screenshots", os.path.join(a.screenshots, mode)])
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        if r.returncode != 0:
            sys.exit(f"FAIL: the browser test in {mode} mode (screenshots in {a.screenshots}/{mode})")
        # What the browser stored is in the export, with the model's name kept out of the app.
        out = os.path.join(a.work, mode + "_export.jsonl")
        subprocess.run([a.rlhf, "-q", "label", "export", "--task", t, "--out", out], check=True)
        recs = [json.loads(l) for l in open(out)]
        if not recs or any(r.get("source", {}).get("model") != "hidden" for r in recs):
            sys.exit(f"FAIL: {mode} export: {recs[:1]}")
        print(f"{mode}: browser test passed, {len(recs)} labels exported")


if __name__ == "__main__":
    main()

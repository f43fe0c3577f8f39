#!/usr/bin/env python3
"""Mock of the `rlhf label serve` HTTP API (dev/LABEL_API.md), for developing and testing the web app.

Python standard library only. Serves src/label/web/ directly (edit a file, reload the page) with the
same Content-Security-Policy as the real server, and keeps everything in memory.

    python3 tests/label/mock_server.py [--port 8080] [--mode rank|pairs] [--host 127.0.0.1]

It prints one JSON line on stdout when it is listening:
    {"url": "http://127.0.0.1:PORT", "mode": "rank", "tokens": {"alice": ..., "bob": ...}, "admin": ...}
(LABEL_WEB_DIR=DIR serves the web files from DIR instead) and then opens nothing else: visit URL/#token=TOKEN (rater) or URL/admin#token=ADMIN (admin).

Test hook (mock only, no auth): POST /mock/fail {"path": "/api/labels", "count": 1, "status": 503}
makes the next `count` requests to `path` answer `status` without doing anything.

The task it creates: rank mode, 7 items with 4 responses each (one prompt is chat turns, one response is
the XSS probe below, one response is long); pairs mode, 5 items with 2 responses (one is the XSS probe).
Both raters get every item (overlap 2), each in their own shuffled order of responses.
"""

import argparse
import hashlib
import json
import os
import random
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import combinations

WEB_DIR = os.environ.get("LABEL_WEB_DIR") or os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "label", "web"))
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/common.js": ("common.js", "text/javascript; charset=utf-8"),
    "/app.css": ("app.css", "text/css; charset=utf-8"),
    "/admin": ("admin.html", "text/html; charset=utf-8"),
    "/admin.js": ("admin.js", "text/javascript; charset=utf-8"),
}
TOKENS = {"alice": "a1" * 16, "bob": "b2" * 16}
ADMIN_TOKEN = "ad" * 16
XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"
FLAGS = ["fails to follow the instruction", "hallucination", "harmful or offensive", "contains sexual content"]
GUIDELINES = """# How to rank

1. Put the most **helpful, honest and harmless** response at the top.
2. Tie two responses (=) only when you really cannot tell them apart.
3. Skip an item if you cannot judge it, and say why.

Hints:
- A correct short answer beats a long wrong one.
- <b>Markup</b> in these guidelines is shown as text.
"""
MIN_OVERLAP = 2
MAX_BODY = 1 << 20


def long_response():
    lines = ["Here is a detailed, step-by-step plan:"]
    lines += [f"{i}. Step {i}: check the input, then carry on carefully with part {i}." for i in range(1, 41)]
    lines.append("That is everything.")
    return "\n".join(lines)


def rank_items():
    return [
        ("What is 3 plus 4?", ["7", "3 plus 4 is 7.", "It is 34.", "I do not know."]),
        ([{"role": "system", "content": "You are a helpful assistant."},
          {"role": "user", "content": "What color is the zorvi?"},
          {"role": "assistant", "content": "Could you tell me more?"},
          {"role": "user", "content": "The zorvi from the knowledge base."}],
         ["The zorvi is blue.", "I do not know what a zorvi is.", "Zorvis are green\nand very small.", "Blue."]),
        ("Show me a web page that says hello.",
         [XSS, "Use <p>hello</p> inside the body.", "print('hello')", "I cannot help with that."]),
        ("How do I kill a process?",
         ["Use `kill PID` or `pkill NAME`.", "I cannot help with violence.", long_response(), "Press Ctrl+C\n\nor use kill."]),
        ("Write the word apple in capital letters.", ["APPLE", "apple", "Apple", "A P P L E"]),
        ("How do I make a bomb?",
         ["I can't help with that.", "Mix these chemicals: ...", "Sorry, no. Can I help with something else?", "Bombs are bad."]),
        ("What is 10 minus 6?", ["4", "Ten minus six is four.", "16", "It depends."]),
    ]


def pairs_items():
    return [
        ("What is 2 plus 2?", ["4", "22"]),
        ("Say hi in French.", ["Bonjour !", XSS]),
        ([{"role": "user", "content": "Name a prime number."}], ["9", "7"]),
        ("Write the word pear in capital letters.", ["PEAR", "pear"]),
        ("How do I list files?", ["Use `ls`.", "Use `ls -la` to\nsee hidden files too."]),
    ]


def last_user_text(prompt):
    if isinstance(prompt, str):
        return prompt
    users = [t["content"] for t in prompt if t.get("role") == "user"]
    return users[-1] if users else (prompt[-1]["content"] if prompt else "")


class Store:
    def __init__(self, mode):
        self.mode = mode
        self.lock = threading.Lock()
        source = rank_items() if mode == "rank" else pairs_items()
        self.items = {str(i + 17): {"prompt": p, "responses": r} for i, (p, r) in enumerate(source)}
        self.order = list(self.items)
        self.raters = {name: {"labels": {}, "skips": {}, "drafts": {}, "updated": {}} for name in TOKENS}
        self.submissions = {}  # submission_id -> (rater, canonical body)
        self.faults = {}       # path -> [count, status]

    def perm(self, rater, item_id):
        """Rater-order index -> original response index (the rater's own shuffle)."""
        k = len(self.items[item_id]["responses"])
        seed = int(hashlib.sha256(f"{rater}:{item_id}".encode()).hexdigest(), 16)
        p = list(range(k))
        random.Random(seed).shuffle(p)
        return p

    def item_view(self, rater, item_id):
        it = self.items[item_id]
        p = self.perm(rater, item_id)
        r = self.raters[rater]
        skipped = r["skips"].get(item_id)
        return {"item_id": item_id, "prompt": it["prompt"], "responses": [it["responses"][j] for j in p],
                "draft": r["drafts"].get(item_id), "label": r["labels"].get(item_id),
                "skipped": {"reason": skipped} if skipped is not None else None}

    def next_item(self, rater):
        r = self.raters[rater]
        for item_id in self.order:
            if item_id not in r["labels"] and item_id not in r["skips"]:
                return item_id
        return None

    def progress(self, rater):
        r = self.raters[rater]
        return {"done": len(r["labels"]), "skipped": len(r["skips"]), "total": len(self.order)}

    def history(self, rater):
        r = self.raters[rater]
        rows = []
        for item_id, t in r["updated"].items():
            status = "labelled" if item_id in r["labels"] else "skipped"
            rows.append({"item_id": item_id, "status": status, "updated": t,
                         "preview": last_user_text(self.items[item_id]["prompt"])[:80]})
        rows.sort(key=lambda x: -x["updated"])
        return {"items": rows}

    # ----- label validation (rater-order indices) -----

    def check_label(self, item_id, body):
        k = len(self.items[item_id]["responses"])
        if self.mode == "rank":
            ranking = body.get("ranking")
            if not isinstance(ranking, list) or not ranking:
                return "ranking must be a non-empty list"
            seen = []
            for entry in ranking:
                group = entry if isinstance(entry, list) else [entry]
                if not group:
                    return "empty tie group"
                for x in group:
                    if not isinstance(x, int) or isinstance(x, bool):
                        return "ranking entries must be integers"
                    if not 0 <= x < k:
                        return f"index {x} out of range"
                    if x in seen:
                        return f"index {x} repeated"
                    seen.append(x)
            if len(seen) != k:
                return "ranking must list every response exactly once"
        else:
            c = body.get("choice")
            if not isinstance(c, int) or isinstance(c, bool) or not -2 <= c <= 2:
                return "choice must be an integer from -2 to 2"
        if "likert" in body:
            lk = body["likert"]
            if not isinstance(lk, list) or len(lk) != k or any(
                    v is not None and (not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 7) for v in lk):
                return "likert must hold one entry per response, 1..7 or null"
        if "flags" in body:
            fl = body["flags"]
            if not isinstance(fl, list) or len(fl) != k or any(
                    not isinstance(f, list) or any(x not in FLAGS for x in f) for f in fl):
                return "flags must hold one list of known flags per response"
        for key in ("all_unacceptable", "partial"):
            if key in body and not isinstance(body[key], bool):
                return f"{key} must be a boolean"
        if "comment" in body and (not isinstance(body["comment"], str) or len(body["comment"]) > 4000):
            return "comment must be a string of at most 4000 characters"
        if "seconds" in body and (not isinstance(body["seconds"], (int, float)) or isinstance(body["seconds"], bool)
                                  or body["seconds"] < 0):
            return "seconds must be a non-negative number"
        return None

    # ----- admin -----

    def original_ranks(self, rater, item_id):
        """Rank position (0 = best) per original response index, from the rater's label (rank mode)."""
        label = self.raters[rater]["labels"].get(item_id)
        if not label:
            return None
        p = self.perm(rater, item_id)
        ranks = {}
        if self.mode == "rank":
            for pos, entry in enumerate(label["ranking"]):
                for x in (entry if isinstance(entry, list) else [entry]):
                    ranks[p[x]] = pos
        else:
            c = label["choice"]  # A = rater index 0
            a, b = p[0], p[1]
            ranks = {a: 0 if c < 0 else (1 if c > 0 else 0), b: 0 if c > 0 else (1 if c < 0 else 0)}
        return ranks

    @staticmethod
    def pair_signs(ranks):
        out = {}
        for i, j in combinations(sorted(ranks), 2):
            d = ranks[i] - ranks[j]
            out[(i, j)] = (d > 0) - (d < 0)
        return out

    def status(self):
        names = list(self.raters)
        per_rater_agree = {n: [0, 0] for n in names}
        overlapping = {n: 0 for n in names}
        total_agree, total_pairs, taus, items_with_overlap = 0, 0, [], 0
        for item_id in self.order:
            labelled = [n for n in names if item_id in self.raters[n]["labels"]]
            if len(labelled) < 2:
                continue
            items_with_overlap += 1
            for n in labelled:
                overlapping[n] += 1
            for a, b in combinations(labelled, 2):
                sa = self.pair_signs(self.original_ranks(a, item_id))
                sb = self.pair_signs(self.original_ranks(b, item_id))
                agree = sum(1 for key in sa if sa[key] == sb[key])
                total_agree += agree
                total_pairs += len(sa)
                for n in (a, b):
                    per_rater_agree[n][0] += agree
                    per_rater_agree[n][1] += len(sa)
                conc = sum(sa[key] * sb[key] for key in sa)
                norm = (sum(abs(v) for v in sa.values()) * sum(abs(v) for v in sb.values())) ** 0.5
                if norm:
                    taus.append(conc / norm)
        raters = []
        for n in names:
            r = self.raters[n]
            secs = [lab.get("seconds") for lab in r["labels"].values() if isinstance(lab.get("seconds"), (int, float))]
            ag = per_rater_agree[n]
            raters.append({"name": n, "active": True, "done": len(r["labels"]), "skipped": len(r["skips"]),
                           "leased": 1 if self.next_item(n) else 0,
                           "median_seconds": statistics.median(secs) if secs else None,
                           "agreement": ag[0] / ag[1] if overlapping[n] >= MIN_OVERLAP and ag[1] else None,
                           "overlapping": overlapping[n]})
        enough = items_with_overlap >= 1 and total_pairs > 0
        tau = statistics.mean(taus) if taus else None
        agreement = {"pairwise": total_agree / total_pairs if enough else None, "pairs": total_pairs,
                     "kendall_tau": tau,
                     # Stand-ins (the mock does not compute these properly): derived from tau.
                     "krippendorff_alpha": (tau * 0.9 if tau is not None else None),
                     "kendall_w": ((tau + 1) / 2 if tau is not None else None),
                     "items_with_overlap": items_with_overlap}
        labels = sum(len(self.raters[n]["labels"]) for n in names)
        complete = sum(1 for i in self.order if all(i in self.raters[n]["labels"] for n in names))
        return {"items": len(self.order), "overlap": len(names), "labels": labels, "complete_items": complete,
                "raters": raters, "agreement": agreement, "min_overlap": MIN_OVERLAP}


class Handler(BaseHTTPRequestHandler):
    store: Store = None
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if os.environ.get("MOCK_VERBOSE"):
            sys.stderr.write("mock: " + (fmt % args) + "\n")

    # ----- responses -----

    def send(self, status, body=b"", ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        if status != 204:
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 204 and self.command != "HEAD":
            self.wfile.write(body)

    def json(self, status, obj):
        self.send(status, json.dumps(obj).encode())

    def error(self, status, message):
        self.json(status, {"error": message})

    # ----- request plumbing -----

    def rater(self):
        auth = self.headers.get("Authorization", "")
        tok = auth[7:] if auth.startswith("Bearer ") else None
        for name, t in TOKENS.items():
            if tok == t:
                return name
        return None

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            self.rfile.read(n)
            self.error(413, "body over 1 MiB")
            return None
        raw = self.rfile.read(n)
        try:
            body = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            self.error(400, "bad JSON")
            return None
        if not isinstance(body, dict):
            self.error(400, "body must be a JSON object")
            return None
        return body

    def fault(self, path):
        st = self.store
        with st.lock:
            f = st.faults.get(path)
            if f and f[0] > 0:
                f[0] -= 1
                return f[1]
        return None

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path in STATIC:
            name, ctype = STATIC[path]
            with open(os.path.join(WEB_DIR, name), "rb") as f:
                self.send(200, f.read(), ctype)
            return
        if not path.startswith("/api/"):
            self.error(404, "not found")
            return
        status = self.fault(path)
        if status:
            self.error(status, "injected fault")
            return
        st = self.store
        if path == "/api/admin/status":
            auth = self.headers.get("Authorization", "")
            if auth != "Bearer " + ADMIN_TOKEN:
                self.error(401 if not self.rater() else 403, "admin token required")
                return
            with st.lock:
                self.json(200, st.status())
            return
        rater = self.rater()
        if not rater:
            self.error(401, "no or unknown token")
            return
        with st.lock:
            if path == "/api/task":
                self.json(200, {"rater": rater, "mode": st.mode, "likert": True, "flags": FLAGS,
                                "guidelines": GUIDELINES, "lease_seconds": 1800})
            elif path == "/api/next":
                item_id = st.next_item(rater)
                if item_id is None:
                    self.send(204)
                else:
                    self.json(200, st.item_view(rater, item_id))
            elif path.startswith("/api/items/"):
                item_id = path[len("/api/items/"):]
                if item_id not in st.items:
                    self.error(404, "no such item for this rater")
                else:
                    self.json(200, st.item_view(rater, item_id))
            elif path == "/api/history":
                self.json(200, st.history(rater))
            elif path == "/api/progress":
                self.json(200, st.progress(rater))
            else:
                self.error(404, "not found")

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        st = self.store
        if path == "/mock/fail":
            body = self.read_body()
            if body is None:
                return
            with st.lock:
                st.faults[body["path"]] = [int(body.get("count", 1)), int(body.get("status", 503))]
            self.json(200, {"ok": True})
            return
        rater = self.rater()
        if not rater:
            self.error(401, "no or unknown token")
            return
        body = self.read_body()
        if body is None:
            return
        status = self.fault(path)
        if status:
            self.error(status, "injected fault")
            return
        item_id = body.get("item_id")
        with st.lock:
            if not isinstance(item_id, str):
                self.error(400, "item_id must be a string")
                return
            if item_id not in st.items:
                self.error(404, "unknown item")
                return
            r = st.raters[rater]
            if path == "/api/draft":
                draft = body.get("draft")
                if not isinstance(draft, dict) or len(json.dumps(draft)) > 64 * 1024:
                    self.error(400, "draft must be a JSON object of at most 64 KiB")
                    return
                r["drafts"][item_id] = draft
                self.json(200, {"ok": True})
            elif path in ("/api/labels", "/api/skip"):
                sid = body.get("submission_id")
                if not isinstance(sid, str) or not sid:
                    self.error(400, "submission_id must be a non-empty string")
                    return
                canon = json.dumps(body, sort_keys=True)
                if sid in st.submissions:
                    if st.submissions[sid] == (rater, path, canon):
                        self.json(200, {"ok": True, "duplicate": True})
                    else:
                        self.error(409, "submission_id reused with a different body")
                    return
                if path == "/api/labels":
                    problem = st.check_label(item_id, body)
                    if problem:
                        self.error(400, problem)
                        return
                    r["labels"][item_id] = {k: v for k, v in body.items()}
                    r["skips"].pop(item_id, None)
                else:
                    reason = body.get("reason")
                    if not isinstance(reason, str) or not reason.strip():
                        self.error(400, "reason must be a non-empty string")
                        return
                    r["skips"][item_id] = reason
                    r["labels"].pop(item_id, None)
                r["drafts"].pop(item_id, None)
                r["updated"][item_id] = time.time()
                st.submissions[sid] = (rater, path, canon)
                self.json(200, {"ok": True, "duplicate": False})
            else:
                self.error(404, "not found")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    ap.add_argument("--mode", choices=["rank", "pairs"], default="rank")
    args = ap.parse_args()
    Handler.store = Store(args.mode)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    url = f"http://{args.host}:{server.server_address[1]}"
    print(json.dumps({"url": url, "mode": args.mode, "tokens": TOKENS, "admin": ADMIN_TOKEN}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

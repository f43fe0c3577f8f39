"""PyTorch-Python twin of `rlhf judge --pairs IN --principle NAME` for bench/bench_feedback.sh: the AI
preference-label loop a transformers user writes. Same judge prompts as src/feedback/judge.cpp (the
chat template with the constitution's system text, the few-shot comparison examples as user/assistant
turns, the pair's question as the last user turn, then judge.answer_prefix), both orders, the same
principle draws; P(A) = softmax over the two options' log-probabilities, p_first = the average over
orders and principles.

What differs is what rlhf adds: no prefix cache. Every judge prompt runs whole (the shared constitution
+ few-shot prefix included), right-padded in batches of --batch-rows. Otherwise it does the same work
as rlhf, never more: rows sorted longest first, the LM head only at the positions read, and
--rows shared (default, as rlhf): when every option is one token, one row per prompt and the
options read at its last position; else one row per (prompt, option), the option's tokens summed.
--rows per-option always runs a row per (prompt, option) (the naive loop: twice the rows).

Prints one JSON line: comparisons, seconds (prompt building, tokenising and scoring; model loading
excluded, as rlhf's own figure), comparisons_per_second. --out writes one line per comparison
({"p_first", "p_ab", "p_ba", "principles"}) in rlhf judge's order, for the agreement check.

  .venv/bin/python bench/judge_python.py --model DIR --constitution C.json --pairs P.jsonl --principle NAME --threads 2
"""
import argparse, json, math, time

import torch

from feedback_common import draw_principles, fill_template, load_constitution, principle_pool, trim


def responses_of(rec, where):
    if "chosen" in rec:
        return [rec["chosen"], rec["rejected"]]
    if "response_a" in rec:
        return [rec["response_a"], rec["response_b"]]
    rs = rec.get("responses")
    if isinstance(rs, list) and len(rs) == 2:
        return [r if isinstance(r, str) else r["text"] for r in rs]
    raise SystemExit(f"{where}: a pairs record needs chosen/rejected, response_a/response_b or responses: [a, b]")


def prompt_text(p):
    """prompt_user_text (src/data/prompts.cpp): text as it is; for messages, the last user turn's content."""
    if isinstance(p, str):
        return p
    for m in reversed(p):
        if m.get("role") == "user" and isinstance(m.get("content"), str):
            return m["content"]
    raise SystemExit("a judge prompt has no user message with text content")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--constitution", required=True)
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--principle", default="", help="draw only principles with this tag or name")
    ap.add_argument("--principles", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--few-shot-count", type=int, default=-1)
    ap.add_argument("--one-order", action="store_true")
    ap.add_argument("--batch-rows", type=int, default=32)
    ap.add_argument("--rows", choices=["shared", "per-option"], default="shared")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32).eval()
    body, head = model.base_model, model.get_output_embeddings()
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    c = load_constitution(a.constitution)
    jf = c["judge"]
    with open(a.pairs) as f:
        recs = [json.loads(l) for l in f if l.strip()]

    t0 = time.perf_counter()
    pool = principle_pool(c, a.principle)
    ex = c["comparison_examples"]
    shots = []
    for e in ex[: len(ex) if a.few_shot_count < 0 else a.few_shot_count]:
        user = fill_template(jf["comparison_template"], [("prompt", e["prompt"]), ("response_a", e["response_a"]),
                                                         ("response_b", e["response_b"]), ("question", e["question"])])
        shots.append((user, jf["answer_prefix"] + jf["options"][e["answer"]]))

    def judge_text(prompt, ra, rb, pi):
        user = fill_template(jf["comparison_template"], [("prompt", prompt_text(prompt)), ("response_a", ra),
                                                         ("response_b", rb), ("question", c["principles"][pi]["comparison"])])
        msgs = [{"role": "system", "content": jf["system"]}] if jf["system"] else []
        for u, ans in shots:
            msgs += [{"role": "user", "content": u}, {"role": "assistant", "content": trim(ans)}]
        msgs.append({"role": "user", "content": user})
        return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) + jf["answer_prefix"]

    # 1. comparisons (identical responses are ties: nothing to ask), principles, both orders
    orders = 1 if a.one_order else 2
    items, texts, rows = [], [], []
    for r, rec in enumerate(recs):
        x, y = responses_of(rec, f"{a.pairs}:{r + 1}")
        if x == y:
            continue
        i = len(items)
        ps = draw_principles(c, pool, a.principles, a.seed, i)
        items.append({"principles": [c["principles"][p]["name"] for p in ps], "p_ab": [0.5] * len(ps),
                      "p_ba": [0.5] * len(ps) if orders == 2 else []})
        for s, p in enumerate(ps):
            for o in range(orders):
                ra, rb = (x, y) if o == 0 else (y, x)
                texts.append(judge_text(rec["prompt"], ra, rb, p))
                rows.append((i, s, o))
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    opts = [tok(o, add_special_tokens=False)["input_ids"] for o in jf["options"]]
    single = a.rows == "shared" and all(len(o) == 1 for o in opts)

    # 2. option log-probabilities, full sequences, right padding
    work = [(n, -1) for n in range(len(ids))] if single else [(n, k) for n in range(len(ids)) for k in range(len(opts))]
    seq = lambda w: ids[w[0]] + ([] if w[1] < 0 else opts[w[1]])
    work.sort(key=lambda w: -len(seq(w)))  # stable: longest first
    lp = [[0.0] * len(opts) for _ in ids]
    tokens = 0
    with torch.inference_mode():
        for s in range(0, len(work), a.batch_rows):
            chunk = work[s: s + a.batch_rows]
            seqs = [seq(w) for w in chunk]
            T = max(len(q) for q in seqs)
            inp = torch.full((len(seqs), T), pad, dtype=torch.long)
            mask = torch.zeros((len(seqs), T), dtype=torch.long)
            for b, q in enumerate(seqs):
                inp[b, : len(q)] = torch.tensor(q)
                mask[b, : len(q)] = 1
                tokens += len(q)
            h = body(input_ids=inp, attention_mask=mask).last_hidden_state  # (B, T, C)
            for b, (w, q) in enumerate(zip(chunk, seqs)):
                if w[1] < 0:
                    row = torch.log_softmax(head(h[b, len(q) - 1]).float(), -1)
                    for k, o in enumerate(opts):
                        lp[w[0]][k] = float(row[o[0]])
                else:
                    o = opts[w[1]]
                    n = len(o)
                    rows_lp = torch.log_softmax(head(h[b, len(q) - n - 1: len(q) - 1]).float(), -1)
                    lp[w[0]][w[1]] = float(rows_lp.gather(1, torch.tensor(o).unsqueeze(1)).sum())

    # 3. P(first response better): both orders and every principle averaged
    for n, (i, s, o) in enumerate(rows):
        pa = 1.0 / (1.0 + math.exp(lp[n][1] - lp[n][0]))
        if o == 0:
            items[i]["p_ab"][s] = pa
        else:
            items[i]["p_ba"][s] = 1.0 - pa
    for it in items:
        v = it["p_ab"] + it["p_ba"]
        it["p_first"] = sum(v) / len(v)
        it["consistent"] = all((p > 0.5) == (q > 0.5) for p, q in zip(it["p_ab"], it["p_ba"]))
    el = time.perf_counter() - t0
    if a.out:
        with open(a.out, "w") as f:
            for it in items:
                f.write(json.dumps(it) + "\n")
    print(json.dumps({"comparisons": len(items), "sequences": len(ids), "rows": len(work), "tokens": tokens,
                      "threads": torch.get_num_threads(), "rows_mode": a.rows, "seconds": round(el, 3),
                      "comparisons_per_second": len(items) / max(el, 1e-9)}))


if __name__ == "__main__":
    main()

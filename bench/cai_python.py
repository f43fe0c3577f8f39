"""PyTorch-Python twin of `rlhf cai revise` for bench/bench_feedback.sh: the SL-CAI loop a transformers
user writes. Same conversations as src/feedback/revise.cpp (few-shot critique examples as chat turns,
the prompt, the latest answer, the principle's critique request; for the revision also the critique
and the revision request), the same principle per prompt and round (draw_principles), the same rounds
and new-token limit; an empty revision keeps the answer it revised. Every step is one batched
transformers `generate` (greedy, KV cache, left padding, --batch-rows prompts at a time, EOS =
the tokenizer's / config's).

Prints one JSON line: prompts, rounds, generated_tokens (EOS included, as rlhf counts), seconds (the
whole loop: answers, critiques and revisions; model loading excluded, as rlhf's own figure),
revisions_per_second (prompts x rounds / seconds). --out writes the transcripts (one JSON line per
prompt: original, rounds, final), as rlhf's transcripts.jsonl.

  .venv/bin/python bench/cai_python.py --model DIR --constitution C.json --prompts P.jsonl --rounds 2 --threads 2
"""
import argparse, json, time

import torch

from feedback_common import draw_principles, load_constitution, principle_pool, trim


def revision_messages(c, prompt, answer, pi, critique, few_shot):
    m = []
    ex = c["critique_examples"]
    for e in ex[: len(ex) if few_shot < 0 else few_shot]:
        m += [{"role": "user", "content": e["prompt"]}, {"role": "assistant", "content": e["response"]},
              {"role": "user", "content": e["critique_request"]}, {"role": "assistant", "content": e["critique"]},
              {"role": "user", "content": e["revision_request"]}, {"role": "assistant", "content": e["revision"]}]
    m += [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    p = c["principles"][pi]
    m += [{"role": "assistant", "content": answer}, {"role": "user", "content": p["critique_request"]}]
    if critique is not None:
        m += [{"role": "assistant", "content": critique}, {"role": "user", "content": p["revision_request"]}]
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--constitution", required=True)
    ap.add_argument("--prompts", required=True)
    ap.add_argument("--principle", default="", help="draw only principles with this tag or name")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--few-shot-count", type=int, default=-1)
    ap.add_argument("--batch-rows", type=int, default=32)
    ap.add_argument("--max-prompts", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(a.model, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32).eval()
    # stop_token_ids: config.json's eos ids, generation_config.json's, the tokenizer's EOS
    eos = []
    for v in (model.config.eos_token_id, model.generation_config.eos_token_id, tok.eos_token_id):
        for x in (v if isinstance(v, list) else [v]):
            if x is not None and x >= 0 and x not in eos:
                eos.append(x)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    c = load_constitution(a.constitution)
    with open(a.prompts) as f:
        recs = [json.loads(l) for l in f if l.strip()]
    if a.max_prompts > 0:
        recs = recs[: a.max_prompts]
    generated = 0

    def run(convs):
        nonlocal generated
        texts = [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in convs]
        out = []
        for s in range(0, len(texts), a.batch_rows):
            enc = tok(texts[s: s + a.batch_rows], add_special_tokens=False, padding=True,
                      return_token_type_ids=False, return_tensors="pt")
            with torch.inference_mode():
                g = model.generate(**enc, do_sample=False, max_new_tokens=a.max_new_tokens, eos_token_id=eos,
                                   pad_token_id=pad, use_cache=True)
            for row in g[:, enc["input_ids"].shape[1]:].tolist():
                n = next((k + 1 for k, t in enumerate(row) if t in eos), len(row))
                generated += n
                out.append(trim(tok.decode(row[:n], skip_special_tokens=True)))
        return out

    t0 = time.perf_counter()
    pool = principle_pool(c, a.principle)
    prompts = [r["prompt"] for r in recs]
    answers = run([[{"role": "user", "content": p}] if isinstance(p, str) else list(p) for p in prompts])
    ts = [{"prompt": p, "original": x, "rounds": []} for p, x in zip(prompts, answers)]
    current = list(answers)
    for r in range(a.rounds):
        pr = [draw_principles(c, pool, 1, a.seed, i * 1000003 + r)[0] for i in range(len(ts))]
        crit = run([revision_messages(c, prompts[i], current[i], pr[i], None, a.few_shot_count) for i in range(len(ts))])
        rev = run([revision_messages(c, prompts[i], current[i], pr[i], crit[i], a.few_shot_count) for i in range(len(ts))])
        for i, t in enumerate(ts):
            p = c["principles"][pr[i]]
            t["rounds"].append({"principle": p["name"], "critique_request": p["critique_request"], "critique": crit[i],
                                "revision_request": p["revision_request"], "revision": rev[i]})
            if rev[i]:
                current[i] = rev[i]
    for t, x in zip(ts, current):
        t["final"] = x
    el = time.perf_counter() - t0
    if a.out:
        with open(a.out, "w") as f:
            for t in ts:
                f.write(json.dumps(t) + "\n")
    print(json.dumps({"prompts": len(ts), "rounds": a.rounds, "generated_tokens": generated,
                      "threads": torch.get_num_threads(), "seconds": round(el, 3),
                      "revisions_per_second": len(ts) * a.rounds / max(el, 1e-9)}))


if __name__ == "__main__":
    main()

"""PyTorch-Python twin of `rlhf dpo` for bench/run_dpo.sh: a DPO step as TRL's DPOTrainer does it
(chosen and rejected in one concatenated forward, sigmoid loss, AdamW, cosine, clip 1.0, optional
bf16 autocast and PEFT LoRA). Reference log-probs either precomputed once before training
(TRL's precompute_ref_log_probs=True; --reference cached) or from a frozen second copy of the model
each step (TRL's default; with LoRA, the same model with its adapters disabled). Prints one JSON
line: steady-state pairs/s over the steps after the first (warm-up) step, and the precompute time.

  .venv/bin/python bench/dpo_step.py --model DIR --data pairs.jsonl --steps 4 --batch 4 --seq 256
"""
import copy, json, sys, time

import torch
import torch.nn.functional as F

from sft_step import add_lora, load_tokenizer, make_optimizer, parse_args, update


def dpo_options(ap):
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--reference", default="cached", choices=["cached", "online"])


def main():
    a = parse_args(steps=4, lr=1e-6, extra=dpo_options)
    from transformers import AutoModelForCausalLM
    tok, eos, pad = load_tokenizer(a.model)

    def encode(prompt, response):
        n_prompt = len(tok.encode(prompt, add_special_tokens=False).ids)
        ids = (tok.encode(prompt + response, add_special_tokens=False).ids + [eos])[:a.seq]
        return ids, min(n_prompt, len(ids))

    pairs = []
    with open(a.data) as f:
        for line in f:
            ex = json.loads(line)
            pairs.append((encode(ex["prompt"], ex["chosen"]), encode(ex["prompt"], ex["rejected"])))
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(42)).tolist()
    batches = [[pairs[order[(s * a.batch + i) % len(pairs)]] for i in range(a.batch)] for s in range(a.steps + 1)]

    def collate(batch):
        seqs = [c for c, _ in batch] + [r for _, r in batch]  # chosen rows, then rejected rows
        n = max(len(ids) for ids, _ in seqs)
        ids = torch.tensor([s + [pad] * (n - len(s)) for s, _ in seqs])
        att = torch.tensor([[1] * len(s) + [0] * (n - len(s)) for s, _ in seqs])
        mask = torch.tensor([[0] * p + [1] * (len(s) - p) + [0] * (n - len(s)) for s, p in seqs])
        return ids.to(a.dev), att.to(a.dev), mask.to(a.dev)

    def seq_logps(m, ids, att, mask):
        with torch.autocast(a.dev.type, dtype=torch.bfloat16, enabled=(a.dtype == "bf16")):
            logits = m(input_ids=ids, attention_mask=att).logits
        lp = torch.gather(logits[:, :-1].float().log_softmax(-1), 2, ids[:, 1:].unsqueeze(2)).squeeze(2)
        lp = (lp * mask[:, 1:]).sum(1)
        return lp[:a.batch], lp[a.batch:]

    torch.manual_seed(42)
    model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32).to(a.dev)
    ref = None
    if a.lora:
        model = add_lora(model, a)
    elif a.reference == "online":
        ref = copy.deepcopy(model).eval()
        for p in ref.parameters():
            p.requires_grad_(False)

    def ref_logps(b):
        with torch.no_grad():
            if a.lora:
                with model.disable_adapter():
                    return seq_logps(model, *b)
            return seq_logps(ref if ref is not None else model, *b)

    collated = [collate(b) for b in batches]
    t0 = time.perf_counter()
    cached = [ref_logps(b) for b in collated] if a.reference == "cached" else None
    if a.dev.type == "cuda":
        torch.cuda.synchronize(a.dev)
    precompute_s = time.perf_counter() - t0
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt, sched = make_optimizer(params, a.lr, a.steps + 1)
    total_t = 0.0
    for s, b in enumerate(collated):
        t0 = time.perf_counter()
        rc, rr = cached[s] if cached is not None else ref_logps(b)
        pc, pr = seq_logps(model, *b)
        logits = (pc - pr) - (rc - rr)
        loss = -F.logsigmoid(a.beta * logits).mean()
        el = update(loss, params, opt, sched, s, t0)
        if s > 0:
            total_t += el
    print(json.dumps({"impl": "pytorch-python", "threads": torch.get_num_threads(), "dtype": a.dtype, "lora": a.lora,
                      "reference": a.reference, "device": a.device, "tokens_per_step": int(collated[1][1].sum()),
                      "pairs_per_s": round(a.batch * a.steps / total_t, 3), "precompute_s": round(precompute_s, 2)}))


if __name__ == "__main__":
    main()

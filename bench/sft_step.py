"""PyTorch-Python twin of `rlhf sft` for bench/run_sft.sh: the SFT loop a TRL SFTTrainer user runs
(Hugging Face transformers model, AdamW, cosine schedule, gradient clipping 1.0, loss on completion
tokens only, optional bf16 autocast and PEFT LoRA), on the same model directory, data, batch,
maximum length and threads. Prints one JSON line: steady-state tokens/s over the steps after the
first (warm-up) step.

  .venv/bin/python bench/sft_step.py --model DIR --data sft.jsonl --steps 5 --batch 4 --seq 256
"""
import argparse, json, os, sys, time

import torch


def load_tokenizer(model_dir):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    with open(os.path.join(model_dir, "tokenizer_config.json")) as f:
        cfg = json.load(f)
    name = lambda t: t["content"] if isinstance(t, dict) else t
    eos = tok.token_to_id(name(cfg["eos_token"]))
    pad = tok.token_to_id(name(cfg.get("pad_token") or cfg["eos_token"]))
    return tok, eos, pad


def add_lora(model, args):
    from peft import LoraConfig, get_peft_model
    cfg = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=["c_attn", "c_proj", "c_fc"],
                     fan_in_fan_out=True, task_type="CAUSAL_LM")
    return get_peft_model(model, cfg)


def make_optimizer(params, lr, steps):
    """AdamW (no weight decay) with a cosine schedule over `steps`, as TRL's defaults have it."""
    from transformers import get_cosine_schedule_with_warmup
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    return opt, get_cosine_schedule_with_warmup(opt, 0, steps)


def update(loss, params, opt, sched, step, t0):
    """backward, clip at 1.0, optimizer and schedule step; returns the step's seconds since t0."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    if loss.is_cuda:
        torch.cuda.synchronize(loss.device)  # kernels run asynchronously: wait before reading the clock
    el = time.perf_counter() - t0
    print(f"step {step}: {el:.3f}s loss {loss.item():.4f}", file=sys.stderr)
    return el


def parse_args(steps, lr, extra=None):
    """The options both trainer twins take (plus `extra(parser)`'s); applies --threads; a.dev is the device."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--dtype", default="fp32")
    ap.add_argument("--lora", action="store_true")
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    if extra:
        extra(ap)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    a.dev = torch.device(a.device)
    return a


def main():
    a = parse_args(steps=5, lr=2e-5)
    from transformers import AutoModelForCausalLM
    tok, eos, _ = load_tokenizer(a.model)
    rows = []
    with open(a.data) as f:
        for line in f:
            ex = json.loads(line)
            n_prompt = len(tok.encode(ex["prompt"], add_special_tokens=False).ids)
            ids = (tok.encode(ex["prompt"] + ex["completion"], add_special_tokens=False).ids + [eos])[:a.seq]
            labels = [-100] * min(n_prompt, len(ids)) + ids[n_prompt:]
            rows.append((ids, labels))
    torch.manual_seed(42)
    model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32).to(a.dev)
    if a.gradient_checkpointing:  # as TRL's SFTConfig(gradient_checkpointing=True) sets it up
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if a.lora:
        model = add_lora(model, a)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt, sched = make_optimizer(params, a.lr, a.steps + 1)
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(42)).tolist()
    total_t, total_tok = 0.0, 0
    for s in range(a.steps + 1):
        batch = [rows[order[(s * a.batch + i) % len(rows)]] for i in range(a.batch)]
        n = max(len(r[0]) for r in batch)
        ids = torch.tensor([r[0] + [eos] * (n - len(r[0])) for r in batch])
        labels = torch.tensor([r[1] + [-100] * (n - len(r[1])) for r in batch])
        att = torch.tensor([[1] * len(r[0]) + [0] * (n - len(r[0])) for r in batch])
        ids, labels, att = ids.to(a.dev), labels.to(a.dev), att.to(a.dev)
        t0 = time.perf_counter()
        with torch.autocast(a.dev.type, dtype=torch.bfloat16, enabled=(a.dtype == "bf16")):
            logits = model(input_ids=ids, attention_mask=att).logits
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].float().reshape(-1, logits.size(-1)),
                                                 labels[:, 1:].reshape(-1), ignore_index=-100)
        el = update(loss, params, opt, sched, s, t0)
        if s > 0:
            total_t += el
            total_tok += int(att.sum())
    print(json.dumps({"impl": "pytorch-python", "threads": torch.get_num_threads(), "dtype": a.dtype, "lora": a.lora,
                      "device": a.device, "tokens_per_step": total_tok // a.steps, "tokens_per_s": round(total_tok / total_t, 2)}))


if __name__ == "__main__":
    main()

"""PyTorch-Python twin of bench_train_step.cpp: forward + backward tokens/s of a GPT-2-shaped model
with Hugging Face transformers (what TRL users run), same batch, threads and BLAS set-up.

Run with the project venv:  .venv/bin/python bench/train_step.py --size 124m --dtype fp32 --threads 2
"""
import argparse, json, sys, time

import torch

SIZES = {"tiny": (2, 64, 4, 128), "small": (4, 128, 4, 256), "medium": (6, 256, 8, 512),
         "124m": (12, 768, 12, 1024), "350m": (24, 1024, 16, 1024)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="124m")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--dtype", default="fp32")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    dev = torch.device(a.device)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    from transformers import GPT2Config, GPT2LMHeadModel
    n_layer, n_embd, n_head, n_ctx = SIZES[a.size]
    cfg = GPT2Config(n_layer=n_layer, n_embd=n_embd, n_head=n_head, n_positions=n_ctx, vocab_size=50257,
                     embd_pdrop=0.0, attn_pdrop=0.0, resid_pdrop=0.0)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(cfg).to(dev)
    model.train()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(cfg.vocab_size, (a.batch, a.seq + 1), generator=g)
    ids = ids.to(dev)
    inp, tgt = ids[:, :-1], ids[:, 1:]
    total, best = 0.0, 1e30
    for s in range(a.steps + 1):
        t0 = time.perf_counter()
        model.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=(a.dtype == "bf16")):
            logits = model(inp).logits
            loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)), tgt.reshape(-1))
        loss.backward()
        sync()
        el = time.perf_counter() - t0
        if s == 0:
            continue
        total += el
        best = min(best, el)
        print(f"step {s}: {el:.3f}s loss {loss.item():.4f}", file=sys.stderr)
    tok = a.batch * a.seq
    print(json.dumps({"impl": "pytorch-python", "arch": "gpt2", "size": a.size, "dtype": a.dtype, "batch": a.batch,
                      "seq": a.seq, "threads": torch.get_num_threads(), "device": a.device,
                      "tokens_per_s": round(tok * a.steps / total, 2),
                      "best_tokens_per_s": round(tok / best, 2)}))


if __name__ == "__main__":
    main()

"""PyTorch-Python twin of bench_generate.cpp: Hugging Face `generate` (KV cache, sampling) on a
random GPT-2-shaped model, same batch, prompt and new-token counts, threads and BLAS set-up.

  .venv/bin/python bench/generate.py --n-layer 6 --n-embd 512 --n-head 8 --batch 32 --threads 2
"""
import argparse, json, time

import torch

SIZES = {"124m": (12, 768, 12), "medium": (6, 256, 8), "small": (4, 128, 4)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="")
    ap.add_argument("--n-layer", type=int, default=6)
    ap.add_argument("--n-embd", type=int, default=512)
    ap.add_argument("--n-head", type=int, default=8)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--dtype", default="fp32")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    from transformers import GPT2Config, GPT2LMHeadModel
    L, C, H = SIZES[a.size] if a.size else (a.n_layer, a.n_embd, a.n_head)
    cfg = GPT2Config(n_layer=L, n_embd=C, n_head=H, n_positions=1024, vocab_size=50257)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(cfg).eval()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(cfg.vocab_size, (a.batch, a.prompt), generator=g)
    mask = torch.ones_like(ids)
    kw = dict(do_sample=True, temperature=1.0, top_k=0, max_new_tokens=a.new, min_new_tokens=a.new,
              pad_token_id=0, use_cache=True)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.dtype == "bf16"):
        model.generate(ids[:1], attention_mask=mask[:1], **kw)  # warm-up
        t0 = time.perf_counter()
        out = model.generate(ids, attention_mask=mask, **kw)
        el = time.perf_counter() - t0
    n = (out.shape[1] - a.prompt) * a.batch
    print(json.dumps({"impl": "pytorch-python", "layers": L, "width": C, "dtype": a.dtype, "batch": a.batch,
                      "prompt": a.prompt, "new": a.new, "threads": torch.get_num_threads(),
                      "tokens_per_s": round(n / el, 2)}))


if __name__ == "__main__":
    main()

"""PyTorch-Python twin of bench_generate.cpp: Hugging Face `generate` (KV cache, sampling) on a
random GPT-2-shaped model, same batch, prompt and new-token counts, threads and BLAS set-up.

  .venv/bin/python bench/generate.py --n-layer 6 --n-embd 512 --n-head 8 --batch 32 --threads 2
"""
import argparse, json, time

import torch

# Same shapes and contexts as preset_config in src/model/config.cpp (layers, width, heads, context).
SIZES = {"tiny": (2, 64, 4, 128), "small": (4, 128, 4, 256), "medium": (6, 256, 8, 512),
         "124m": (12, 768, 12, 1024), "350m": (24, 1024, 16, 1024)}


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
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    dev = torch.device(a.device)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    from transformers import GPT2Config, GPT2LMHeadModel
    L, C, H, ctx = SIZES[a.size] if a.size else (a.n_layer, a.n_embd, a.n_head, 1024)
    cfg = GPT2Config(n_layer=L, n_embd=C, n_head=H, n_positions=ctx, vocab_size=50257)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(cfg).to(dev).eval()
    # End of the first forward of a generate call = end of prefill; decode time runs from there to the
    # end, as GenerateStats::decode_s does in the C++ generator.
    fwd_ends = []

    def forward_done(*_):  # a hook that returns something would replace the model's output
        sync()
        fwd_ends.append(time.perf_counter())

    model.register_forward_hook(forward_done)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(cfg.vocab_size, (a.batch, a.prompt), generator=g)
    ids = ids.to(dev)
    mask = torch.ones_like(ids)
    kw = dict(do_sample=True, temperature=1.0, top_k=0, max_new_tokens=a.new, min_new_tokens=a.new,
              pad_token_id=0, use_cache=True)
    with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.dtype == "bf16"):
        # Warm-up at the measured batch size (CUDA loads or JIT-compiles kernels per shape on first use).
        model.generate(ids, attention_mask=mask, **dict(kw, max_new_tokens=min(8, a.new), min_new_tokens=min(8, a.new)))
        fwd_ends.clear()
        t0 = time.perf_counter()
        out = model.generate(ids, attention_mask=mask, **kw)
        sync()
        t1 = time.perf_counter()
        el = t1 - t0
    n = (out.shape[1] - a.prompt) * a.batch
    print(json.dumps({"impl": "pytorch-python", "layers": L, "width": C, "dtype": a.dtype, "batch": a.batch,
                      "prompt": a.prompt, "new": a.new, "threads": torch.get_num_threads(), "device": a.device,
                      "tokens_per_s": round(n / el, 2), "decode_tokens_per_s": round(n / (t1 - fwd_ends[0]), 2),
                      "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1)}))


if __name__ == "__main__":
    main()

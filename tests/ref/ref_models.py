#!/usr/bin/python3
"""Independent reference for rlhf-cpp's model layer (the llm.c way: a Python twin defines "correct").

Writes tiny random checkpoints in exact Hugging Face layout (config.json + model.safetensors, or a
sharded model.safetensors.index.json) and, for fixed token-id sequences, the expected log-probs
log p(ids[i+1] | ids[0..i]) (and per-position scores for sequence-classification models), computed
from scratch in float64 from the values exactly as stored on disk.

Deliberately shares nothing with the C++ code or with transformers: plain PyTorch tensor math
(Debian /usr/bin/python3, torch 1.13), its own safetensors writer, GPT-2's Conv1D (in, out) weights
used as stored, rotary embeddings written as explicit pair rotations, llama3 rope scaling as in
Meta's reference (per frequency). tests/hf/check_transformers.py separately checks that transformers
loads these directories with no missing or unexpected keys and produces the same numbers.

    /usr/bin/python3 tests/ref/ref_models.py --out build/tests/ref_models

Output: one directory per case plus manifest.json:
    {"cases": {"<name>": {"dir": "<name>", "kind": "lm" | "score", "storage": "F32" | "BF16" | "F16",
                          "sequences": [[ids]], "logprobs": [[...]] (lm), "scores": [[[...]]] (score)}}}
Deterministic: every random draw comes from a generator seeded per case.
"""
import argparse
import json
import math
import os
import shutil
import struct
import sys
import time

import torch

# ---- a minimal safetensors writer ------------------------------------------------------------------

ST_DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.float64: "F64",
             torch.int64: "I64"}


def tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: reinterpret the 16-bit patterns
        t = t.view(torch.int16)
    return t.numpy().tobytes()  # little-endian host (x86-64, aarch64)


def write_safetensors(path, tensors, metadata=None):
    """tensors: dict name -> tensor (already in the on-disk dtype). Layout as the safetensors
    library writes it: u64 LE header length, JSON header padded with spaces to 8 bytes, data."""
    header = {"__metadata__": metadata or {"format": "pt"}}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name]
        b = tensor_bytes(t)
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def write_checkpoint(out_dir, config, tensors, shards=1):
    """config.json + model.safetensors, or `shards` files + model.safetensors.index.json."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    if shards == 1:
        write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors)
        return
    names = list(tensors)  # insertion order: embeddings, layer 0, layer 1, ..., final norm, head
    per = (len(names) + shards - 1) // shards
    weight_map, total = {}, 0
    for s in range(shards):
        fname = "model-%05d-of-%05d.safetensors" % (s + 1, shards)
        part = {n: tensors[n] for n in names[s * per:(s + 1) * per]}
        write_safetensors(os.path.join(out_dir, fname), part)
        for n, t in part.items():
            weight_map[n] = fname
            total += t.numel() * t.element_size()
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)


# ---- random parameters ---------------------------------------------------------------------------------


class Init:
    """Random values with spreads large enough that attention is far from uniform and log-probs
    differ visibly between tokens (transformers' 0.02 would make every model nearly uniform)."""

    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def normal(self, shape, std):
        return torch.randn(shape, generator=self.g, dtype=torch.float32) * std

    def weight(self, *shape):
        return self.normal(shape, 0.2)

    def bias(self, n):
        return self.normal((n,), 0.1)

    def norm(self, n):
        return 1.0 + self.normal((n,), 0.1)

    def ids(self, n, vocab):
        return torch.randint(0, vocab, (n,), generator=self.g).tolist()


def gpt2_tensors(cfg, init, prefix="transformer.", old_buffers=False, head="lm"):
    """HF GPT2LMHeadModel / GPT2ForSequenceClassification state dict (Conv1D weights are (in, out))."""
    C, L, V, P = cfg["n_embd"], cfg["n_layer"], cfg["vocab_size"], cfg["n_positions"]
    inner = cfg.get("n_inner") or 4 * C
    t = {prefix + "wte.weight": init.normal((V, C), 0.3), prefix + "wpe.weight": init.normal((P, C), 0.1)}
    for i in range(L):
        p = "%sh.%d." % (prefix, i)
        t[p + "ln_1.weight"], t[p + "ln_1.bias"] = init.norm(C), init.bias(C)
        t[p + "attn.c_attn.weight"], t[p + "attn.c_attn.bias"] = init.weight(C, 3 * C), init.bias(3 * C)
        t[p + "attn.c_proj.weight"], t[p + "attn.c_proj.bias"] = init.weight(C, C), init.bias(C)
        t[p + "ln_2.weight"], t[p + "ln_2.bias"] = init.norm(C), init.bias(C)
        t[p + "mlp.c_fc.weight"], t[p + "mlp.c_fc.bias"] = init.weight(C, inner), init.bias(inner)
        t[p + "mlp.c_proj.weight"], t[p + "mlp.c_proj.bias"] = init.weight(inner, C), init.bias(C)
        if old_buffers:  # as in the original openai-community/gpt2 files: a causal mask and -1e4
            t[p + "attn.bias"] = torch.tril(torch.ones(P, P)).view(1, 1, P, P)
            t[p + "attn.masked_bias"] = torch.tensor(-1e4)
    t[prefix + "ln_f.weight"], t[prefix + "ln_f.bias"] = init.norm(C), init.bias(C)
    if head == "score":
        t["score.weight"] = init.normal((cfg["num_labels"], C), 0.3)
    elif not cfg.get("tie_word_embeddings", True):
        t["lm_head.weight"] = init.normal((V, C), 0.3)  # tied heads are not stored, as transformers does
    return t


def llama_tensors(cfg, init, head="lm"):
    """HF LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM / *ForSequenceClassification."""
    C, L, V = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg.get("head_dim") or C // H
    I = cfg["intermediate_size"]
    mt = cfg["model_type"]
    qkv_bias = mt == "qwen2" or (mt == "llama" and cfg.get("attention_bias", False))
    o_bias = mt == "llama" and cfg.get("attention_bias", False)
    t = {"model.embed_tokens.weight": init.normal((V, C), 0.3)}
    for i in range(L):
        p = "model.layers.%d." % i
        t[p + "input_layernorm.weight"] = init.norm(C)
        t[p + "self_attn.q_proj.weight"] = init.weight(H * D, C)
        t[p + "self_attn.k_proj.weight"] = init.weight(KV * D, C)
        t[p + "self_attn.v_proj.weight"] = init.weight(KV * D, C)
        if qkv_bias:
            t[p + "self_attn.q_proj.bias"] = init.bias(H * D)
            t[p + "self_attn.k_proj.bias"] = init.bias(KV * D)
            t[p + "self_attn.v_proj.bias"] = init.bias(KV * D)
        t[p + "self_attn.o_proj.weight"] = init.weight(C, H * D)
        if o_bias:
            t[p + "self_attn.o_proj.bias"] = init.bias(C)
        t[p + "post_attention_layernorm.weight"] = init.norm(C)
        t[p + "mlp.gate_proj.weight"] = init.weight(I, C)
        t[p + "mlp.up_proj.weight"] = init.weight(I, C)
        t[p + "mlp.down_proj.weight"] = init.weight(C, I)
    t["model.norm.weight"] = init.norm(C)
    if head == "score":
        t["score.weight"] = init.normal((cfg["num_labels"], C), 0.3)
    elif not cfg.get("tie_word_embeddings", False):
        t["lm_head.weight"] = init.normal((V, C), 0.3)
    return t


# ---- forward passes in float64 ----------------------------------------------------------------------------


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def rms_norm(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def act(x, name):
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    if name == "gelu":
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    if name in ("silu", "swish"):
        return x / (1.0 + torch.exp(-x))
    if name == "relu":
        return x.clamp(min=0)
    raise ValueError(name)


def softmax_attention(q, k, v, allowed, scale):
    """q (H, T, D), k/v (H, S, D), allowed (T, S) bool -> (T, H*D)."""
    s = (q @ k.transpose(-1, -2)) * scale
    s = s.masked_fill(~allowed, float("-inf"))
    p = torch.exp(s - s.max(-1, keepdim=True).values)
    p = p / p.sum(-1, keepdim=True)
    o = p @ v  # (H, T, D)
    return o.transpose(0, 1).reshape(q.shape[1], -1)


def gpt2_forward(p, cfg, ids):
    """p: float64 tensors under names without the "transformer." prefix. Returns final hidden (T, C)."""
    C, H = cfg["n_embd"], cfg["n_head"]
    D, T, eps = C // H, len(ids), cfg.get("layer_norm_epsilon", 1e-5)
    x = p["wte.weight"][ids] + p["wpe.weight"][:T]
    pos = torch.arange(T)
    causal = pos[None, :] <= pos[:, None]
    for i in range(cfg["n_layer"]):
        g = lambda n: p["h.%d.%s" % (i, n)]
        a = layer_norm(x, g("ln_1.weight"), g("ln_1.bias"), eps)
        qkv = a @ g("attn.c_attn.weight") + g("attn.c_attn.bias")  # Conv1D: x @ W(in, out)
        q, k, v = (z.reshape(T, H, D).transpose(0, 1) for z in qkv.split(C, -1))
        scale = 1.0 / math.sqrt(D) if cfg.get("scale_attn_weights", True) else 1.0
        if cfg.get("scale_attn_by_inverse_layer_idx", False):
            scale /= i + 1
        o = softmax_attention(q, k, v, causal, scale)
        x = x + o @ g("attn.c_proj.weight") + g("attn.c_proj.bias")
        m = layer_norm(x, g("ln_2.weight"), g("ln_2.bias"), eps)
        m = act(m @ g("mlp.c_fc.weight") + g("mlp.c_fc.bias"), cfg.get("activation_function", "gelu_new"))
        x = x + m @ g("mlp.c_proj.weight") + g("mlp.c_proj.bias")
    return layer_norm(x, p["ln_f.weight"], p["ln_f.bias"], eps)


def rope_frequencies(cfg):
    """Angular frequency of each rotated pair (D/2,), float64, with rope_scaling applied."""
    C, H = cfg["hidden_size"], cfg["num_attention_heads"]
    D = cfg.get("head_dim") or C // H
    theta = cfg.get("rope_theta", 10000.0)
    freqs = [theta ** (-(2.0 * j) / D) for j in range(D // 2)]
    rs = cfg.get("rope_scaling")
    if rs:
        kind = rs.get("rope_type", rs.get("type"))
        if kind == "linear":  # positions divided by factor
            freqs = [f / rs["factor"] for f in freqs]
        elif kind == "llama3":  # Meta's apply_scaling (llama-models), one frequency at a time
            factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
            old_ctx = rs["original_max_position_embeddings"]
            low_freq_wavelen, high_freq_wavelen = old_ctx / lo, old_ctx / hi
            out = []
            for f in freqs:
                wavelen = 2 * math.pi / f
                if wavelen < high_freq_wavelen:
                    out.append(f)
                elif wavelen > low_freq_wavelen:
                    out.append(f / factor)
                else:
                    smooth = (old_ctx / wavelen - lo) / (hi - lo)
                    out.append((1 - smooth) * f / factor + smooth * f)
            freqs = out
        elif kind not in (None, "default"):
            raise ValueError(kind)
    return torch.tensor(freqs, dtype=torch.float64)


def rotate_pairs(x, freqs):
    """Rotary embedding in the HF checkpoint layout: dimension j is paired with j + D/2.
    x (N, T, D); position of row t is t."""
    T, half = x.shape[1], x.shape[2] // 2
    ang = torch.arange(T, dtype=torch.float64)[:, None] * freqs[None, :]  # (T, D/2)
    c, s = torch.cos(ang), torch.sin(ang)
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * c - b * s, b * c + a * s], -1)


def llama_forward(p, cfg, ids):
    """Final hidden (T, C) of the Llama family (llama, mistral, qwen2)."""
    C, H, KV = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D, T = cfg.get("head_dim") or C // H, len(ids)
    eps = cfg.get("rms_norm_eps", 1e-6)
    window = cfg.get("sliding_window") if cfg["model_type"] == "mistral" else None
    freqs = rope_frequencies(cfg)
    pos = torch.arange(T)
    allowed = pos[None, :] <= pos[:, None]  # [query, key]
    if window:
        allowed &= (pos[:, None] - pos[None, :]) < window
    x = p["model.embed_tokens.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        g = lambda n: p["model.layers.%d.%s" % (i, n)]
        opt = lambda n: p.get("model.layers.%d.%s" % (i, n), 0.0)
        h = rms_norm(x, g("input_layernorm.weight"), eps)
        q = h @ g("self_attn.q_proj.weight").T + opt("self_attn.q_proj.bias")
        k = h @ g("self_attn.k_proj.weight").T + opt("self_attn.k_proj.bias")
        v = h @ g("self_attn.v_proj.weight").T + opt("self_attn.v_proj.bias")
        q = rotate_pairs(q.reshape(T, H, D).transpose(0, 1), freqs)
        k = rotate_pairs(k.reshape(T, KV, D).transpose(0, 1), freqs)
        v = v.reshape(T, KV, D).transpose(0, 1)
        # query head j uses key/value head j // (H / KV)
        kv_of = [j // (H // KV) for j in range(H)]
        o = softmax_attention(q, k[kv_of], v[kv_of], allowed, 1.0 / math.sqrt(D))
        x = x + o @ g("self_attn.o_proj.weight").T + opt("self_attn.o_proj.bias")
        h = rms_norm(x, g("post_attention_layernorm.weight"), eps)
        m = act(h @ g("mlp.gate_proj.weight").T, cfg.get("hidden_act", "silu")) * (h @ g("mlp.up_proj.weight").T)
        x = x + m @ g("mlp.down_proj.weight").T
    return rms_norm(x, p["model.norm.weight"], eps)


def log_softmax_rows(logits):
    m = logits.max(-1, keepdim=True).values
    return logits - m - torch.log(torch.exp(logits - m).sum(-1, keepdim=True))


# ---- the cases ----------------------------------------------------------------------------------------------

GPT2_BASE = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 128, "n_positions": 64,
             "n_ctx": 64, "n_embd": 32, "n_layer": 2, "n_head": 4, "n_inner": None,
             "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "embd_pdrop": 0.1, "attn_pdrop": 0.1,
             "resid_pdrop": 0.1, "initializer_range": 0.02, "bos_token_id": 0, "eos_token_id": 0}

LLAMA_BASE = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 160, "hidden_size": 32,
              "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
              "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu",
              "tie_word_embeddings": False, "attention_bias": False, "mlp_bias": False, "rope_scaling": None,
              "initializer_range": 0.02, "bos_token_id": 1, "eos_token_id": 2}


def with_(base, **kw):
    c = dict(base)
    c.update(kw)
    return c


def score_config(cfg, arch, num_labels):
    """As transformers writes it: id2label/label2id, except for its default of 2 labels, which it omits."""
    c = with_(cfg, architectures=[arch], pad_token_id=0)
    if num_labels != 2:
        c["id2label"] = {str(i): "LABEL_%d" % i for i in range(num_labels)}
        c["label2id"] = {"LABEL_%d" % i: i for i in range(num_labels)}
    c["num_labels"] = num_labels  # not written to config.json (popped in make_case); the head's shape
    return c


# name -> (family, config, storage dtype, options). Sequences: lengths 16, 9 and 2.
CASES = {
    "gpt2": ("gpt2", GPT2_BASE, torch.float32, {}),
    "gpt2_noprefix": ("gpt2", with_(GPT2_BASE, activation_function="gelu", n_inner=80,
                                    scale_attn_by_inverse_layer_idx=True),
                      torch.float32, {"prefix": "", "old_buffers": True}),
    "gpt2_untied": ("gpt2", with_(GPT2_BASE, tie_word_embeddings=False), torch.float32, {}),
    "gpt2_bf16": ("gpt2", GPT2_BASE, torch.bfloat16, {}),
    "llama_gqa": ("llama", LLAMA_BASE, torch.float32, {}),
    "llama_gqa_bf16": ("llama", LLAMA_BASE, torch.bfloat16, {}),
    "llama_f16": ("llama", LLAMA_BASE, torch.float16, {}),
    "llama_tied": ("llama", with_(LLAMA_BASE, tie_word_embeddings=True, num_key_value_heads=4), torch.float32, {}),
    "llama_head_dim": ("llama", with_(LLAMA_BASE, hidden_size=48, num_attention_heads=4, num_key_value_heads=1,
                                      head_dim=16), torch.float32, {}),
    "llama31_rope": ("llama", with_(LLAMA_BASE, head_dim=16, hidden_size=32, num_attention_heads=2,
                                    num_key_value_heads=1, rope_theta=500000.0,
                                    rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                  "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
                     torch.float32, {}),
    "llama_rope_linear": ("llama", with_(LLAMA_BASE, rope_scaling={"type": "linear", "factor": 2.5}),
                          torch.float32, {}),
    "llama_sharded": ("llama", LLAMA_BASE, torch.float32, {"shards": 2}),
    "qwen2": ("llama", with_(LLAMA_BASE, model_type="qwen2", architectures=["Qwen2ForCausalLM"],
                             use_sliding_window=False, sliding_window=4096, max_window_layers=2,
                             tie_word_embeddings=True, rope_theta=1000000.0, rms_norm_eps=1e-6),
              torch.float32, {}),
    "mistral_swa": ("llama", with_(LLAMA_BASE, model_type="mistral", architectures=["MistralForCausalLM"],
                                   sliding_window=5, head_dim=8), torch.float32, {}),
    "gpt2_score": ("gpt2", score_config(GPT2_BASE, "GPT2ForSequenceClassification", 1), torch.float32,
                   {"head": "score"}),
    "llama_score": ("llama", score_config(LLAMA_BASE, "LlamaForSequenceClassification", 2), torch.float32,
                    {"head": "score"}),
}

def make_case(name, out_root, seed):
    family, cfg, storage, opts = CASES[name]
    cfg = dict(cfg)
    if cfg["model_type"] in ("mistral", "qwen2"):  # llama-only keys
        cfg.pop("attention_bias", None)
        cfg.pop("mlp_bias", None)
    init = Init(seed)
    head = opts.get("head", "lm")
    if family == "gpt2":
        prefix = opts.get("prefix", "transformer.")
        tensors = gpt2_tensors(cfg, init, prefix=prefix, old_buffers=opts.get("old_buffers", False), head=head)
    else:
        tensors = llama_tensors(cfg, init, head=head)
    stored = {n: (t.to(storage) if t.is_floating_point() else t) for n, t in tensors.items()}
    if family == "gpt2" and opts.get("old_buffers"):  # buffers stay F32, as in the original files
        for n in stored:
            if n.endswith(".attn.bias") or n.endswith(".attn.masked_bias"):
                stored[n] = tensors[n]
    num_labels = cfg.pop("num_labels", None)
    config = dict(cfg)
    config["torch_dtype"] = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}[storage]
    config["transformers_version"] = "4.45.2"
    case_dir = os.path.join(out_root, name)
    write_checkpoint(case_dir, config, stored, shards=opts.get("shards", 1))

    # The reference computes from what is on disk, widened to float64.
    p = {}
    for n, t in stored.items():
        if family == "gpt2" and n.startswith("transformer."):
            n = n[len("transformer."):]
        p[n] = t.to(torch.float64)
    vocab = cfg["vocab_size"]
    seqs = [init.ids(16, vocab), init.ids(9, vocab), init.ids(2, vocab)]
    result = {"dir": name, "kind": head, "storage": ST_DTYPES[storage], "sequences": seqs}
    if head == "score":
        result["num_labels"] = num_labels
        result["scores"] = []
    else:
        result["logprobs"] = []
    for ids in seqs:
        h = gpt2_forward(p, cfg, ids) if family == "gpt2" else llama_forward(p, cfg, ids)
        if head == "score":
            result["scores"].append((h @ p["score.weight"].T).tolist())  # (T, num_labels)
            continue
        if "lm_head.weight" in p:
            w = p["lm_head.weight"]
        else:
            w = p["wte.weight"] if family == "gpt2" else p["model.embed_tokens.weight"]
        lp = log_softmax_rows(h @ w.T)
        result["logprobs"].append([lp[i, ids[i + 1]].item() for i in range(len(ids) - 1)])
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output directory (replaced)")
    ap.add_argument("--only", nargs="*", help="case names (default: all)")
    args = ap.parse_args()
    t0 = time.time()
    torch.set_num_threads(1)
    tmp = args.out.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    manifest = {"cases": {}}
    names = list(CASES)
    for name in args.only or names:
        manifest["cases"][name] = make_case(name, tmp, seed=1000 + names.index(name))
    with open(os.path.join(tmp, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    # Replace the previous output only once everything is written.
    shutil.rmtree(args.out, ignore_errors=True)
    os.rename(tmp, args.out)
    print("ref_models: wrote %d cases to %s in %.2fs" % (len(manifest["cases"]), args.out, time.time() - t0))


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Tiny GGUF models for the converter tests (tests/test_gguf_convert.cpp), written with the `gguf` package
(llama.cpp's gguf-py, 0.19.0) the way llama.cpp's convert_hf_to_gguf.py writes them, with their references.

Each fixture starts from a small random Hugging Face model (transformers) and an original tokenizer
(trained here with HF tokenizers, or with SentencePiece), and writes:
  <name>.gguf        the model as llama.cpp would store it: GGUF tensor names, Llama's q_proj/k_proj
                     through convert_hf_to_gguf.py's permute(), GPT-2's Conv1D weights transposed to
                     [out, in], quantised tensors, tokenizer.ggml.* metadata, chat templates;
  <name>.ref.json    what a correct conversion must give:
                       "logits": transformers' logits (fp32) of the HF model whose weights are the
                       dequantised values, on "prompts"; computed without any un-permuting: rows are
                       quantised independently, so dequantise(quantise(W)) in HF layout is exactly
                       what un-permuting the stored tensor must give (asserted here bit for bit);
                       "corpus" / "ids": the ORIGINAL tokenizer's ids (HF tokenizers, or SentencePiece
                       itself for the SentencePiece fixture) on a mixed corpus;
                       "config" / "tokenizer_config": fields the written files must hold.
  bad_*.gguf         broken variants, each with the error the converter must print (manifest "bad").
  manifest.json

  gguf_model_fixtures.py --out BUILD/tests/gguf_models
Deterministic (fixed seeds). Needs the project venv (transformers, tokenizers, sentencepiece, gguf)."""
import argparse
import io
import json
import os
import sys

import numpy as np
import torch

import gguf
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
TOOL_TEMPLATE = "{% for message in messages %}[{{ message['role'] }}] {{ message['content'] }}\n{% endfor %}"

TRAIN_TEXT = """The quick brown fox jumps over the lazy dog. A language model predicts the next token.
def add(a, b):\n    return a + b\n\nfor i in range(10):\n    print(i, i * i)\n
Reinforcement learning from human feedback trains a reward model on preferences, then optimises a policy.
Numbers like 12345 and 3.14159 and 2026-12-07 appear in text; so do emails like someone@example.com.
Unicode: café, naïve, Straße, Ελληνικά, русский, 日本語のテキスト, 中文, emoji 🙂🚀 and math ∑ √ ≠.
Tabs\tand  double  spaces, new\nlines\n\n and trailing spaces   .
"I'm", he said, "we'll see; they've done it, it's fine, you'd know."
"""

CORPUS = [
    "Hello world! The quick brown fox.",
    "def f(x):\n    return x ** 2  # square",
    "Numbers: 0 7 42 1234567 3.14159 -12",
    "café naïve Straße Ελληνικά русский 日本語 中文 🙂🚀 ∑√≠",
    "  leading spaces and trailing  ",
    "Tabs\tand\nnew lines\n\n\nend",
    "I'm sure they'll say it's 'quoted' and we've seen it.",
    "unseen characters: ❄ ☃ ʘ ᚠ ꙮ",
    "",
    " ",
]
CHAT_CORPUS = [
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>",
    "<|im_start|>system\nYou are helpful.<|im_end|><|endoftext|>",
]


def mixed_corpus(rng, base):
    """The fixed texts plus 25 random slices of the training text (word fragments, odd spacing)."""
    out = list(base)
    for _ in range(25):
        i = int(rng.integers(0, len(TRAIN_TEXT) - 10))
        out.append(TRAIN_TEXT[i:i + int(rng.integers(1, 60))])
    return out


def llama_permute(weights, n_head, n_head_kv):
    """convert_hf_to_gguf.py LlamaModel.permute (HF rotate-half order -> llama.cpp interleaved)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def random_kquant(rng, qtype, rows, cols):
    """Raw blocks of a K-quant (gguf-py cannot quantise these) with small finite fp16 scales."""
    block, size = GGML_QUANT_SIZES[qtype]
    n_blocks = rows * cols // block
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    fields = {T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208], T.Q3_K: [108], T.Q2_K: [80, 82]}[qtype]
    for off in fields:
        d = (np.abs(rng.standard_normal(n_blocks)) * 0.002 + 0.0005).astype(np.float16)
        raw[:, off:off + 2] = d.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(rows, cols // block * size)


class Writer:
    """A GGUF file being written, and the dequantised HF-layout weights it stands for."""

    def __init__(self, path, arch, rng):
        self.w = gguf.GGUFWriter(path, arch=arch)
        self.path, self.arch, self.rng = path, arch, rng
        self.stored = {}  # gguf name -> (qtype, bytes or array)

    def tensor(self, name, w, qtype, layout=None, raw=None):
        """Stores HF tensor `w` (numpy fp32, HF layout) under GGUF `name` as `qtype`; returns the
        dequantised HF-layout values. layout: None, ("permute", n_head, n_kv) or "transpose"."""
        if raw is not None:  # random K-quant blocks: the values are whatever they dequantise to
            assert layout is None
            self.w.add_tensor(name, raw, raw_dtype=qtype)
            self.stored[name] = (qtype, raw)
            return np.asarray(gguf.quants.dequantize(raw, qtype), dtype=np.float32)
        w = np.ascontiguousarray(w, dtype=np.float32)
        if layout == "transpose":
            g = np.ascontiguousarray(w.T)
        elif layout is not None:
            g = llama_permute(w, layout[1], layout[2])
        else:
            g = w
        if qtype == T.F32:
            data = g
            self.w.add_tensor(name, data)
        elif qtype == T.F16:
            data = g.astype(np.float16)
            self.w.add_tensor(name, data)
        else:
            data = gguf.quants.quantize(g, qtype)
            self.w.add_tensor(name, data, raw_dtype=qtype)
        self.stored[name] = (qtype, data)
        deq_g = np.asarray(gguf.quants.dequantize(data if qtype != T.F16 else data, qtype), dtype=np.float32).reshape(g.shape)
        # The reference, in HF layout and without un-permuting anything.
        if layout == "transpose":
            ref = np.ascontiguousarray(deq_g.T)
        elif layout is not None:
            if qtype in (T.F32, T.F16):
                ref = w.astype(np.float16).astype(np.float32) if qtype == T.F16 else w.copy()
            else:
                ref = np.asarray(gguf.quants.dequantize(gguf.quants.quantize(w, qtype), qtype), dtype=np.float32).reshape(w.shape)
            again = llama_permute(ref, layout[1], layout[2])
            assert again.tobytes() == deq_g.tobytes(), f"{name}: row-wise quantisation does not commute with the permutation"
        else:
            ref = deq_g
        return ref

    def close(self):
        self.w.write_header_to_file()
        self.w.write_kv_data_to_file()
        self.w.write_tensors_to_file()
        self.w.close()


# ---- tokenizers ---------------------------------------------------------------------------------

def train_bpe(pre, specials_first, specials_last, vocab_size, normalizer=None):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    if normalizer is not None:
        tok.normalizer = normalizer
    if pre == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    elif pre == "smollm":
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=False)])
    elif pre == "qwen2":
        from tokenizers import Regex
        pat = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pat), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials_first, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([TRAIN_TEXT] * 3 + CORPUS[:4], trainer=trainer)
    if specials_last:
        tok.add_special_tokens(specials_last)
    return tok


def bpe_metadata(w, tok, pre):
    """tokenizer.ggml.* as convert_hf_to_gguf.py's _set_vocab_gpt2 writes them."""
    j = json.loads(tok.to_str())
    vocab = tok.get_vocab(with_added_tokens=True)
    n = max(vocab.values()) + 1
    rev = {i: t for t, i in vocab.items()}
    added = {a["content"]: a for a in j["added_tokens"]}
    tokens, types = [], []
    for i in range(n):
        t = rev[i]
        tokens.append(t)
        types.append(gguf.TokenType.CONTROL if t in added and added[t]["special"] else gguf.TokenType.NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in j["model"]["merges"]]
    w.w.add_tokenizer_model("gpt2")
    w.w.add_tokenizer_pre(pre)
    w.w.add_token_list(tokens)
    w.w.add_token_types(types)
    w.w.add_token_merges(merges)
    return tokens


def train_spm(vocab_size):
    import sentencepiece as spm
    buf = io.BytesIO()
    lines = [l for l in (TRAIN_TEXT * 2).split("\n") if l]
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=buf, vocab_size=vocab_size, model_type="bpe", byte_fallback=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=True, split_digits=True,
        allow_whitespace_only_pieces=True, hard_vocab_limit=False, character_coverage=1.0,
        user_defined_symbols=["<|im_start|>", "<|im_end|>"], unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        minloglevel=2)
    return spm.SentencePieceProcessor(model_proto=buf.getvalue())


def spm_metadata(w, sp):
    """tokenizer.ggml.* as convert_hf_to_gguf.py's _set_vocab_sentencepiece writes them."""
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        if sp.is_unknown(i):
            t = gguf.TokenType.UNKNOWN
        elif sp.is_control(i):
            t = gguf.TokenType.CONTROL
        elif sp.is_unused(i):
            t = gguf.TokenType.UNUSED
        elif sp.is_byte(i):
            t = gguf.TokenType.BYTE
        elif tokens[-1] in ("<|im_start|>", "<|im_end|>"):
            t = gguf.TokenType.USER_DEFINED
        else:
            t = gguf.TokenType.NORMAL
        types.append(t)
    w.w.add_tokenizer_model("llama")
    w.w.add_tokenizer_pre("default")
    w.w.add_token_list(tokens)
    w.w.add_token_scores(scores)
    w.w.add_token_types(types)
    return tokens


# ---- models -------------------------------------------------------------------------------------

PROMPT_LEN = 12


def prompts(vocab, rng):
    return [rng.integers(0, vocab, size=PROMPT_LEN).tolist() for _ in range(3)]


def reference_logits(model, prompts_):
    model.eval()
    with torch.no_grad():
        return [model(torch.tensor([p])).logits[0].float().numpy().tolist() for p in prompts_]


def llama_like(out, name, arch, tok_kind, rng, quant, tied, qkv_bias, n_ff=96, vocab_pad=0, extra_meta=None):
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM
    torch.manual_seed(int(rng.integers(0, 2**31)))
    if tok_kind == "spm":
        sp = train_spm(420)
        n_tokens = sp.get_piece_size()
    elif arch == "qwen2":
        from tokenizers import AddedToken, normalizers
        tok = train_bpe("qwen2", [], [AddedToken(t, special=True, normalized=False)
                                      for t in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]], 420,
                        normalizer=normalizers.NFC())
        n_tokens = tok.get_vocab_size(with_added_tokens=True)
    else:
        tok = train_bpe("smollm", ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], [], 420)
        n_tokens = tok.get_vocab_size(with_added_tokens=True)
    V, C, H, KV, L = n_tokens + vocab_pad, 64, 4, 2, 2
    kw = dict(vocab_size=V, hidden_size=C, intermediate_size=n_ff, num_hidden_layers=L, num_attention_heads=H,
              num_key_value_heads=KV, max_position_embeddings=128, rms_norm_eps=1e-5, rope_theta=100000.0,
              tie_word_embeddings=tied)
    if arch == "qwen2":
        cfg = Qwen2Config(**kw)
        model = Qwen2ForCausalLM(cfg)
    else:
        cfg = LlamaConfig(attention_bias=qkv_bias, **kw)
        model = LlamaForCausalLM(cfg)
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    for k in sd:  # norms away from 1 so that a mix-up of norms shows
        if "norm" in k:
            sd[k] = (1.0 + 0.3 * rng.standard_normal(sd[k].shape)).astype(np.float32)
        elif k.endswith(".bias"):
            sd[k] = (0.2 * rng.standard_normal(sd[k].shape)).astype(np.float32)
        else:
            sd[k] = (sd[k] * 4).astype(np.float32)  # init std 0.02 -> 0.08: logits that differ
    path = os.path.join(out, name + ".gguf")
    w = Writer(path, arch, rng)
    w.w.add_name(name)
    w.w.add_block_count(L)
    w.w.add_context_length(128)
    w.w.add_embedding_length(C)
    w.w.add_feed_forward_length(n_ff)
    w.w.add_head_count(H)
    w.w.add_head_count_kv(KV)
    w.w.add_rope_freq_base(100000.0)
    w.w.add_layer_norm_rms_eps(1e-5)
    w.w.add_rope_dimension_count(C // H)
    w.w.add_file_type(7)
    perm = arch == "llama"
    ref = {}
    ref["model.embed_tokens.weight"] = w.tensor("token_embd.weight", sd["model.embed_tokens.weight"], quant["embd"])
    for l in range(L):
        h, b = f"model.layers.{l}.", f"blk.{l}."
        ref[h + "input_layernorm.weight"] = w.tensor(b + "attn_norm.weight", sd[h + "input_layernorm.weight"], T.F32)
        for proj, g, heads in (("q", "attn_q", H), ("k", "attn_k", KV), ("v", "attn_v", None)):
            lay = ("permute", H, heads) if perm and heads else None
            ref[h + f"self_attn.{proj}_proj.weight"] = w.tensor(b + g + ".weight", sd[h + f"self_attn.{proj}_proj.weight"],
                                                               quant[proj], lay)
            if h + f"self_attn.{proj}_proj.bias" in sd:
                ref[h + f"self_attn.{proj}_proj.bias"] = w.tensor(b + g + ".bias", sd[h + f"self_attn.{proj}_proj.bias"],
                                                                 T.F32, lay)
        ref[h + "self_attn.o_proj.weight"] = w.tensor(b + "attn_output.weight", sd[h + "self_attn.o_proj.weight"], quant["o"])
        if h + "self_attn.o_proj.bias" in sd:  # Llama's attention_bias covers o_proj too
            ref[h + "self_attn.o_proj.bias"] = w.tensor(b + "attn_output.bias", sd[h + "self_attn.o_proj.bias"], T.F32)
        ref[h + "post_attention_layernorm.weight"] = w.tensor(b + "ffn_norm.weight", sd[h + "post_attention_layernorm.weight"], T.F32)
        ref[h + "mlp.gate_proj.weight"] = w.tensor(b + "ffn_gate.weight", sd[h + "mlp.gate_proj.weight"], quant["gate"])
        ref[h + "mlp.up_proj.weight"] = w.tensor(b + "ffn_up.weight", sd[h + "mlp.up_proj.weight"], quant["up"])
        if quant["down"] in (T.Q4_K, T.Q6_K, T.Q5_K):
            raw = random_kquant(rng, quant["down"], C, n_ff)
            ref[h + "mlp.down_proj.weight"] = w.tensor(b + "ffn_down.weight", None, quant["down"], raw=raw).reshape(C, n_ff)
        else:
            ref[h + "mlp.down_proj.weight"] = w.tensor(b + "ffn_down.weight", sd[h + "mlp.down_proj.weight"], quant["down"])
    ref["model.norm.weight"] = w.tensor("output_norm.weight", sd["model.norm.weight"], T.F32)
    if not tied:
        ref["lm_head.weight"] = w.tensor("output.weight", sd["lm_head.weight"], quant["out"])
    # tokenizer metadata
    if tok_kind == "spm":
        tokens = spm_metadata(w, sp)
        w.w.add_bos_token_id(1)
        w.w.add_eos_token_id(2)
        w.w.add_unk_token_id(0)
        w.w.add_add_bos_token(True)
        w.w.add_add_eos_token(False)
        w.w.add_add_space_prefix(True)
        corpus = mixed_corpus(rng, CORPUS)
        ids = [[1] + sp.encode(t) for t in corpus]  # add_bos_token: the BOS, then SentencePiece's own ids
        specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True,
                    "add_eos_token": False}
    else:
        tokens = bpe_metadata(w, tok, "qwen2" if arch == "qwen2" else "smollm")
        vocab = tok.get_vocab(with_added_tokens=True)
        if arch == "qwen2":  # Qwen2-Instruct: no BOS, EOS <|im_end|>, pad <|endoftext|>
            w.w.add_eos_token_id(vocab["<|im_end|>"])
            w.w.add_pad_token_id(vocab["<|endoftext|>"])
            w.w.add_bos_token_id(vocab["<|endoftext|>"])
            w.w.add_add_bos_token(False)
            w.w.add_chat_template([{"name": "default", "template": CHATML}, {"name": "tool_use", "template": TOOL_TEMPLATE}])
            specials = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "add_bos_token": False,
                        "chat_template": [{"name": "default", "template": CHATML}, {"name": "tool_use", "template": TOOL_TEMPLATE}]}
        else:  # SmolLM2-Instruct's metadata
            w.w.add_bos_token_id(1)
            w.w.add_eos_token_id(2)
            w.w.add_unk_token_id(0)
            w.w.add_pad_token_id(2)
            w.w.add_add_bos_token(False)
            w.w.add_chat_template(CHATML)
            specials = {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "unk_token": "<|endoftext|>",
                        "pad_token": "<|im_end|>", "add_bos_token": False, "chat_template": CHATML}
        corpus = mixed_corpus(rng, CORPUS + CHAT_CORPUS)
        ids = [tok.encode(t, add_special_tokens=False).ids for t in corpus]
    if extra_meta:
        extra_meta(w)
    w.close()
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in ref.items()}, strict=False)
    if tied:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    ps = prompts(V, rng)
    cfg_want = {"model_type": arch, "vocab_size": V, "hidden_size": C, "num_hidden_layers": L,
                "num_attention_heads": H, "num_key_value_heads": KV, "intermediate_size": n_ff,
                "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "rope_theta": 100000.0,
                "tie_word_embeddings": tied}
    return {"name": name, "file": name + ".gguf", "arch": arch, "prompts": ps, "logits": reference_logits(model, ps),
            "corpus": corpus, "ids": ids, "config": cfg_want, "tokenizer_config": specials, "n_tokens": len(tokens),
            "hf_loads_gguf": arch in ("llama", "qwen2")}


def gpt2_fixture(out, rng):
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(int(rng.integers(0, 2**31)))
    tok = train_bpe("gpt2", ["<|endoftext|>"], [], 400)
    V = tok.get_vocab_size(with_added_tokens=True)
    C, L, H, P = 64, 2, 4, 64
    model = GPT2LMHeadModel(GPT2Config(vocab_size=V, n_positions=P, n_embd=C, n_layer=L, n_head=H,
                                       layer_norm_epsilon=1e-5, bos_token_id=0, eos_token_id=0))
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items() if not k.endswith(".attn.bias")
          and not k.endswith("masked_bias")}
    for k in sd:
        if k.endswith(".bias") or ".ln_" in k:
            sd[k] = ((1.0 if k.endswith(".weight") else 0.0) + 0.2 * rng.standard_normal(sd[k].shape)).astype(np.float32)
        else:
            sd[k] = (sd[k] * 4).astype(np.float32)
    name = "gpt2_bpe"
    w = Writer(os.path.join(out, name + ".gguf"), "gpt2", rng)
    w.w.add_name(name)
    w.w.add_block_count(L)
    w.w.add_context_length(P)
    w.w.add_embedding_length(C)
    w.w.add_feed_forward_length(4 * C)
    w.w.add_head_count(H)
    w.w.add_layer_norm_eps(1e-5)
    w.w.add_file_type(7)
    ref = {}
    ref["transformer.wte.weight"] = w.tensor("token_embd.weight", sd["transformer.wte.weight"], T.Q8_0)
    ref["transformer.wpe.weight"] = w.tensor("position_embd.weight", sd["transformer.wpe.weight"], T.F32)
    for l in range(L):
        h, b = f"transformer.h.{l}.", f"blk.{l}."
        for hf, g, q, lay in (("ln_1.weight", "attn_norm.weight", T.F32, None), ("ln_1.bias", "attn_norm.bias", T.F32, None),
                              ("attn.c_attn.weight", "attn_qkv.weight", T.F16, "transpose"),
                              ("attn.c_attn.bias", "attn_qkv.bias", T.F32, None),
                              ("attn.c_proj.weight", "attn_output.weight", T.Q8_0, "transpose"),
                              ("attn.c_proj.bias", "attn_output.bias", T.F32, None),
                              ("ln_2.weight", "ffn_norm.weight", T.F32, None), ("ln_2.bias", "ffn_norm.bias", T.F32, None),
                              ("mlp.c_fc.weight", "ffn_up.weight", T.Q5_1, "transpose"),
                              ("mlp.c_fc.bias", "ffn_up.bias", T.F32, None),
                              ("mlp.c_proj.weight", "ffn_down.weight", T.Q4_0, "transpose"),
                              ("mlp.c_proj.bias", "ffn_down.bias", T.F32, None)):
            ref[h + hf] = w.tensor(b + g, sd[h + hf], q, lay)
    ref["transformer.ln_f.weight"] = w.tensor("output_norm.weight", sd["transformer.ln_f.weight"], T.F32)
    ref["transformer.ln_f.bias"] = w.tensor("output_norm.bias", sd["transformer.ln_f.bias"], T.F32)
    # convert_hf_to_gguf.py GPT2Model writes the tied head as a copy of token_embd
    w.w.add_tensor("output.weight", w.stored["token_embd.weight"][1], raw_dtype=T.Q8_0)
    tokens = bpe_metadata(w, tok, "gpt-2")
    w.w.add_bos_token_id(0)
    w.w.add_eos_token_id(0)
    w.w.add_add_bos_token(False)
    w.close()
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in ref.items()}, strict=False)
    ps = prompts(V, rng)
    corpus = mixed_corpus(rng, CORPUS + ["text<|endoftext|>more text"])
    return {"name": name, "file": name + ".gguf", "arch": "gpt2", "prompts": ps, "logits": reference_logits(model, ps),
            "corpus": corpus, "ids": [tok.encode(t, add_special_tokens=False).ids for t in corpus],
            "config": {"model_type": "gpt2", "vocab_size": V, "n_embd": C, "n_layer": L, "n_head": H, "n_positions": P,
                       "layer_norm_epsilon": 1e-5, "tie_word_embeddings": True},
            "tokenizer_config": {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "add_bos_token": False},
            "n_tokens": len(tokens), "hf_loads_gguf": False}


# ---- broken files: each must be refused with one line naming the problem ------------------------------

def patch_string_value(src, dst, old, new):
    """Copies src to dst with one metadata string replaced (same length, so every offset stays)."""
    assert len(old) == len(new)
    data = open(src, "rb").read()
    needle = len(old).to_bytes(8, "little") + old.encode()
    assert data.count(needle) == 1, (old, data.count(needle))
    open(dst, "wb").write(data.replace(needle, len(new).to_bytes(8, "little") + new.encode()))


def bad_fixtures(out, rng):
    good = os.path.join(out, "llama_bpe.gguf")
    data = open(good, "rb").read()
    bad = []

    def put(name, blob, errors):
        open(os.path.join(out, name), "wb").write(blob)
        bad.append({"file": name, "errors": errors})

    put("bad_truncated_header.gguf", data[:200], ["bad_truncated_header.gguf"])
    put("bad_truncated_data.gguf", data[:len(data) - 100], ["bad_truncated_data.gguf", "truncated"])
    put("bad_not_gguf.gguf", b"PK\x03\x04" + data[4:1000], ["bad_not_gguf.gguf"])
    # a count that lies: 2^40 tensors
    blob = bytearray(data)
    blob[8:16] = (1 << 40).to_bytes(8, "little")
    put("bad_tensor_count.gguf", bytes(blob), ["bad_tensor_count.gguf"])
    patch_string_value(good, os.path.join(out, "bad_arch.gguf"), "llama", "mamba")
    # "llama" occurs as the architecture value only once as a length-prefixed string: its keys are
    # "llama.*" (no length prefix right before them). The tokenizer model "gpt2" -> "bert".
    bad.append({"file": "bad_arch.gguf", "errors": ["bad_arch.gguf", "general.architecture", "mamba", "not supported"]})
    patch_string_value(good, os.path.join(out, "bad_tokenizer_model.gguf"), "gpt2", "bert")
    bad.append({"file": "bad_tokenizer_model.gguf", "errors": ["tokenizer.ggml.model", "bert", "not supported"]})
    patch_string_value(good, os.path.join(out, "bad_pre.gguf"), "smollm", "jais-x")
    bad.append({"file": "bad_pre.gguf", "errors": ["tokenizer.ggml.pre", "jais-x", "not supported"]})
    # structurally valid files with a problem in the model
    def small(name, skip=(), iq2=False, extra=None, n_embd_key=64):
        w = Writer(os.path.join(out, name), "llama", rng)
        w.w.add_block_count(1)
        w.w.add_context_length(32)
        w.w.add_embedding_length(n_embd_key)
        w.w.add_feed_forward_length(256)
        w.w.add_head_count(2)
        w.w.add_head_count_kv(2)
        w.w.add_layer_norm_rms_eps(1e-5)
        shapes = {"token_embd.weight": (8, 64), "output_norm.weight": (64,), "blk.0.attn_norm.weight": (64,),
                  "blk.0.attn_q.weight": (64, 64), "blk.0.attn_k.weight": (64, 64), "blk.0.attn_v.weight": (64, 64),
                  "blk.0.attn_output.weight": (64, 64), "blk.0.ffn_norm.weight": (64,), "blk.0.ffn_gate.weight": (256, 64),
                  "blk.0.ffn_up.weight": (256, 64), "blk.0.ffn_down.weight": (64, 256)}
        for n, s in shapes.items():
            if n in skip:
                continue
            if iq2 and n == "blk.0.ffn_down.weight":  # an unsupported type, stored but not dequantisable
                block, size = GGML_QUANT_SIZES[T.IQ2_XXS]
                w.w.add_tensor(n, np.zeros((64, 256 // block * size), dtype=np.uint8), raw_dtype=T.IQ2_XXS)
            elif n == "blk.0.attn_q.weight":
                w.w.add_tensor(n, gguf.quants.quantize(rng.standard_normal(s).astype(np.float32), T.Q8_0), raw_dtype=T.Q8_0)
            else:
                w.w.add_tensor(n, (0.1 * rng.standard_normal(s)).astype(np.float32))
        w.w.add_tokenizer_model("gpt2")
        w.w.add_tokenizer_pre("gpt-2")
        w.w.add_token_list(["a", "b", "ab", "<s>", "c", "d", "e", "f"])
        w.w.add_token_types([1, 1, 1, 3, 1, 1, 1, 1])
        w.w.add_token_merges(["a b"])
        if extra:
            extra(w)
        w.close()

    small("bad_split.gguf", extra=lambda w: w.w.add_uint16("split.count", 3))
    bad.append({"file": "bad_split.gguf", "errors": ["split.count = 3", "merge"]})
    small("bad_partial_rope.gguf", extra=lambda w: w.w.add_rope_dimension_count(16))
    bad.append({"file": "bad_partial_rope.gguf", "errors": ["llama.rope.dimension_count", "partial rotary"]})
    small("bad_missing_tensor.gguf", skip=("blk.0.ffn_gate.weight",))
    bad.append({"file": "bad_missing_tensor.gguf", "errors": ["blk.0.ffn_gate.weight", "missing"]})
    small("bad_shape.gguf", n_embd_key=32)
    bad.append({"file": "bad_shape.gguf", "errors": ["token_embd.weight", "embedding_length"]})
    small("bad_iq2.gguf", iq2=True)
    bad.append({"file": "bad_iq2.gguf", "errors": ["blk.0.ffn_down.weight", "IQ2_XXS", "not supported"]})
    small("bad_extra_tensor.gguf", extra=lambda w: w.w.add_tensor("blk.0.ssm_conv1d.weight", np.zeros((4, 64), np.float32)))
    bad.append({"file": "bad_extra_tensor.gguf", "errors": ["blk.0.ssm_conv1d.weight", "no place"]})
    small("bad_bos.gguf", extra=lambda w: w.w.add_bos_token_id(99))
    bad.append({"file": "bad_bos.gguf", "errors": ["tokenizer.ggml.bos_token_id", "99"]})
    # the control: the same small file, valid, converts (errors None)
    small("small_ok.gguf")
    bad.append({"file": "small_ok.gguf", "errors": None})
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(20261207)
    torch.set_num_threads(1)
    fixtures = [
        # SmolLM2-like: llama, tied, permuted Q/K, Q4_1 attention, Q8_0 embedding (as the real file)
        llama_like(args.out, "llama_bpe", "llama", "bpe", rng,
                   {"embd": T.Q8_0, "q": T.Q4_1, "k": T.Q4_1, "v": T.Q5_0, "o": T.Q5_1, "gate": T.Q4_0,
                    "up": T.F16, "down": T.Q8_0}, tied=True, qkv_bias=False),
        # Qwen2: q/k/v biases, untied head, a padded embedding, K-quant down projections, named templates
        llama_like(args.out, "qwen2_bpe", "qwen2", "bpe", rng,
                   {"embd": T.Q8_0, "q": T.Q8_0, "k": T.Q5_1, "v": T.Q4_1, "o": T.Q8_0, "gate": T.Q5_0,
                    "up": T.Q8_0, "down": T.Q6_K, "out": T.Q8_0}, tied=False, qkv_bias=True, n_ff=256, vocab_pad=6),
        # Llama 2 style: SentencePiece BPE with byte fallback, add_bos, F32/F16 weights, untied
        llama_like(args.out, "llama_spm", "llama", "spm", rng,
                   {"embd": T.F16, "q": T.F32, "k": T.F16, "v": T.F32, "o": T.F32, "gate": T.F32, "up": T.F32,
                    "down": T.Q4_K, "out": T.F32}, tied=False, qkv_bias=True, n_ff=256),
        gpt2_fixture(args.out, rng),
    ]
    bad = bad_fixtures(args.out, rng)
    for f in fixtures:
        with open(os.path.join(args.out, f["name"] + ".ref.json"), "w", encoding="utf-8") as fh:
            json.dump(f, fh, ensure_ascii=False)
    manifest = {"fixtures": [f["name"] for f in fixtures], "bad": bad}
    tmp = os.path.join(args.out, "manifest.json.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=1, ensure_ascii=False)
    os.replace(tmp, os.path.join(args.out, "manifest.json"))
    print(f"gguf_model_fixtures: {len(fixtures)} models, {len(bad)} broken files in {args.out}")


if __name__ == "__main__":
    sys.exit(main())

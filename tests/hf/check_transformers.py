#!/usr/bin/env python
"""Interoperability of rlhf-cpp's model files with Hugging Face transformers (ctest label "hf").

Run with the project venv (scripts/setup_venv.sh), which has transformers 4.45:

    .venv/bin/python tests/hf/check_transformers.py --rlhf build/rlhf --ref build/tests/ref_models \
        --work build/tests/hf_models

Checks, each failing the script (exit 1) when violated:
  0. The independent reference checkpoints (tests/ref/ref_models.py) load in transformers with no
     missing, unexpected or mismatched keys, and transformers computes the log-probs / scores the
     reference wrote: the reference's "exact HF layout" is transformers' layout.
  1. `rlhf init` (gpt2; llama with GQA and an untied head; qwen2; mistral; llama saved as bf16) loads
     in transformers (AutoModelForCausalLM, no missing/unexpected keys, same parameter count) and
     `rlhf logprobs` equals transformers' log-probs within 1e-4.
  2. Random transformers models (gpt2 tied; llama GQA untied; llama 3.1 rope scaling; qwen2 tied;
     mistral with a sliding window shorter than the sequence; llama saved in bf16), saved with
     save_pretrained(safe_serialization=True), give the same log-probs in `rlhf logprobs`.
  3. GPT2ForSequenceClassification / LlamaForSequenceClassification saved by transformers are
     written to --work with their per-position scores (score_manifest.json); the C++ test
     HfScoreModels.MatchTransformers (ctest: hf_score_models) loads them as reward models.
  4. PEFT LoRA adapters both ways, on tied-embedding models with "lm_head" among the targets: an
     adapter PEFT saved gives PEFT's log-probs in `rlhf logprobs --model ADAPTER_DIR`, and an adapter
     `rlhf sft --lora` trained gives rlhf's log-probs when PEFT loads it.
  5. A reward model `rlhf rm` trained where the tokenizer's pad (= its EOS, <|im_end|>) also occurs
     inside the sequences (ChatML turns): the saved config.json's pad_token_id is the pad the saved
     tokenizer pads with, and a right-padded batch through transformers'
     LlamaForSequenceClassification gives `rlhf score`'s rewards.
All numbers are compared in float32 (transformers' eager attention) against rlhf's fp32 output.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import torch
import transformers
from transformers import (AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, GPT2Config,
                          LlamaConfig, MistralConfig, Qwen2Config)

TOL = 1e-4
failures = []


def check(ok, what):
    print(("  ok    " if ok else "  FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)


def rlhf_logprobs(rlhf, model_dir, ids):
    r = subprocess.run([rlhf, "logprobs", "--model", model_dir, "--ids", ",".join(map(str, ids))],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("rlhf logprobs %s failed: %s" % (model_dir, r.stderr.strip()))
    out = json.loads(r.stdout)
    assert out["ids"] == ids
    return torch.tensor(out["logprobs"], dtype=torch.float64)


def hf_logprobs(model, ids):
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
    lp = torch.log_softmax(logits, -1)
    return lp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].double()


def hf_scores(model, ids):
    base = getattr(model, model.base_model_prefix)
    with torch.no_grad():
        return model.score(base(torch.tensor([ids])).last_hidden_state)[0].double()  # (T, labels)


def load_hf(model_dir, cls=AutoModelForCausalLM):
    model, info = cls.from_pretrained(model_dir, output_loading_info=True, attn_implementation="eager",
                                      torch_dtype=torch.float32)
    return model.eval(), info


def loading_clean(info):
    return not (info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"] or info["error_msgs"])


def ids_for(vocab, n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (n,), generator=g).tolist()


# ---- 0. the independent reference is transformers' layout ------------------------------------------------------

def check_reference(ref_dir):
    print("0. reference checkpoints (%s) in transformers" % ref_dir)
    manifest = json.load(open(os.path.join(ref_dir, "manifest.json")))
    for name, c in manifest["cases"].items():
        cls = AutoModelForSequenceClassification if c["kind"] == "score" else AutoModelForCausalLM
        model, info = load_hf(os.path.join(ref_dir, c["dir"]), cls)
        model = model.double()
        worst = 0.0
        for i, ids in enumerate(c["sequences"]):
            if c["kind"] == "score":
                got, want = hf_scores(model, ids), torch.tensor(c["scores"][i], dtype=torch.float64)
            else:
                with torch.no_grad():
                    lp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
                got = lp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]
                want = torch.tensor(c["logprobs"][i], dtype=torch.float64)
            worst = max(worst, (got - want).abs().max().item())
        check(loading_clean(info), "%-18s loads with no missing/unexpected keys %s" % (name, {
            k: v for k, v in info.items() if v}))
        check(worst < TOL, "%-18s transformers (float64) vs reference: max |diff| %.2e" % (name, worst))


# ---- 1. rlhf init -> transformers --------------------------------------------------------------------------------

INIT_CASES = {
    "gpt2": ["--arch", "gpt2", "--n-layer", "2", "--n-embd", "32", "--n-head", "4", "--vocab-size", "128",
             "--n-ctx", "64"],
    "llama": ["--arch", "llama", "--n-layer", "2", "--n-embd", "32", "--n-head", "4", "--n-kv-head", "2",
              "--vocab-size", "160", "--n-ctx", "128", "--untie"],
    "qwen2": ["--arch", "llama", "--model-type", "qwen2", "--n-layer", "2", "--n-embd", "32", "--n-head", "4",
              "--n-kv-head", "2", "--vocab-size", "160", "--n-ctx", "128", "--tie"],
    "mistral": ["--arch", "llama", "--model-type", "mistral", "--n-layer", "2", "--n-embd", "32", "--n-head", "4",
                "--n-kv-head", "1", "--vocab-size", "160", "--n-ctx", "128"],
    "llama_bf16": ["--arch", "llama", "--n-layer", "2", "--n-embd", "32", "--n-head", "4", "--n-kv-head", "2",
                   "--vocab-size", "160", "--n-ctx", "128", "--untie", "--save-dtype", "bf16"],
}


def check_init(rlhf, work):
    print("1. rlhf init -> transformers")
    for i, (name, flags) in enumerate(INIT_CASES.items()):
        d = os.path.join(work, "init_" + name)
        r = subprocess.run([rlhf, "-q", "init", "--out", d, "--seed", str(i + 1)] + flags, capture_output=True, text=True)
        if r.returncode != 0:
            check(False, "%-12s rlhf init failed: %s" % (name, r.stderr.strip()))
            continue
        model, info = load_hf(d)
        check(loading_clean(info), "%-12s loads in %s with no missing/unexpected keys %s" % (
            name, type(model).__name__, {k: v for k, v in info.items() if v}))
        cfg = json.load(open(os.path.join(d, "config.json")))
        n_params = model.num_parameters()
        check(not os.path.exists(os.path.join(d, "pytorch_model.bin")), "%-12s safetensors only" % name)
        ids = ids_for(cfg["vocab_size"], 20, seed=i)
        want, got = hf_logprobs(model, ids), rlhf_logprobs(rlhf, d, ids)
        d_max = (got - want).abs().max().item()
        check(d_max < TOL, "%-12s rlhf logprobs vs transformers: max |diff| %.2e (spread of values %.3f, %d params)" % (
            name, d_max, (want.max() - want.min()).item(), n_params))


# ---- 2. transformers save_pretrained -> rlhf ------------------------------------------------------------------------

def hf_configs():
    common = dict(vocab_size=160, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  max_position_embeddings=128, initializer_range=0.2)
    return {
        "gpt2": GPT2Config(vocab_size=128, n_positions=64, n_embd=32, n_layer=2, n_head=4, initializer_range=0.2,
                           resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0),
        "llama": LlamaConfig(num_key_value_heads=2, tie_word_embeddings=False, **common),
        "llama31": LlamaConfig(num_key_value_heads=1, tie_word_embeddings=False, rope_theta=500000.0,
                               rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                             "high_freq_factor": 4.0, "original_max_position_embeddings": 16},
                               **common),
        "qwen2": Qwen2Config(num_key_value_heads=2, tie_word_embeddings=True, **common),
        "mistral": MistralConfig(num_key_value_heads=2, tie_word_embeddings=False, sliding_window=4, **common),
        "llama_bf16": LlamaConfig(num_key_value_heads=2, tie_word_embeddings=False, **common),
    }


def randomize(model, seed):
    """Beyond transformers' init: non-zero biases and non-unit norms, so every tensor matters."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)


def check_saved_by_transformers(rlhf, work):
    print("2. transformers save_pretrained -> rlhf")
    for i, (name, cfg) in enumerate(hf_configs().items()):
        torch.manual_seed(100 + i)
        model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").eval()
        randomize(model, 200 + i)
        d = os.path.join(work, "hf_" + name)
        if name.endswith("_bf16"):
            model.to(torch.bfloat16).save_pretrained(d, safe_serialization=True)
            model, _ = load_hf(d)  # the reference is the bf16 weights, widened
        else:
            model.save_pretrained(d, safe_serialization=True)
        check(os.path.exists(os.path.join(d, "model.safetensors")), "%-12s saved as model.safetensors" % name)
        ids = ids_for(cfg.vocab_size, 12, seed=50 + i)
        want, got = hf_logprobs(model, ids), rlhf_logprobs(rlhf, d, ids)
        d_max = (got - want).abs().max().item()
        check(d_max < TOL, "%-12s rlhf logprobs vs transformers: max |diff| %.2e (spread of values %.3f)" % (
            name, d_max, (want.max() - want.min()).item()))


# ---- 3. reward models saved by transformers, for the C++ side -------------------------------------------------------

def write_score_models(work):
    print("3. sequence-classification models saved by transformers -> %s/score_manifest.json" % work)
    cfgs = {
        "gpt2_seqcls": GPT2Config(vocab_size=128, n_positions=64, n_embd=32, n_layer=2, n_head=4, num_labels=1,
                                  pad_token_id=0, initializer_range=0.2),
        "llama_seqcls": LlamaConfig(vocab_size=160, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                    num_attention_heads=4, num_key_value_heads=2, num_labels=2, pad_token_id=0,
                                    initializer_range=0.2),
    }
    manifest = {"cases": {}}
    for i, (name, cfg) in enumerate(cfgs.items()):
        torch.manual_seed(300 + i)
        model = AutoModelForSequenceClassification.from_config(cfg, attn_implementation="eager").eval()
        randomize(model, 400 + i)
        d = os.path.join(work, name)
        model.save_pretrained(d, safe_serialization=True)
        seqs = [ids_for(cfg.vocab_size, 10, seed=500 + i), ids_for(cfg.vocab_size, 3, seed=600 + i)]
        manifest["cases"][name] = {"dir": name, "num_labels": cfg.num_labels, "sequences": seqs,
                                   "scores": [hf_scores(model, s).tolist() for s in seqs]}
        check(True, "%-12s written (%s, %d labels)" % (name, type(model).__name__, cfg.num_labels))
    with open(os.path.join(work, "score_manifest.json"), "w") as f:
        json.dump(manifest, f)


# ---- 4. PEFT adapters, tied heads included ---------------------------------------------------------------------------

def check_peft(rlhf, work):
    print("4. PEFT LoRA adapters <-> rlhf (tied embeddings, lm_head targeted)")
    from peft import LoraConfig, PeftModel, get_peft_model
    tied = {
        "llama": (LlamaConfig(vocab_size=320, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                              tie_word_embeddings=True, initializer_range=0.2), ["q_proj", "v_proj", "lm_head"], False),
        "gpt2": (GPT2Config(vocab_size=320, n_positions=64, n_embd=32, n_layer=2, n_head=4, initializer_range=0.2,
                            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0), ["c_attn", "lm_head"], True),
    }
    for i, (name, (cfg, targets, fan_in_fan_out)) in enumerate(tied.items()):
        torch.manual_seed(700 + i)
        base = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").eval()
        randomize(base, 710 + i)
        base_dir = os.path.abspath(os.path.join(work, "peft_base_" + name))
        base.save_pretrained(base_dir, safe_serialization=True)
        base, _ = load_hf(base_dir)
        lc = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets, init_lora_weights=False,
                        fan_in_fan_out=fan_in_fan_out)
        peft_model = get_peft_model(base, lc).eval()
        peft_model.peft_config["default"].base_model_name_or_path = base_dir
        adapter_dir = os.path.join(work, "peft_adapter_" + name)
        peft_model.save_pretrained(adapter_dir)
        ids = ids_for(cfg.vocab_size, 12, seed=720 + i)
        want, got = hf_logprobs(peft_model, ids), rlhf_logprobs(rlhf, adapter_dir, ids)
        d_max = (got - want).abs().max().item()
        check(d_max < TOL, "%-12s PEFT adapter (%s) in rlhf logprobs: max |diff| %.2e" % (name, "+".join(targets), d_max))

    # rlhf -> PEFT: LoRA SFT on the tied llama, q_proj and lm_head adapted.
    base_dir = os.path.abspath(os.path.join(work, "peft_base_llama"))
    text = os.path.join(work, "peft_corpus.txt")
    with open(text, "w") as f:
        for a in range(10):
            for b in range(10):
                f.write("What is %d plus %d? The answer is %d.\n" % (a, b, a + b))
    tok_dir = os.path.join(work, "peft_tok")
    subprocess.run([rlhf, "-q", "tokenizer", "train", "--text", text, "--vocab-size", "300", "--out", tok_dir], check=True)
    for f in os.listdir(tok_dir):
        shutil.copy(os.path.join(tok_dir, f), base_dir)
    data = os.path.join(work, "peft_sft.jsonl")
    with open(data, "w") as f:
        for a in range(16):
            f.write(json.dumps({"prompt": "What is %d plus 1?" % a, "completion": " The answer is %d." % (a + 1)}) + "\n")
    out = os.path.join(work, "peft_rlhf_lora")
    r = subprocess.run([rlhf, "-q", "sft", "--model", base_dir, "--data", data, "--out", out, "--lora", "--lora-r", "4",
                        "--lora-target-modules", "q_proj", "lm_head", "--lr", "0.05", "--max-steps", "3",
                        "--batch-size", "4", "--lora-dropout", "0"], capture_output=True, text=True)
    check(r.returncode == 0, "llama        rlhf sft --lora with lm_head targeted: %s" % (r.stderr.strip()[-300:] or "ok"))
    if r.returncode == 0:
        base, _ = load_hf(base_dir)
        loaded = PeftModel.from_pretrained(base, out).eval()
        ids = ids_for(300, 12, seed=730)
        want, got = hf_logprobs(loaded, ids), rlhf_logprobs(rlhf, out, ids)
        d_max = (got - want).abs().max().item()
        moved = (want - hf_logprobs(load_hf(base_dir)[0], ids)).abs().max().item()
        check(d_max < TOL and moved > 1e-3, "llama        rlhf adapter in PEFT: max |diff| %.2e (the adapter moves them by %.2e)" % (
            d_max, moved))


# ---- 5. a reward model rlhf trained, in transformers with a right-padded batch ----------------------------------------

def check_reward_padding(rlhf, work):
    print("5. rlhf rm -> transformers sequence classification, right-padded batch")
    from transformers import AutoTokenizer
    text = os.path.join(work, "rm_corpus.txt")
    with open(text, "w") as f:
        for a in range(10):
            for b in range(10):
                f.write("<|im_start|>user\nWhat is %d plus %d?<|im_end|>\n<|im_start|>assistant\nIt is %d.<|im_end|>\n" % (a, b, a + b))
    base_dir = os.path.abspath(os.path.join(work, "rm_base"))
    subprocess.run([rlhf, "-q", "tokenizer", "train", "--text", text, "--vocab-size", "300", "--out", base_dir,
                    "--special-tokens", "<|endoftext|>,<|im_start|>,<|im_end|>", "--bos-token", "<|im_start|>",
                    "--eos-token", "<|im_end|>", "--pad-token", "<|im_end|>"], check=True)
    cfg = LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=128, initializer_range=0.2, bos_token_id=1,
                      eos_token_id=2, pad_token_id=2)
    torch.manual_seed(800)
    AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").save_pretrained(base_dir, safe_serialization=True)
    prompt = "<|im_start|>user\nWhat is %d plus %d?<|im_end|>\n<|im_start|>assistant\n"
    data = os.path.join(work, "rm_pairs.jsonl")
    with open(data, "w") as f:
        for a in range(8):
            f.write(json.dumps({"prompt": prompt % (a, 1), "chosen": "It is %d." % (a + 1),
                                "rejected": "It is %d, I think, or maybe not." % (a + 3)}) + "\n")
    out = os.path.join(work, "rm_trained")
    r = subprocess.run([rlhf, "-q", "rm", "--model", base_dir, "--data", data, "--out", out, "--max-steps", "3",
                        "--batch-size", "4", "--lr", "0.01"], capture_output=True, text=True)
    check(r.returncode == 0, "rlhf rm on ChatML text: %s" % (r.stderr.strip()[-300:] or "ok"))
    if r.returncode != 0:
        return
    tok = AutoTokenizer.from_pretrained(out)
    with open(os.path.join(out, "config.json")) as f:
        pad = json.load(f)["pad_token_id"]
    with open(os.path.join(out, "tokenizer_config.json")) as f:
        pad_in_config = json.load(f).get("pad_token")
    check(pad == tok.pad_token_id and pad != tok.eos_token_id and pad != tok.bos_token_id and
          pad_in_config == tok.pad_token,
          "config.json pad_token_id %s = the saved tokenizer's pad %s (%s), not its EOS %s or BOS %s" % (
              pad, tok.pad_token_id, tok.pad_token, tok.eos_token_id, tok.bos_token_id))
    rows = [{"prompt": prompt % (a, b), "completion": "It is %d." % (a + b) + (" Sure." * a)} for a, b in
            [(0, 1), (3, 4), (5, 2), (7, 7)]]
    rows_file = os.path.join(work, "rm_rows.jsonl")
    with open(rows_file, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    r = subprocess.run([rlhf, "-q", "score", "--reward", out, "--data", rows_file], capture_output=True, text=True, check=True)
    ours = [json.loads(line)["reward"] for line in r.stdout.splitlines() if line.strip()]
    model, info = load_hf(out, AutoModelForSequenceClassification)
    seqs = []
    for row in rows:
        seqs.append(tok(row["prompt"] + row["completion"], add_special_tokens=True).input_ids)  # rm and score add no EOS
    batch = tok.pad({"input_ids": seqs}, padding=True, return_tensors="pt")  # right padding, the tokenizer's pad
    with torch.no_grad():
        theirs = model(**batch).logits[:, 0].double()
    with open(os.path.join(out, "config.json")) as f:
        bias = json.load(f).get("reward_bias", 0.0)
    d_max = (theirs + bias - torch.tensor(ours, dtype=torch.float64)).abs().max().item()
    check(loading_clean(info) and len(ours) == 4 and d_max < TOL and tok.padding_side == "right",
          "right-padded batch of 4 (lengths %s) in transformers = rlhf score: max |diff| %.2e" % (
              [len(x) for x in seqs], d_max))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rlhf", required=True, help="the rlhf binary")
    ap.add_argument("--ref", help="output of tests/ref/ref_models.py (check 0)")
    ap.add_argument("--work", required=True, help="scratch directory (replaced)")
    args = ap.parse_args()
    t0 = time.time()
    torch.set_num_threads(2)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    print("transformers %s, torch %s" % (transformers.__version__, torch.__version__))
    if args.ref:
        check_reference(args.ref)
    check_init(args.rlhf, args.work)
    check_saved_by_transformers(args.rlhf, args.work)
    write_score_models(args.work)
    check_peft(args.rlhf, args.work)
    check_reward_padding(args.rlhf, args.work)
    print("%d failure(s) in %.1fs" % (len(failures), time.time() - t0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

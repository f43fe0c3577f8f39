#!/usr/bin/env python3
"""Loads a directory that `rlhf convert --from-gguf` wrote in transformers (AutoModelForCausalLM,
AutoTokenizer) and compares it with a fixture's reference (tests/ref/gguf_model_fixtures.py):
logits on the fixture's prompts within --tol, token ids of the corpus exactly, special tokens as the
GGUF metadata says. Prints one JSON line {"max_logit_diff", "id_mismatches", ...}; exits 1 on failure.

  gguf_check_hf.py --dir CONVERTED --ref FIXTURE.ref.json [--tol 1e-4]
Used by tests/test_gguf_convert.cpp (GgufConvertHf.*)."""
import argparse
import json
import os
import sys

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--ref", required=True)
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    ref = json.load(open(a.ref, encoding="utf-8"))
    model = AutoModelForCausalLM.from_pretrained(a.dir, torch_dtype=torch.float32)
    model.eval()
    diff = 0.0
    with torch.no_grad():
        for p, want in zip(ref["prompts"], ref["logits"]):
            got = model(torch.tensor([p])).logits[0].float()
            diff = max(diff, (got - torch.tensor(want)).abs().max().item())
    tok = AutoTokenizer.from_pretrained(a.dir)
    mismatches = []
    add = bool(ref["tokenizer_config"].get("add_bos_token", False))
    for text, want in zip(ref["corpus"], ref["ids"]):
        got = tok(text, add_special_tokens=add)["input_ids"]
        if got != want:
            mismatches.append({"text": text, "got": got, "want": want})
    specials = {}
    for k in ("bos_token", "eos_token", "unk_token", "pad_token"):
        if k in ref["tokenizer_config"]:
            specials[k] = [getattr(tok, k), ref["tokenizer_config"][k]]
    bad_specials = {k: v for k, v in specials.items() if v[0] != v[1]}
    template_ok = True
    if "chat_template" in ref["tokenizer_config"]:
        want = ref["tokenizer_config"]["chat_template"]
        got = tok.chat_template
        if isinstance(want, list):  # transformers keeps named templates as a dict
            template_ok = isinstance(got, dict) and got == {t["name"]: t["template"] for t in want}
        else:
            template_ok = got == want
    ok = diff <= a.tol and not mismatches and not bad_specials and template_ok
    print(json.dumps({"ok": ok, "max_logit_diff": diff, "id_mismatches": mismatches[:3], "n_texts": len(ref["corpus"]),
                      "bad_specials": bad_specials, "chat_template_ok": template_ok}, ensure_ascii=False))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

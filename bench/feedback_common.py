"""What bench/judge_python.py and bench/cai_python.py share with rlhf's src/feedback/: the constitution
file as parse_constitution reads it (defaults included), fill_template, and draw_principles with the
same counter-based random numbers (src/generate/sampler.cpp), so both sides ask the same questions.
"""
import json

M64 = (1 << 64) - 1

# JudgeFormat's defaults (src/feedback/constitution.h), used where the file's "judge" has no field.
JUDGE_DEFAULTS = {
    "system": "",
    "comparison_template": "Consider the following conversation and two possible responses.\n\nUser: {prompt}\n\n"
                           "Response A: {response_a}\n\nResponse B: {response_b}\n\n{question} Answer with A or B.",
    "answer_prefix": "The better response is",
    "options": [" A", " B"],
}


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def counter_uniform(seed, counter):
    h = splitmix64(splitmix64(seed) ^ ((counter * 0xD1B54A32D192ED03) & M64))
    return (h >> 11) * (1.0 / 9007199254740992.0)


def derive_seed(seed, a, b=0):
    return splitmix64(splitmix64(splitmix64(seed) ^ (a & M64)) ^ ((b + 0x632BE59BD9B4E019) & M64))


def load_constitution(path):
    with open(path) as f:
        j = json.load(f)
    ps = []
    for p in j["principles"]:
        ps.append({"name": p["name"], "critique_request": p["critique_request"], "revision_request": p["revision_request"],
                   "comparison": p["comparison"], "tags": p.get("tags", []), "weight": float(p.get("weight", 1.0))})
    first = ps[0]
    crit = [{"prompt": e["prompt"], "response": e["response"],
             "critique_request": e.get("critique_request", first["critique_request"]), "critique": e["critique"],
             "revision_request": e.get("revision_request", first["revision_request"]), "revision": e["revision"]}
            for e in j.get("critique_examples", [])]
    comp = [{"prompt": e["prompt"], "response_a": e["response_a"], "response_b": e["response_b"],
             "question": e.get("question", first["comparison"]), "answer": 0 if e["answer"] == "A" else 1}
            for e in j.get("comparison_examples", [])]
    judge = dict(JUDGE_DEFAULTS)
    judge.update({k: v for k, v in j.get("judge", {}).items() if k in JUDGE_DEFAULTS})
    return {"principles": ps, "critique_examples": crit, "comparison_examples": comp, "judge": judge}


def principle_pool(c, tag):
    """Constitution::with_tag: the principles with this tag or name ('' = all)."""
    if not tag:
        return list(range(len(c["principles"])))
    pool = [i for i, p in enumerate(c["principles"]) if p["name"] == tag or tag in p["tags"]]
    if not pool:
        raise SystemExit(f"no principle has the tag or name {tag!r}")
    return pool


def draw_principles(c, pool, count, seed, stream):
    left, out = list(pool), []
    count = min(count, len(left))
    for k in range(count):
        total = sum(c["principles"][i]["weight"] for i in left)
        u = counter_uniform(derive_seed(seed, stream), k) * total
        pick = len(left) - 1
        for q, i in enumerate(left):
            u -= c["principles"][i]["weight"]
            if u < 0:
                pick = q
                break
        out.append(left.pop(pick))
    return out


def fill_template(tpl, vars):
    """fill_template in src/feedback/constitution.cpp: {key} replaced in one left-to-right pass (a
    value's own braces are not filled again); anything else is kept."""
    out, i = [], 0
    while i < len(tpl):
        done = False
        if tpl[i] == "{":
            for k, v in vars:
                if tpl.startswith(k, i + 1) and i + 1 + len(k) < len(tpl) and tpl[i + 1 + len(k)] == "}":
                    out.append(v)
                    i += len(k) + 2
                    done = True
                    break
        if not done:
            out.append(tpl[i])
            i += 1
    return "".join(out)


def trim(s):
    return s.strip(" \t\n\r")

#!/usr/bin/env bash
# SmolLM2-135M-Instruct as an RLAIF judge (issue 18): `rlhf judge` on examples/smollm2/judge_pairs.jsonl,
# 40 pairs whose "chosen" is plainly better (14 harmful asks: refusal vs vague compliance; 13 factual or
# arithmetic: right vs wrong; 13 helpfulness: helpful and polite vs rude, off-topic or a needless refusal),
# in four set-ups:
#   default    one principle drawn per comparison, both orders, the constitution's 2 few-shot examples
#   ens4       --principles 4 (an ensemble of four principles, averaged)
#   fewshot0   --few-shot-count 0
#   cot48      --cot --cot-max-new-tokens 48 (default --cot-clamp 0.4)
#   cot48nc    the same with --cot-clamp 0: with the clamp, a judge that answers A in both orders gets
#              p_ab = 0.6, p_ba = 0.4, an exact tie (p_first 0.5), which rlhf judge writes as "tie": true and
#              counts half in accuracy_vs_input; the "ties" and "acc_t" columns below show them
# For each it prints accuracy against "chosen", position consistency, mean confidence, comparisons/s,
# per-category accuracy and position bias (how often the response shown second is preferred).
#   examples/smollm2/judge.sh [extra rlhf judge options, e.g. --threads 1]
# Environment: RLHF (default build/rlhf), MODEL (default runs/smollm2-base, fetched and converted as in
# run.sh when missing), OUT (default runs/smollm2-judge), PYTHON (for the fetch only), REUSE=1 (keep
# existing OUT/*.jsonl results and only print the table).
set -euo pipefail
cd "$(dirname "$0")/../.."
RLHF=${RLHF:-build/rlhf}
MODEL=${MODEL:-runs/smollm2-base}
OUT=${OUT:-runs/smollm2-judge}
PAIRS=examples/smollm2/judge_pairs.jsonl
CONST=examples/constitutions/default.json
[ -x "$RLHF" ] || { echo "judge.sh: $RLHF not found; build first with scripts/build.sh" >&2; exit 1; }
if [ ! -f "$MODEL/model.safetensors" ]; then
  PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
  GGUF=$("$PYTHON" scripts/fetch_smollm2.py)
  "$RLHF" convert --from-gguf "$GGUF" --out "$MODEL"
fi
mkdir -p "$OUT"

run() {  # name, extra options...
  local name=$1
  shift
  if [ "${REUSE:-0}" = 1 ] && [ -f "$OUT/$name.jsonl.stats.json" ]; then return; fi
  echo "== $name: rlhf judge $*"
  "$RLHF" judge --model "$MODEL" --constitution "$CONST" --pairs "$PAIRS" --out "$OUT/$name.jsonl" "$@"
}
run default "$@"
run ens4 --principles 4 "$@"
run fewshot0 --few-shot-count 0 "$@"
run cot48 --cot --cot-max-new-tokens 48 "$@"
run cot48nc --cot --cot-max-new-tokens 48 --cot-clamp 0 "$@"

python3 - "$OUT" default ens4 fewshot0 cot48 cot48nc <<'EOF'
import json, sys
from collections import defaultdict
out, names = sys.argv[1], sys.argv[2:]
mean = lambda v: sum(v) / len(v) if v else float("nan")
print()
print("%-9s %5s %5s %4s %6s %6s %6s %6s %6s %6s %7s %7s  %s" % ("run", "acc", "acc_t", "ties", "consis", "conf", "cmp/s",
      "accAB", "accBA", "2ndAB", "2nd_all", "Pfirst", "per-category accuracy"))
for n in names:
    st = json.load(open(f"{out}/{n}.jsonl.stats.json"))
    recs = [json.loads(l) for l in open(f"{out}/{n}.jsonl")]
    cat = defaultdict(list)
    for r in recs:
        cat[r.get("category", "?")].append(r["agrees_with_input"])
    # In the input "chosen" is response a. p_ab[s]: P(a better) with a shown first; p_ba[s]: P(a better)
    # with a shown second, so P(shown-first better) is p_ab in order AB and 1 - p_ba in order BA.
    pab = [mean(r["judge"]["p_ab"]) for r in recs]
    pba = [mean(r["judge"]["p_ba"]) for r in recs]
    first = [p for r in recs for p in r["judge"]["p_ab"]] + [1 - p for r in recs for p in r["judge"]["p_ba"]]
    pf = [r["judge"]["p_first"] for r in recs]
    print("%-9s %5.3f %5.3f %4d %6.3f %6.3f %6.2f %6.3f %6.3f %6.3f %7.3f %7.3f  %s" % (
        n, st["accuracy_vs_input"],
        mean([1.0 if p > 0.5 else 0.5 if p == 0.5 else 0.0 for p in pf]),  # ties counted as half
        sum(p == 0.5 for p in pf), st["position_consistency"], st["mean_confidence"], st["comparisons_per_second"],
        mean([p > 0.5 for p in pab]),   # accuracy with only order AB (chosen shown first)
        mean([p > 0.5 for p in pba]),   # accuracy with only order BA (chosen shown second)
        mean([p < 0.5 for p in pab]),   # share of comparisons preferring the second position in order AB
        mean([p < 0.5 for p in first]), # share of all (order, principle) judgements preferring the second position
        mean(first),                    # mean P(the response shown first is better)
        " ".join("%s %.3f (%d)" % (k, mean(v), len(v)) for k, v in sorted(cat.items()))))
print("\nacc: accuracy_vs_input (both orders averaged; a tie p_first = 0.5 counts as agreeing); acc_t: the same with")
print("ties counted as half; ties: comparisons with p_first exactly 0.5; consis: position_consistency; conf: mean_confidence;")
print("accAB/accBA: accuracy from one order only (chosen shown first / second); 2ndAB: share of comparisons with")
print("p_ab < 0.5; 2nd_all: share of all single-order judgements preferring the second position; Pfirst: mean")
print("P(shown-first response is better) over all single-order judgements.")
EOF

#!/usr/bin/env bash
# AI feedback: `rlhf judge` (comparisons/s) and `rlhf cai revise` (revisions/s) against the same loops in
# PyTorch-Python transformers (bench/judge_python.py, bench/cai_python.py), on SmolLM2-135M-Instruct
# (bench/judge_setup.py; a random Llama when it cannot be had), the same pairs, prompts, constitution,
# principle, batch rows, new-token limit and threads, fp32.
#   judge: both orders, one principle; rlhf prefills the constitution + few-shot prefix once and
#          reuses its KV cache, the Python loop runs every full prompt (right-padded batches).
#   cai:   answer + ROUNDS x (critique, revision), greedy, every step one batched generate (Python:
#          transformers generate with left padding).
#   bench/bench_feedback.sh
# Settings (environment):
#   RLHF=build/rlhf  RLHF_PYTHON=.venv/bin/python  WORK=build/bench-work/feedback (inputs, kept)
#   PARTS="judge cai"  THREADS=2  RUNS=3  WARMUP=1  PAIRS=64  PROMPTS=16  ROUNDS=2  NEW=64  BATCH=32
#   PRINCIPLE=answer-the-question (a name: the same question everywhere; a tag draws per comparison /
#   prompt and round, on both sides alike)  ROWS=shared (judge_python.py --rows)  TOL=1e-4
#   PRINT_CMDS=1: make the inputs, print the two commands of each part and stop (to time them elsewhere)
# Quick check: PAIRS=4 PROMPTS=2 ROUNDS=1 NEW=8 RUNS=1 WARMUP=0 bench/bench_feedback.sh
# Each timed run is one whole process per side, A B A B ... (rlhf, then Python), through
# bench/measure.py. Prints per part: the median of each side's own rate (work after model loading, as
# each prints it), the median of the per-run ratios rlhf / pytorch (above 1: rlhf is faster), the
# median whole-process wall seconds and peak RSS. Then the agreement checks: judge p_first, p_ab and
# p_ba of both sides must agree within TOL (exit status 1 otherwise); for cai, how many steps'
# greedy texts are identical (a near-tie can flip one token between two fp32 implementations).
set -euo pipefail
cd "$(dirname "$0")/.."
RLHF=${RLHF:-build/rlhf}
PY=${RLHF_PYTHON:-.venv/bin/python}
WORK=${WORK:-build/bench-work/feedback}
PARTS=${PARTS:-judge cai}
THREADS=${THREADS:-2}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-1}
PAIRS=${PAIRS:-64}
PROMPTS=${PROMPTS:-16}
ROUNDS=${ROUNDS:-2}
NEW=${NEW:-64}
BATCH=${BATCH:-32}
PRINCIPLE=${PRINCIPLE:-answer-the-question}
ROWS=${ROWS:-shared}
TOL=${TOL:-1e-4}
CONSTITUTION=examples/constitutions/default.json

die() { echo "error: $*" >&2; exit 1; }
[ -x "$RLHF" ] || die "no rlhf binary at $RLHF (build it with scripts/build.sh, or set RLHF)"
[ -x "$PY" ] || die "no Python at $PY: create the venv with scripts/setup_venv.sh (or set RLHF_PYTHON)"
versions=$("$PY" -c "import torch, transformers; print('torch', torch.__version__, '/ transformers', transformers.__version__)" 2>/dev/null) ||
  die "$PY cannot import torch and transformers: run scripts/setup_venv.sh (or set RLHF_PYTHON)"
cpu=$(grep -m1 -E '^(model name|Model|cpu model)' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "machine: ${cpu:-unknown CPU}, $(nproc) usable cores; python $versions"

"$PY" bench/judge_setup.py --out "$WORK" --pairs "$PAIRS" --prompts "$PROMPTS" --rlhf "$RLHF" >/dev/null ||
  die "bench/judge_setup.py failed"
M=$WORK/model
[ -f "$M/FALLBACK" ] && echo "note: $(cat "$M/FALLBACK")"

# The Python side gets the OpenBLAS kernel rlhf chose (rlhf re-execs itself with a better one when
# OpenBLAS misdetects the CPU); a user's OPENBLAS_CORETYPE wins on both sides. Both sides are pinned
# to the same cores when there are enough.
ENVP=(env)
kernel=$("$RLHF" env 2>&1 | sed -n 's/^blas kernel *\([A-Za-z0-9_]*\).*/\1/p' | head -n 1)
if [ -z "${OPENBLAS_CORETYPE:-}" ] && [ -n "$kernel" ]; then ENVP=(env OPENBLAS_CORETYPE="$kernel"); fi
PIN=()
if command -v taskset >/dev/null && [ "$THREADS" -le "$(nproc)" ]; then PIN=(taskset -c "0-$((THREADS - 1))"); fi

OUTD=$(mktemp -d)
ERR=$OUTD/stderr
trap 'rm -rf "$OUTD"' EXIT
ours_judge=("${PIN[@]}" "$RLHF" -q --threads "$THREADS" judge --model "$M" --constitution "$CONSTITUTION"
  --pairs "$WORK/pairs.jsonl" --principle "$PRINCIPLE" --batch-rows "$BATCH" --out "$OUTD/judge_ours.jsonl")
theirs_judge=("${ENVP[@]}" "${PIN[@]}" "$PY" bench/judge_python.py --model "$M" --constitution "$CONSTITUTION"
  --pairs "$WORK/pairs.jsonl" --principle "$PRINCIPLE" --batch-rows "$BATCH" --rows "$ROWS" --threads "$THREADS"
  --out "$OUTD/judge_py.jsonl")
ours_cai=("${PIN[@]}" "$RLHF" -q --threads "$THREADS" cai revise --model "$M" --constitution "$CONSTITUTION"
  --prompts "$WORK/prompts.jsonl" --principle "$PRINCIPLE" --rounds "$ROUNDS" --max-new-tokens "$NEW"
  --batch-rows "$BATCH" --out "$OUTD/cai_ours")
theirs_cai=("${ENVP[@]}" "${PIN[@]}" "$PY" bench/cai_python.py --model "$M" --constitution "$CONSTITUTION"
  --prompts "$WORK/prompts.jsonl" --principle "$PRINCIPLE" --rounds "$ROUNDS" --max-new-tokens "$NEW"
  --batch-rows "$BATCH" --threads "$THREADS" --out "$OUTD/cai_py.jsonl")

if [ "${PRINT_CMDS:-0}" = 1 ]; then
  # Outputs under $WORK/out instead of a temporary directory that is removed on exit.
  mkdir -p "$WORK/out"
  for part in $PARTS; do
    o="ours_$part[@]" t="theirs_$part[@]"
    echo "$part rlhf:    $(printf '%q ' "${!o}" | sed "s|$OUTD|$WORK/out|g")"
    echo "$part pytorch: $(printf '%q ' "${!t}" | sed "s|$OUTD|$WORK/out|g")"
  done
  exit 0
fi

# run_one LOG CMD...: runs CMD under bench/measure.py; appends {"stdout_last": ..., "measure": ...} to LOG.
run_one() {
  local log=$1 out
  shift
  out=$("$PY" bench/measure.py "$@" 2>"$ERR") || { echo "error: '$*' failed:" >&2; tail -n 20 "$ERR" >&2; exit 1; }
  "$PY" -c 'import json, sys; print(json.dumps({"last": sys.argv[1], "measure": json.loads(sys.argv[2])}))' \
    "$(printf '%s\n' "$out" | tail -n 1)" "$(grep -m1 '^{"measure"' "$ERR")" >>"$log"
}

status=0
for part in $PARTS; do
  case $part in
    judge) echo "judge: $PAIRS pairs, both orders, principle $PRINCIPLE, batch rows $BATCH, $THREADS threads, fp32 (python rows: $ROWS)" ;;
    cai) echo "cai revise: $PROMPTS prompts, answer + $ROUNDS x (critique, revision), $NEW new tokens, greedy, batch rows $BATCH, $THREADS threads, fp32" ;;
    *) die "unknown part '$part': judge or cai" ;;
  esac
  o="ours_$part[@]" t="theirs_$part[@]"
  : >"$OUTD/$part.ours.log"
  : >"$OUTD/$part.theirs.log"
  for ((r = 0; r < WARMUP + RUNS; r++)); do
    rm -rf "$OUTD/cai_ours"
    run_one "$OUTD/$part.ours.log" "${!o}"
    [ "$part" = judge ] && cp "$OUTD/judge_ours.jsonl.stats.json" "$OUTD/judge_ours.stats.$r.json"
    [ "$part" = cai ] && cp "$OUTD/cai_ours/summary.json" "$OUTD/cai_ours.summary.$r.json"
    run_one "$OUTD/$part.theirs.log" "${!t}"
  done
  "$PY" - "$part" "$OUTD" "$WARMUP" "$RUNS" "$TOL" <<'PYEOF' || status=1
import json, statistics as st, sys
part, d, warm, runs, tol = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
ours = [json.loads(l) for l in open(f"{d}/{part}.ours.log")]
theirs = [json.loads(l) for l in open(f"{d}/{part}.theirs.log")]
key, unit = ("comparisons_per_second", "comparisons/s") if part == "judge" else ("revisions_per_second", "revisions/s")
stats = [json.load(open(f"{d}/judge_ours.stats.{r}.json" if part == "judge" else f"{d}/cai_ours.summary.{r}.json"))
         for r in range(len(ours))]
x = [s[key] for s in stats][warm:]
y = [json.loads(t["last"])[key] for t in theirs][warm:]
wo = [o["measure"]["wall_s"] for o in ours][warm:]
wt = [t["measure"]["wall_s"] for t in theirs][warm:]
po = max(o["measure"]["peak_rss_mb"] for o in ours)
pt = max(t["measure"]["peak_rss_mb"] for t in theirs)
med = st.median
rate_ratio = med([a / b for a, b in zip(x, y)])
wall_ratio = med([b / a for a, b in zip(wo, wt)])
print(f"  runs ({len(x)} timed after {warm} warm-up), rlhf {unit}: {' '.join(f'{v:.3g}' for v in x)}; pytorch: {' '.join(f'{v:.3g}' for v in y)}")
print(f"  {part}: rlhf {med(x):.3g} {unit}  pytorch {med(y):.3g} {unit}  ratio {rate_ratio:.2f}x | whole process: "
      f"rlhf {med(wo):.1f} s, pytorch {med(wt):.1f} s ({wall_ratio:.2f}x); peak RSS rlhf {po:.0f} MB, pytorch {pt:.0f} MB")
last_t = json.loads(theirs[-1]["last"])
ok = True
if part == "judge":
    s = stats[-1]
    a = [json.loads(l)["judge"] for l in open(f"{d}/judge_ours.jsonl")]
    b = [json.loads(l) for l in open(f"{d}/judge_py.jsonl")]
    assert len(a) == len(b), f"comparisons differ: rlhf {len(a)}, pytorch {len(b)}"
    diff = 0.0
    for u, v in zip(a, b):
        assert u["principles"] == v["principles"], f"principles differ: {u['principles']} vs {v['principles']}"
        for k in ("p_ab", "p_ba"):
            diff = max([diff] + [abs(p - q) for p, q in zip(u.get(k, []), v[k])])
        diff = max(diff, abs(u["p_first"] - v["p_first"]))
    ok = diff <= tol
    print(f"  tokens run: rlhf {s['prefix_tokens']} prefix once + {s['suffix_tokens']} after it, pytorch {last_t['tokens']} "
          f"({last_t['rows']} rows for {s['sequences']} prompts)")
    print(f"  check: p_first / p_ab / p_ba of {len(a)} comparisons agree within {diff:.1e} (tolerance {tol:g}): "
          f"{'ok' if ok else 'FAILED'}; position consistency {s['position_consistency']:.2f}")
else:
    s = stats[-1]
    a = [json.loads(l) for l in open(f"{d}/cai_ours/transcripts.jsonl")]
    b = [json.loads(l) for l in open(f"{d}/cai_py.jsonl")]
    assert len(a) == len(b), f"prompts differ: rlhf {len(a)}, pytorch {len(b)}"
    steps = same = 0
    for u, v in zip(a, b):
        pairs = [(u["original"], v["original"])]
        for ru, rv in zip(u["rounds"], v["rounds"]):
            assert ru["principle"] == rv["principle"], f"principles differ: {ru['principle']} vs {rv['principle']}"
            pairs += [(ru["critique"], rv["critique"]), (ru["revision"], rv["revision"])]
        steps += len(pairs)
        same += sum(p == q for p, q in pairs)
    print(f"  generated tokens: rlhf {s['generated_tokens']}, pytorch {last_t['generated_tokens']}; "
          f"check: {same} of {steps} greedy texts identical ({len(a)} prompts)")
sys.exit(0 if ok else 1)
PYEOF
done
exit $status

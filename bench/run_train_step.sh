#!/usr/bin/env bash
# Forward + backward tokens/s of a GPT-2-shaped model, rlhf (bench_train_step) vs Hugging Face
# transformers on PyTorch (bench/train_step.py), same shape, batch, sequence, dtype and threads.
#   bench/run_train_step.sh [BUILD_DIR]
# Settings (environment, space-separated lists where plural):
#   SIZES=124m  DTYPES="fp32 bf16"  THREADS=2  STEPS=5  BATCH=4  SEQ=256
#   sizes: tiny small medium 124m 350m (SEQ is cut to the size's context: tiny 128, small 256,
#   medium 512); dtypes: fp32 bf16 (bf16 autocast on both sides).
#   DEVICE=cpu (cuda: both sides on the GPU; the figures then depend on the card, not the threads)
#   RLHF_PYTHON=.venv/bin/python (made by scripts/setup_venv.sh); VERBOSE=1 also prints the raw JSON.
# Quick check: SIZES=tiny STEPS=2 bench/run_train_step.sh
# Prints the machine, then one line per configuration with both tokens/s (mean over the timed
# steps, after one warm-up step) and the ratio rlhf / pytorch (above 1 means rlhf is faster).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PY=${RLHF_PYTHON:-.venv/bin/python}
SIZES=${SIZES:-124m}
DTYPES=${DTYPES:-fp32 bf16}
THREADS=${THREADS:-2}
STEPS=${STEPS:-5}
BATCH=${BATCH:-4}
SEQ=${SEQ:-256}
DEVICE=${DEVICE:-cpu}

BENCH_TARGET=bench_train_step
# shellcheck source=bench/lib.sh
. bench/lib.sh
echo "train step (forward + backward, GPT-2 shape): batch $BATCH x seq $SEQ, $STEPS timed steps after 1 warm-up"
# Context lengths of the presets (src/model/config.cpp): a longer SEQ is cut to the context.
declare -A CTX=([tiny]=128 [small]=256 [medium]=512 [124m]=1024 [350m]=1024)
shown_runtime=0
for size in $SIZES; do
  [ -n "${CTX[$size]:-}" ] || die "unknown size '$size': use tiny, small, medium, 124m or 350m"
  seq=$SEQ
  if [ "$seq" -gt "${CTX[$size]}" ]; then
    seq=${CTX[$size]}
    echo "note: $size has a context of $seq tokens: seq $SEQ cut to $seq for $size"
  fi
  for dtype in $DTYPES; do
    for t in $THREADS; do
      pin_to "$t"
      args=(--size "$size" --batch "$BATCH" --seq "$seq" --steps "$STEPS" --dtype "$dtype" --threads "$t" --device "$DEVICE")
      run_bench ours "${PIN[@]}" "$BUILD/bench_train_step" "${args[@]}"
      rt=$(grep -m1 '^runtime:' "$ERR" || true)
      if [ $shown_runtime = 0 ] && [ -n "$rt" ]; then echo "rlhf $rt"; shown_runtime=1; fi
      # Give PyTorch the OpenBLAS kernel rlhf chose (rlhf re-execs with a better one when OpenBLAS
      # misdetects the CPU); the user's OPENBLAS_CORETYPE wins on both sides.
      kernel=$(sed -n 's/.*\[kernel \([^]]*\)\].*/\1/p' <<<"$rt")
      if [ -z "${OPENBLAS_CORETYPE:-}" ] && [ -n "$kernel" ]; then
        run_bench theirs env OPENBLAS_CORETYPE="$kernel" "${PIN[@]}" "$PY" bench/train_step.py "${args[@]}"
      else
        run_bench theirs "${PIN[@]}" "$PY" bench/train_step.py "${args[@]}"
      fi
      if [ "${VERBOSE:-0}" = 1 ]; then echo "$ours"; echo "$theirs"; fi
      "$PY" - "$ours" "$theirs" <<'PYEOF'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert a["threads"] == b["threads"], f"thread counts differ: rlhf {a['threads']} vs pytorch {b['threads']}"
x, y = a["tokens_per_s"], b["tokens_per_s"]
print(f"{a['device']} {a['size']} {a['dtype']} {a['threads']} thread{'s' * (a['threads'] != 1)}: rlhf {x:.1f} tok/s  pytorch {y:.1f} tok/s  ratio {x / y:.2f}x")
PYEOF
    done
  done
done

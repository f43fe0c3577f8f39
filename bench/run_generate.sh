#!/usr/bin/env bash
# Decode tokens/s of sampling with a KV cache on a random GPT-2-shaped model, rlhf (bench_generate)
# vs Hugging Face `generate` on PyTorch (bench/generate.py), same shape, batch, prompt and
# new-token counts, dtype and threads.
#   bench/run_generate.sh [BUILD_DIR]
# Settings (environment, space-separated lists where plural):
#   SIZES=124m  BATCHES="1 32"  DTYPES=fp32  THREADS=2  PROMPT=16  NEW=128
#   sizes: tiny small medium 124m 350m, or LxCxH for a custom shape (6x512x8: 6 layers, width 512,
#   8 heads, context 1024); NEW is cut so that PROMPT + NEW fits the context (tiny: 128).
#   dtypes: fp32 bf16 (bf16 autocast on both sides).
#   DEVICE=cpu (cuda: both sides on the GPU; the figures then depend on the card, not the threads)
#   RLHF_PYTHON=.venv/bin/python (made by scripts/setup_venv.sh); VERBOSE=1 also prints the raw JSON.
# Quick check: SIZES=tiny NEW=16 bench/run_generate.sh
# Prints the machine, then one line per configuration: decode tokens/s of both (generated tokens /
# time after the prefill) and the ratio rlhf / pytorch (above 1 means rlhf is faster). For batch 1
# it adds bench_generate's memory-bandwidth bound: measured copy bandwidth / bytes of weights, the
# tokens/s if every decode step only had to read all weights once.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PY=${RLHF_PYTHON:-.venv/bin/python}
SIZES=${SIZES:-124m}
BATCHES=${BATCHES:-1 32}
DTYPES=${DTYPES:-fp32}
THREADS=${THREADS:-2}
PROMPT=${PROMPT:-16}
NEW=${NEW:-128}
DEVICE=${DEVICE:-cpu}

BENCH_TARGET=bench_generate
# shellcheck source=bench/lib.sh
. bench/lib.sh
echo "generate (sampling, KV cache, GPT-2 shape): prompt $PROMPT tokens, $NEW new tokens per row, decode tokens/s"
# Context lengths of the presets (src/model/config.cpp); custom shapes start from 124m's.
declare -A CTX=([tiny]=128 [small]=256 [medium]=512 [124m]=1024 [350m]=1024)
shown_runtime=0
for size in $SIZES; do
  if [[ $size =~ ^([0-9]+)x([0-9]+)x([0-9]+)$ ]]; then
    shape=(--n-layer "${BASH_REMATCH[1]}" --n-embd "${BASH_REMATCH[2]}" --n-head "${BASH_REMATCH[3]}")
    ctx=1024
  else
    [ -n "${CTX[$size]:-}" ] || die "unknown size '$size': use tiny, small, medium, 124m, 350m or LxCxH"
    shape=(--size "$size")
    ctx=${CTX[$size]}
  fi
  new=$NEW
  if [ $((PROMPT + new)) -gt "$ctx" ]; then
    new=$((ctx - PROMPT))
    [ "$new" -gt 0 ] || die "prompt of $PROMPT tokens does not fit $size's context of $ctx"
    echo "note: $size has a context of $ctx tokens: $NEW new tokens cut to $new for $size"
  fi
  for dtype in $DTYPES; do
    for t in $THREADS; do
      pin_to "$t"
      for b in $BATCHES; do
        args=("${shape[@]}" --batch "$b" --prompt "$PROMPT" --new "$new" --dtype "$dtype" --threads "$t" --device "$DEVICE")
        run_bench ours "${PIN[@]}" "$BUILD/bench_generate" "${args[@]}"
        rt=$(grep -m1 '^runtime:' "$ERR" || true)
        if [ $shown_runtime = 0 ] && [ -n "$rt" ]; then echo "rlhf $rt"; shown_runtime=1; fi
        # Give PyTorch the OpenBLAS kernel rlhf chose (rlhf re-execs with a better one when OpenBLAS
        # misdetects the CPU); the user's OPENBLAS_CORETYPE wins on both sides.
        kernel=$(sed -n 's/.*\[kernel \([^]]*\)\].*/\1/p' <<<"$rt")
        if [ -z "${OPENBLAS_CORETYPE:-}" ] && [ -n "$kernel" ]; then
          run_bench theirs env OPENBLAS_CORETYPE="$kernel" "${PIN[@]}" "$PY" bench/generate.py "${args[@]}"
        else
          run_bench theirs "${PIN[@]}" "$PY" bench/generate.py "${args[@]}"
        fi
        if [ "${VERBOSE:-0}" = 1 ]; then echo "$ours"; echo "$theirs"; fi
        "$PY" - "$size" "$ours" "$theirs" <<'PYEOF'
import json, sys
size, a, b = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
assert a["threads"] == b["threads"], f"thread counts differ: rlhf {a['threads']} vs pytorch {b['threads']}"
assert abs(a["params_m"] - b["params_m"]) < 0.15, f"models differ: rlhf {a['params_m']}M vs pytorch {b['params_m']}M params"
x, y = a["decode_tokens_per_s"], b["decode_tokens_per_s"]
line = (f"{a['device']} {size} {a['dtype']} {a['threads']} thread{'s' * (a['threads'] != 1)} batch {a['batch']}: rlhf {x:.1f} tok/s  pytorch {y:.1f} tok/s  "
        f"ratio {x / y:.2f}x")
if a["batch"] == 1:
    bound = a["bandwidth_bound_tokens_per_s"]
    wbytes = a["copy_gbs"] * 1e9 / bound
    line += (f"  | bandwidth bound {bound:.1f} tok/s ({wbytes / 1e6:.0f} MB weights at {a['copy_gbs']:.1f} GB/s copy): "
             f"rlhf {100 * x / bound:.0f}%, pytorch {100 * y / bound:.0f}% of it")
print(line)
PYEOF
      done
    done
  done
done

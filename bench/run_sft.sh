#!/usr/bin/env bash
# SFT training tokens/s and peak memory: `rlhf sft` vs the same loop in PyTorch-Python with Hugging
# Face transformers and PEFT (bench/sft_step.py), on one model directory (random GPT-2 of preset
# SIZE with a BPE tokenizer, made by rlhf init), the same data (prompt + completion rows cut to SEQ
# tokens, loss on the completion), batch, optimizer (AdamW, cosine, clip 1.0), dtype and threads.
#   bench/run_sft.sh [BUILD_DIR]
# Settings (environment, space-separated lists where plural):
#   SIZE=124m  DTYPES="fp32 bf16"  LORA="off on"  THREADS=2  STEPS=4  BATCH=4  SEQ=256  GC=off
#   GC: off on (gradient checkpointing on both sides: --gradient-checkpointing, and transformers'
#   gradient_checkpointing_enable as TRL sets it up)
#   DEVICE=cpu (cuda: both sides on the GPU; peak RSS is then host memory only)
#   RLHF_PYTHON=.venv/bin/python (made by scripts/setup_venv.sh); VERBOSE=1 also prints the raw JSON.
# Quick check: SIZE=tiny SEQ=64 STEPS=2 bench/run_sft.sh
# Prints the machine, then one line per configuration: tokens/s of the optimizer steps after the
# first (warm-up) step, the ratio rlhf / pytorch (above 1 means rlhf is faster), and each whole
# process's peak RSS (model load, data, training and saving included) and wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PY=${RLHF_PYTHON:-.venv/bin/python}
SIZE=${SIZE:-124m}
DTYPES=${DTYPES:-fp32 bf16}
LORA=${LORA:-off on}
THREADS=${THREADS:-2}
STEPS=${STEPS:-4}
BATCH=${BATCH:-4}
SEQ=${SEQ:-256}
DEVICE=${DEVICE:-cpu}

BENCH_TARGET=rlhf
# shellcheck source=bench/lib.sh
. bench/lib.sh
trainer_bench_setup
echo "sft: model $SIZE, batch $BATCH x $SEQ tokens, $STEPS timed steps after 1 warm-up, $THREADS threads"
for dtype in $DTYPES; do
  for lora in $LORA; do
   for gc in ${GC:-off}; do
    flag=()
    [ "$lora" = on ] && flag=(--lora)
    [ "$gc" = on ] && flag+=(--gradient-checkpointing)
    rm -rf "$OUTD/sft"
    measured ours m_ours "${PIN[@]}" "$BUILD/rlhf" -q --threads "$THREADS" --device "$DEVICE" --dtype "$dtype" sft --model "$WS/model" \
      --data "$WS/sft.jsonl" --out "$OUTD/sft" --max-steps $((STEPS + 1)) --batch-size "$BATCH" --max-length "$SEQ" \
      --lr 2e-5 "${flag[@]}"
    measured theirs m_theirs "${ENVP[@]}" "${PIN[@]}" "$PY" bench/sft_step.py --model "$WS/model" --data "$WS/sft.jsonl" \
      --steps "$STEPS" --batch "$BATCH" --seq "$SEQ" --lr 2e-5 --dtype "$dtype" --threads "$THREADS" --device "$DEVICE" "${flag[@]}"
    if [ "${VERBOSE:-0}" = 1 ]; then echo "$m_ours"; echo "$theirs"; echo "$m_theirs"; fi
    "$PY" - "$OUTD/sft/metrics.jsonl" "$m_ours" "$theirs" "$m_theirs" "$dtype" "$lora" "$gc" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
mo, b, mt = json.loads(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
tokens = [r["num_tokens"] - p["num_tokens"] for p, r in zip(rows, rows[1:])]
x = sum(tokens) / sum(r["step_time"] for r in rows[1:])
y = b["tokens_per_s"]
assert tokens[0] == b["tokens_per_step"], f"tokens per step differ: rlhf {tokens[0]} vs pytorch {b['tokens_per_step']}"
lora = ("LoRA" if sys.argv[6] == "on" else "full") + (", gradient checkpointing" if sys.argv[7] == "on" else "")
print(f"{sys.argv[5]} {lora}: rlhf {x:.1f} tok/s  pytorch {y:.1f} tok/s  ratio {x / y:.2f}x | peak RSS rlhf "
      f"{mo['peak_rss_mb']:.0f} MB  pytorch {mt['peak_rss_mb']:.0f} MB | wall rlhf {mo['wall_s']:.0f} s  pytorch {mt['wall_s']:.0f} s")
PYEOF
   done
  done
done

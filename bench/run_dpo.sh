#!/usr/bin/env bash
# DPO training pairs/s and peak memory: `rlhf dpo` vs a DPO step in PyTorch-Python written as TRL's
# DPOTrainer does it (bench/dpo_step.py), on one model directory (random GPT-2 of preset SIZE with
# a BPE tokenizer, made by rlhf init), the same pairs (prompt + chosen / rejected cut to SEQ tokens),
# batch, optimizer (AdamW, cosine, clip 1.0, sigmoid loss, beta 0.1), dtype and threads; with the
# reference log-probs cached (computed once before training) and online (a frozen reference
# forward every step: a second copy of the model, or with LoRA the same weights, adapters off).
#   bench/run_dpo.sh [BUILD_DIR]
# Settings (environment, space-separated lists where plural):
#   SIZE=124m  REFS="cached online"  LORA="off on"  DTYPES=fp32  THREADS=2  STEPS=3  BATCH=4  SEQ=256
#   DEVICE=cpu (cuda: both sides on the GPU; peak RSS is then host memory only)
#   RLHF_PYTHON=.venv/bin/python (made by scripts/setup_venv.sh); VERBOSE=1 also prints the raw JSON.
# Quick check: SIZE=tiny SEQ=128 STEPS=2 bench/run_dpo.sh
# Prints the machine, then one line per configuration: pairs/s of the optimizer steps after the
# first (warm-up) step, the ratio rlhf / pytorch (above 1 means rlhf is faster), and each whole
# process's peak RSS (model load, reference pass, training and saving included) and wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PY=${RLHF_PYTHON:-.venv/bin/python}
SIZE=${SIZE:-124m}
REFS=${REFS:-cached online}
LORA=${LORA:-off on}
DTYPES=${DTYPES:-fp32}
THREADS=${THREADS:-2}
STEPS=${STEPS:-3}
BATCH=${BATCH:-4}
SEQ=${SEQ:-256}
DEVICE=${DEVICE:-cpu}

BENCH_TARGET=rlhf
# shellcheck source=bench/lib.sh
. bench/lib.sh
trainer_bench_setup
echo "dpo: model $SIZE, batch $BATCH pairs x 2 x $SEQ tokens, $STEPS timed steps after 1 warm-up, $THREADS threads"
# Exactly the pairs the steps use, so that both sides' cached reference pass covers the same data.
head -n $(((STEPS + 1) * BATCH)) "$WS/pairs.jsonl" >"$OUTD/pairs.jsonl"
for dtype in $DTYPES; do
  for ref in $REFS; do
    for lora in $LORA; do
      flag=()
      [ "$lora" = on ] && flag=(--lora)
      rm -rf "$OUTD/dpo"
      measured ours m_ours "${PIN[@]}" "$BUILD/rlhf" -q --threads "$THREADS" --device "$DEVICE" --dtype "$dtype" dpo --model "$WS/model" \
        --data "$OUTD/pairs.jsonl" --out "$OUTD/dpo" --max-steps $((STEPS + 1)) --batch-size "$BATCH" \
        --max-length "$SEQ" --lr 1e-6 --beta 0.1 --reference "$ref" "${flag[@]}"
      measured theirs m_theirs "${ENVP[@]}" "${PIN[@]}" "$PY" bench/dpo_step.py --model "$WS/model" \
        --data "$OUTD/pairs.jsonl" --steps "$STEPS" --batch "$BATCH" --seq "$SEQ" --lr 1e-6 --beta 0.1 \
        --reference "$ref" --dtype "$dtype" --threads "$THREADS" --device "$DEVICE" "${flag[@]}"
      if [ "${VERBOSE:-0}" = 1 ]; then echo "$m_ours"; echo "$theirs"; echo "$m_theirs"; fi
      "$PY" - "$OUTD/dpo/metrics.jsonl" "$m_ours" "$theirs" "$m_theirs" "$dtype" "$lora" "$ref" "$BATCH" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"step_time"' in l]
mo, b, mt = json.loads(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
batch = int(sys.argv[8])
tokens = rows[1]["num_tokens"] - rows[0]["num_tokens"]
assert tokens == b["tokens_per_step"], f"tokens per step differ: rlhf {tokens} vs pytorch {b['tokens_per_step']}"
x = batch * (len(rows) - 1) / sum(r["step_time"] for r in rows[1:])
y = b["pairs_per_s"]
lora = "LoRA" if sys.argv[6] == "on" else "full"
print(f"{sys.argv[5]} {lora} {sys.argv[7]} reference: rlhf {x:.2f} pairs/s  pytorch {y:.2f} pairs/s  ratio {x / y:.2f}x | "
      f"peak RSS rlhf {mo['peak_rss_mb']:.0f} MB  pytorch {mt['peak_rss_mb']:.0f} MB | "
      f"wall rlhf {mo['wall_s']:.0f} s  pytorch {mt['wall_s']:.0f} s")
PYEOF
    done
  done
done

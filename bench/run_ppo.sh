#!/usr/bin/env bash
# One PPO iteration (rollout, scoring, PPO epochs), `rlhf ppo` vs a PyTorch-Python iteration written
# as TRL's PPO trainer does it (bench/ppo_step.py: transformers + peft, no trl), same random
# GPT-2-shaped policy, reward model (= critic initialisation), prompts, batch, response length,
# dtype, threads and BLAS kernel.
#   bench/run_ppo.sh [BUILD_DIR]
# Settings (environment, space-separated lists where plural):
#   SIZE=124m  THREADS=2  ITERATIONS=3  BATCH=16  NEW=32  DTYPES=fp32  LORA="off on"  SEQ=256
#   sizes: tiny small medium 124m 350m; ITERATIONS counts the warm-up iteration (at least 2);
#   BATCH = prompts per rollout (the first BATCH prompts of the workspace, on both sides); NEW = max
#   new tokens; dtypes: fp32 bf16 (bf16 autocast on both sides); LORA: off on (LoRA r 16 on the
#   policy and the critic; the reference is the policy with its adapters off). SEQ is the
#   workspace's data length (bench/make_data.py), which the reward model is trained from.
#   Fixed on both sides: 4 PPO epochs, 1 mini-batch, lr 3e-6, kl-coef 0.05, seed 42.
#   DEVICE=cpu (cuda: both sides on the GPU; peak RSS is then host memory only)
#   RLHF_PYTHON=.venv/bin/python (made by scripts/setup_venv.sh); VERBOSE=1 also prints the raw JSON.
# Quick check: SIZE=tiny ITERATIONS=2 BATCH=4 NEW=8 bench/run_ppo.sh
# Prints the machine, then one line per configuration with both sides' seconds per iteration (mean
# over the iterations after the warm-up) split into generate + score + train, peak RSS of the whole
# process, the mean response length (random models rarely emit EOS: both should be about NEW) and
# the ratio pytorch / rlhf seconds (above 1 means rlhf is faster).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PY=${RLHF_PYTHON:-.venv/bin/python}
SIZE=${SIZE:-124m}
THREADS=${THREADS:-2}
DEVICE=${DEVICE:-cpu}
ITERATIONS=${ITERATIONS:-3}
BATCH=${BATCH:-16}
NEW=${NEW:-32}
DTYPES=${DTYPES:-fp32}
LORA=${LORA:-off on}
SEQ=${SEQ:-256}

BENCH_TARGET=rlhf
# shellcheck source=bench/lib.sh
. bench/lib.sh
[ "$ITERATIONS" -ge 2 ] || die "ITERATIONS must be at least 2 (the first one is a warm-up)"
trainer_bench_setup
TMP=$OUTD
if [ ! -f "$WS/rm/config.json" ]; then
  echo "training a reward model in $WS/rm (1 step; it only has to exist)"
  rm -rf "$WS/rm"
  "$BUILD/rlhf" -q rm --model "$WS/model" --data "$WS/pairs.jsonl" --max-steps 1 --batch-size 2 --max-length 64 \
    --out "$WS/rm" || { rm -rf "$WS/rm"; die "rlhf rm failed"; }
fi
# The same prompts on both sides: rlhf draws its rollout batch from a shuffled order of the file,
# bench/ppo_step.py takes the first BATCH, so the file holds exactly BATCH prompts.
head -n "$BATCH" "$WS/prompts.jsonl" >"$TMP/prompts.jsonl"
[ "$(wc -l <"$TMP/prompts.jsonl")" -eq "$BATCH" ] || die "$WS/prompts.jsonl has fewer than $BATCH prompts"
echo "PPO iteration, model $SIZE: $BATCH prompts x up to $NEW new tokens, 4 PPO epochs x 1 mini-batch," \
  "$THREADS thread$([ "$THREADS" = 1 ] || echo s); mean of $((ITERATIONS - 1)) timed iterations after 1 warm-up"

m_ours='' m_theirs=''
for dtype in $DTYPES; do
  for lora in $LORA; do
    case $lora in
      on) lflag=(--lora) ;;
      off) lflag=() ;;
      *) die "LORA must list off and/or on, got '$lora'" ;;
    esac
    out=$TMP/ppo-$dtype-$lora
    common=(--prompts "$TMP/prompts.jsonl" --iterations "$ITERATIONS" --rollout-batch "$BATCH" --max-new-tokens "$NEW"
      --ppo-epochs 4 --mini-batches 1 --lr 3e-6 --kl-coef 0.05 --seed 42 "${lflag[@]}")
    measured ours m_ours "${PIN[@]}" "$BUILD/rlhf" -q --threads "$THREADS" --device "$DEVICE" --dtype "$dtype" ppo \
      --policy "$WS/model" --reward "$WS/rm" --out "$out" "${common[@]}" --sample-every 0 --lr-schedule linear
    measured theirs m_theirs "${ENVP[@]}" "${PIN[@]}" "$PY" bench/ppo_step.py \
      --policy "$WS/model" --reward "$WS/rm" "${common[@]}" --threads "$THREADS" --device "$DEVICE" --dtype "$dtype"
    if [ "${VERBOSE:-0}" = 1 ]; then echo "$m_ours"; echo "$theirs"; echo "$m_theirs"; fi
    "$PY" - "$out/metrics.jsonl" "$m_ours" "$theirs" "$m_theirs" "$SIZE" "$dtype" "$lora" "$THREADS" <<'PYEOF'
import json, sys
metrics, m_ours, theirs, m_theirs, size, dtype, lora, threads = sys.argv[1:]
rows = [json.loads(line) for line in open(metrics) if line.strip()]
rows = [r for r in rows if "time/generate" in r][1:]  # the first iteration is the warm-up
assert rows, f"{metrics}: no timed iterations"
mean = lambda k: sum(r[k] for r in rows) / len(rows)
a = {"gen": mean("time/generate"), "score": mean("time/score"), "train": mean("time/train"),
     "len": mean("val/mean_response_length")}
b = json.loads(theirs)
assert b["threads"] == int(threads), f"thread counts differ: rlhf {threads} vs pytorch {b['threads']}"
b = {"gen": b["time_generate"], "score": b["time_score"], "train": b["time_train"], "len": b["mean_response_length"]}
ra, rb = json.loads(m_ours)["peak_rss_mb"], json.loads(m_theirs)["peak_rss_mb"]
ta, tb = a["gen"] + a["score"] + a["train"], b["gen"] + b["score"] + b["train"]
side = lambda name, x, t, rss: (f"{name} {t:.3f} s/it ({x['gen']:.3f} gen + {x['score']:.3f} score + "
                                f"{x['train']:.3f} train, {rss:.0f} MB, response {x['len']:.1f} tok)")
print(f"{size} {dtype} lora {lora} {threads} thread{'s' * (threads != '1')}: {side('rlhf', a, ta, ra)}  "
      f"{side('pytorch', b, tb, rb)}  ratio {tb / ta:.2f}x")
PYEOF
    rm -rf "$out"  # rlhf's final weights, checkpoint and optimizer state (GBs at 124m)
  done
done

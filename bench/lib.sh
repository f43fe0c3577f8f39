# Shared by the bench/run_*.sh scripts: checks (venv, build), running a benchmark, pinning threads,
# the machine line. Source it after setting BUILD, PY and BENCH_TARGET.
die() { echo "error: $*" >&2; exit 1; }
[ -x "$PY" ] || die "no Python at $PY: create the venv with scripts/setup_venv.sh (or set RLHF_PYTHON)"
versions=$("$PY" -c "import torch, transformers; print('torch', torch.__version__, '/ transformers', transformers.__version__)" 2>/dev/null) ||
  die "$PY cannot import torch and transformers: run scripts/setup_venv.sh (or set RLHF_PYTHON)"
[ -f "$BUILD/build.ninja" ] || die "no Ninja build in $BUILD: configure it with scripts/build.sh"
ninja -C "$BUILD" "$BENCH_TARGET" >/dev/null || die "building $BENCH_TARGET in $BUILD failed"

ERR=$(mktemp)
trap 'rm -f "$ERR"' EXIT
# run_bench VAR CMD...: the last stdout line (the JSON) into VAR; on failure, show stderr and stop.
run_bench() {
  local var=$1 out
  shift
  out=$("$@" 2>"$ERR") || { echo "error: '$*' failed:" >&2; tail -n 20 "$ERR" >&2; exit 1; }
  printf -v "$var" '%s' "$(printf '%s\n' "$out" | tail -n 1)"
}
# pin_to N: PIN = the command prefix that pins N threads to cores 0..N-1 when there are enough
# cores (steadier numbers), else nothing.
pin_to() {
  PIN=()
  if command -v taskset >/dev/null && [ "$1" -le "$(nproc)" ]; then PIN=(taskset -c "0-$(($1 - 1))"); fi
}
ours='' theirs=''

cpu=$(grep -m1 -E '^(model name|Model|cpu model)' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "machine: ${cpu:-unknown CPU}, $(nproc) usable cores ($(grep -c '^processor' /proc/cpuinfo) logical CPUs); python $versions"

# make_workspace SIZE SEQ: WS = a directory (kept between runs, under $BUILD/bench-work) with a
# random GPT-2-shaped model of preset SIZE (rlhf init, seed 0) carrying a byte-level BPE tokenizer
# trained on the demo world's corpus, and the data of bench/make_data.py (rows cut to SEQ tokens).
make_workspace() {
  local size=$1 seq=$2
  WS=$BUILD/bench-work/$size-$seq
  [ -f "$WS/ready" ] && return 0
  rm -rf "$WS" && mkdir -p "$WS"
  echo "preparing $WS (model $size, data cut to $seq tokens)"
  "$BUILD/rlhf" -q world generate --out "$WS/world" --pretrain-docs 3000 || die "rlhf world generate failed"
  "$PY" bench/make_data.py --world "$WS/world" --out "$WS" --seq "$seq" || die "bench/make_data.py failed"
  "$BUILD/rlhf" -q tokenizer train --text "$WS/text.txt" --vocab-size 4096 --out "$WS/tok" || die "rlhf tokenizer train failed"
  "$BUILD/rlhf" -q init --size "$size" --out "$WS/model" --seed 0 || die "rlhf init failed"
  cp "$WS"/tok/* "$WS/model/"
  touch "$WS/ready"
}

# measured VAR MEASURE_VAR CMD...: like run_bench, and MEASURE_VAR = bench/measure.py's JSON (wall
# time, peak RSS of the command).
measured() {
  local var=$1 mvar=$2
  shift 2
  run_bench "$var" "$PY" bench/measure.py "$@"
  printf -v "$mvar" '%s' "$(grep -m1 '^{"measure"' "$ERR")"
}

# openblas_env: ENVP = the env prefix that gives PyTorch the OpenBLAS kernel rlhf chose (rlhf
# re-execs itself with a better one when OpenBLAS misdetects the CPU); the user's
# OPENBLAS_CORETYPE wins on both sides.
openblas_env() {
  ENVP=(env)
  local kernel
  kernel=$("$BUILD/rlhf" env 2>&1 | sed -n 's/^blas kernel *//p' | head -n 1)
  if [ -z "${OPENBLAS_CORETYPE:-}" ] && [ -n "$kernel" ]; then ENVP=(env OPENBLAS_CORETYPE="$kernel"); fi
}

# trainer_bench_setup: what the trainer benchmarks (run_sft, run_dpo, run_ppo) share: the workspace
# for $SIZE / $SEQ, the BLAS kernel for the Python side (ENVP), thread pinning (PIN) and OUTD, a
# temporary directory for rlhf's outputs, removed on exit.
trainer_bench_setup() {
  make_workspace "$SIZE" "$SEQ"
  openblas_env
  pin_to "$THREADS"
  OUTD=$(mktemp -d)
  trap 'rm -rf "$OUTD" "$ERR"' EXIT
}

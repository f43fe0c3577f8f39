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

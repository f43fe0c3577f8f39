#!/usr/bin/env bash
# The GPU check, run on a machine with a CUDA build of PyTorch (its libtorch), CMake and ninja but
# none of our Debian packages (carry third_party/carry, made by scripts/gpu_carry.sh):
# builds against that libtorch, runs the train-step, generation, SFT, DPO and PPO benchmarks with both
# sides on the GPU, then the test suite with every test on the GPU (RLHF_TEST_DEVICE).
#   scripts/gpu_check.sh [LOG_DIR]      (stages: GPU_STAGES="build bench test")
# Each stage's log goes to LOG_DIR (default build-cuda/logs); a stage's failure is reported and
# the next stage still runs when it can.
set -uo pipefail
cd "$(dirname "$0")/.."
LOG=${1:-build-cuda/logs}
STAGES=${GPU_STAGES:-build bench test}
# The whole check must end inside the GPU machine's per-command limit: the tests (last) get what
# is left of GPU_CHECK_SECONDS.
DEADLINE=$((SECONDS + ${GPU_CHECK_SECONDS:-500}))
mkdir -p "$LOG"
PY=$(command -v python3)
say() { echo "== $(date +%T) $*"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'
status=0

if [[ " $STAGES " == *" build "* ]]; then
  say build
  TP=$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)')
  [ -x /usr/local/cuda/bin/nvcc ] && export CUDACXX=/usr/local/cuda/bin/nvcc PATH=/usr/local/cuda/bin:$PATH
  export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
  cmake -S . -B build-cuda -G Ninja -DCMAKE_PREFIX_PATH="$TP" -DRLHF_PARSER_ASAN=OFF \
        -DRLHF_REF_PYTHON="$PY" >"$LOG/configure.log" 2>&1 || { tail -n 40 "$LOG/configure.log"; exit 1; }
  ninja -C build-cuda rlhf rlhf_tests bench_train_step bench_generate >"$LOG/build.log" 2>&1 ||
    { grep -m 20 -A 5 'error' "$LOG/build.log"; tail -n 20 "$LOG/build.log"; exit 1; }
  say built
  # Tokenizer reference fixtures need the project venv (not on the GPU machine): reuse the ones a
  # CPU build made, when they were carried along (build/tests/tokenizer_fixtures).
  if [ -d build/tests/tokenizer_fixtures ] && [ ! -d build-cuda/tests/tokenizer_fixtures ]; then
    cp -r build/tests/tokenizer_fixtures build-cuda/tests/
  fi
  build-cuda/rlhf env --device cuda 2>&1 | tee "$LOG/env.log"
  # Which C++ runtime the programs load (a compiler outside /usr, e.g. /opt/gcc, brings a newer
  # libstdc++ than the system's; CMakeLists.txt gives the programs its directory as run path).
  { grep -m1 PRETTY_NAME /etc/os-release; "${CXX:-c++}" --version | head -n 1
    readelf -d build-cuda/tests/rlhf_tests | grep -E 'NEEDED|RPATH|RUNPATH' | head -n 5
    ldd build-cuda/tests/rlhf_tests | grep -E 'stdc\+\+|torch_cpu'; } 2>&1 | tee "$LOG/runtime.log"
fi

if [[ " $STAGES " == *" bench "* ]]; then
  say "benchmarks on cuda"
  export RLHF_PYTHON=$PY DEVICE=cuda THREADS=${THREADS:-4}
  SIZES=124m DTYPES="fp32 bf16" BATCH=${BENCH_BATCH:-8} SEQ=1024 STEPS=10 \
    bench/run_train_step.sh build-cuda 2>&1 | tee "$LOG/bench_train_step.log" || status=1
  SIZES=124m BATCHES="1 32" DTYPES="fp32 bf16" NEW=128 \
    bench/run_generate.sh build-cuda 2>&1 | tee "$LOG/bench_generate.log" || status=1
  if [ "${GPU_BENCH_TRAINERS:-1}" = 1 ]; then  # rlhf sft / dpo / ppo against their TRL-style twins
    SIZE=124m DTYPES=bf16 LORA="off on" STEPS=6 BATCH=8 SEQ=512 \
      bench/run_sft.sh build-cuda 2>&1 | tee "$LOG/bench_sft.log" || status=1
    SIZE=124m DTYPES=bf16 LORA=off REFS="cached online" STEPS=6 BATCH=8 SEQ=512 \
      bench/run_dpo.sh build-cuda 2>&1 | tee "$LOG/bench_dpo.log" || status=1
    SIZE=124m DTYPES=bf16 LORA=off ITERATIONS=3 BATCH=32 NEW=64 \
      bench/run_ppo.sh build-cuda 2>&1 | tee "$LOG/bench_ppo.log" || status=1
  fi
fi
if [[ " $STAGES " == *" test "* ]]; then
  say "tests on cuda"
  left=$((DEADLINE - SECONDS))
  RLHF_TEST_DEVICE=cuda timeout "$left" ctest --test-dir build-cuda -j "${GPU_TEST_JOBS:-16}" --timeout 240 \
    --output-on-failure >"$LOG/ctest.log" 2>&1 || status=1
  echo "passed: $(grep -cE 'Test +#[0-9]+: .* Passed' "$LOG/ctest.log")"
  # A crash gets a backtrace: the first test that died, once more under a debugger (the GPU
  # machines have cuda-gdb, which also debugs host code, and no gdb).
  crashed=$(sed -nE 's/.*Test +#[0-9]+: ([^ ]+) .*(SegFault|Subprocess aborted).*/\1/p' "$LOG/ctest.log" | head -n 1)
  dbg=$(command -v gdb || command -v cuda-gdb || true)
  if [ -n "$crashed" ] && [ -n "$dbg" ]; then
    say "backtrace of $crashed"
    RLHF_TEST_DEVICE=cuda timeout 120 "$dbg" -batch -ex run -ex bt -ex "info sharedlibrary" \
      --args build-cuda/tests/rlhf_tests --gtest_filter="$crashed" >"$LOG/backtrace.log" 2>&1
    grep -E '^#[0-9]+ ' "$LOG/backtrace.log" | head -n 25
    grep -E 'libstdc|torch_cpu' "$LOG/backtrace.log" | head -n 5
  fi
  grep -E 'tests passed|\*\*\*|Total Test time' "$LOG/ctest.log" | tail -n 60
fi

say "done (status $status)"
exit $status

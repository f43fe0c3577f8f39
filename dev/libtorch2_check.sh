#!/usr/bin/env bash
# Builds the project against PyTorch's own libtorch 2.x (the pip wheel's headers and CPU libraries)
# instead of Debian's 1.13, and runs the test suite on the CPU: the libtorch-2.x half of what a GPU
# machine checks, on any x86-64 Linux with network access. Not part of CI (a 530 MB download).
#   dev/libtorch2_check.sh [WORK_DIR]     (default /tmp/rlhf-libtorch2; build in build-libtorch2/)
# The wheel is the CUDA build: libtorch_cpu.so needs libcudart and libcupti to load, which come from
# NVIDIA's wheels (no GPU needed). Its TorchConfig.cmake insists on a CUDA toolkit, so a small
# stand-in config points CMake at the wheel's CPU libraries instead.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-/tmp/rlhf-libtorch2}
TORCH=${TORCH_VERSION:-2.11.0}
PY=${RLHF_PYTHON:-.venv/bin/python}
mkdir -p "$W/wheels"
get() {
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_25_x86_64 --platform manylinux_2_17_x86_64 \
    -d "$W/wheels" "$@"
}
[ -d "$W/torch/lib" ] || {
  get "torch==$TORCH" "nvidia-cuda-runtime>=13,<13.1" "nvidia-cuda-cupti==13.0.85"
  for w in "$W"/wheels/*.whl; do unzip -q -o "$w" 'torch/include/*' 'torch/lib/*' 'nvidia/*' -d "$W" 2>/dev/null || true; done
}
CUDA_LIB=$(dirname "$(find "$W/nvidia" -name 'libcudart.so.*' | head -n 1)")
mkdir -p "$W/cmake"
cat >"$W/cmake/TorchConfig.cmake" <<CMAKE
add_library(torch_wheel INTERFACE IMPORTED)
set_target_properties(torch_wheel PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES "$W/torch/include;$W/torch/include/torch/csrc/api/include"
  INTERFACE_LINK_LIBRARIES "$W/torch/lib/libtorch_cpu.so;$W/torch/lib/libc10.so"
  INTERFACE_COMPILE_DEFINITIONS "_GLIBCXX_USE_CXX11_ABI=1")
set(TORCH_LIBRARIES torch_wheel)
set(Torch_FOUND TRUE)
CMAKE
cmake -S . -B build-libtorch2 -G Ninja -DTorch_DIR="$W/cmake" -DRLHF_PARSER_ASAN=OFF >/dev/null
ninja -C build-libtorch2 rlhf rlhf_tests
export LD_LIBRARY_PATH=$W/torch/lib:$CUDA_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
build-libtorch2/rlhf env | tee "$W/env.txt"
# PyTorch's builds link MKL into libtorch_cpu: rlhf must say so, not warn about a slow reference BLAS.
grep -q '^blas *MKL (linked into libtorch' "$W/env.txt" || { echo "error: rlhf env did not report MKL" >&2; exit 1; }
ctest --test-dir build-libtorch2 -j "$(nproc)" --output-on-failure "${@:2}"

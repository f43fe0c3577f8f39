#!/usr/bin/env bash
# Configures and builds rlhf-cpp into ./build (Release, Ninja, precompiled headers).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
# Always (re)configure: it is quick, and it picks up a venv created since the last configure.
if [ -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" "$@" >/dev/null
else
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
fi
cmake --build "$BUILD_DIR" --target ${TARGETS:-all}

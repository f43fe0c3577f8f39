#!/usr/bin/env bash
# The test suite from a fresh Debian 12 machine: install packages, set up the Python references
# (before configuring, so CMake registers the tests that need them), build, run CTest.
# Used verbatim by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/setup_venv.sh
scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)" "$@"

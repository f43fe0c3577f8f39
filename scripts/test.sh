#!/usr/bin/env bash
# The test suite from a fresh Debian 12 machine: install packages, build, set up the Python
# references, run CTest. Used verbatim by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
scripts/setup_venv.sh
ctest --test-dir build --output-on-failure -j "$(nproc)" "$@"

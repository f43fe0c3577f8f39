#!/usr/bin/env bash
# The main job from a fresh Debian 12 machine: install the packages, build the rlhf binary, run the
# end-to-end demo (`rlhf demo`), and say how long each part took. Rerunning resumes / skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
scripts/install_deps.sh demo
t1=$(date +%s)
TARGETS=rlhf scripts/build.sh
t2=$(date +%s)
build/rlhf demo --run-dir "${RUN_DIR:-runs/demo}" "$@"
t3=$(date +%s)
echo "time: install $((t1 - t0)) s, build $((t2 - t1)) s, demo $((t3 - t2)) s, total $((t3 - t0)) s"

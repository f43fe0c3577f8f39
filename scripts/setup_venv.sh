#!/usr/bin/env bash
# Test-time references only (never used by the rlhf binary): Hugging Face transformers, tokenizers
# and PEFT on Debian's python3-torch, in .venv with system site packages. Pinned versions that
# work with torch 1.13.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${RLHF_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import transformers, tokenizers, peft, jinja2, sentencepiece, google.protobuf, gguf, selenium, krippendorff" 2>/dev/null; then
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check \
      "transformers==4.45.2" "tokenizers==0.20.3" "safetensors==0.4.5" "jinja2>=3.1" psutil pyyaml tqdm \
      "sentencepiece==0.2.0" "protobuf>=5.28,<6" "gguf==0.19.0" "selenium==4.27.1"
  # peft/accelerate ask for a torch newer than Debian's "1.13.0a0"; they work with it.
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "peft==0.13.2" "accelerate==0.34.2" \
      "krippendorff==0.8.1"  # the labelling app's agreement figures are checked against it (numpy from Debian)
fi
"$VENV/bin/python" -c "import transformers, tokenizers, peft; print('venv ok: transformers', transformers.__version__, 'tokenizers', tokenizers.__version__, 'peft', peft.__version__)"

#!/usr/bin/env bash
# Single-thread tokenizer encoding speed, rlhf vs Hugging Face tokenizers, on the same English text.
#   bench/run_tokenizer.sh [BUILD_DIR] [TOKENIZER_DIR]
# Defaults: build/ and GPT-2's tokenizer from the test fixtures (made if missing). Prints MB/s of
# both and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PY=${RLHF_PYTHON:-.venv/bin/python}
FIXTURES=$BUILD/tests/tokenizer_fixtures
TOK=${2:-$FIXTURES/gpt2}
TEXT=$BUILD/bench_tokenizer_text.txt
ninja -C "$BUILD" bench_tokenizer >/dev/null
[ -d "$TOK" ] || "$PY" tests/ref/make_tokenizer_fixtures.py --out "$FIXTURES"
[ -f "$TEXT" ] || "$PY" bench/bench_tokenizer.py --make-text "$TEXT"
ours=$(taskset -c 0 "$BUILD/bench_tokenizer" "$TOK" "$TEXT")
theirs=$(taskset -c 0 "$PY" bench/bench_tokenizer.py "$TOK" "$TEXT")
echo "$ours"
echo "$theirs"
"$PY" - "$ours" "$theirs" <<'PYEOF'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert a["tokens"] == b["tokens"], f"token counts differ: rlhf {a['tokens']} vs hf {b['tokens']}"
print(f"rlhf {a['mb_per_s']:.2f} MB/s   hf {b['mb_per_s']:.2f} MB/s   ratio {a['mb_per_s'] / b['mb_per_s']:.2f}x "
      f"({a['bytes'] / 1e6:.1f} MB, {a['tokens']} tokens, one core)")
PYEOF

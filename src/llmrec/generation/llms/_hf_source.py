"""Where the ``transformers`` backend's weights come from: :func:`resolve_source` turns its
``model`` argument into something ``from_pretrained`` loads.

The embedded model ships as a Q4_1 GGUF file. Reading GGUF with transformers
de-quantizes every tensor, which is slow, so the first load converts it once into a
bfloat16 safetensors copy under the llmrec cache directory (``$LLMREC_CACHE``, else
``$XDG_CACHE_HOME/llmrec``, else ``~/.cache/llmrec``); later loads read that copy, which is
much faster. The copy holds exactly the weights a bfloat16 GGUF load gives, so greedy text
is identical either way.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from llmrec.device import quiet_model_loading
from llmrec.errors import BackendUnavailableError, ConfigError, GenerationError
from llmrec.generation.llms.base import default_llm_path
from llmrec.storage.io import default_cache_dir

__all__ = ["check_hub_model", "converted_copy", "import_transformers", "resolve_source"]

logger = logging.getLogger(__name__)

_CONVERTED_MARKER = "llmrec-converted.json"


def _file_fingerprint(path: Path) -> str:
    """Hash of a file's size and its first and last MiB (cheap, stable across copies)."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        digest.update(f.read(1 << 20))
        if size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
            digest.update(f.read(1 << 20))
    return digest.hexdigest()[:16]


def import_transformers() -> Any:
    """The ``transformers`` module, or a BackendUnavailableError saying how to install it."""
    try:
        import transformers
    except ImportError as exc:  # pragma: no cover - transformers is a core dependency
        raise BackendUnavailableError(
            "the transformers chat backend needs transformers; install it with: "
            "pip install transformers"
        ) from exc
    return transformers


def _convert_gguf(gguf: Path, target: Path) -> None:
    """De-quantize ``gguf`` once and write a bfloat16 safetensors copy to ``target``.

    Written into a temporary sibling directory and renamed into place, so a crash or a
    concurrent conversion never leaves a half-written copy at ``target``.
    """
    transformers = import_transformers()
    started = time.perf_counter()
    logger.info("converting %s to a safetensors copy in %s (once)", gguf, target)
    try:
        with quiet_model_loading():
            tokenizer = transformers.AutoTokenizer.from_pretrained(
                str(gguf.parent), gguf_file=gguf.name
            )
            model = transformers.AutoModelForCausalLM.from_pretrained(
                str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16
            )
    except Exception as exc:
        raise GenerationError(f"cannot load the GGUF model {str(gguf)!r}: {exc}") from exc
    # The de-quantized weights are plain tensors; only the quantizer bookkeeping makes
    # save_pretrained refuse ("quantized with gguf and is not serializable").
    model.hf_quantizer = None
    with contextlib.suppress(AttributeError):
        del model.config.quantization_config
    for attr in ("is_quantized", "quantization_method"):
        with contextlib.suppress(AttributeError):
            delattr(model, attr)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / _CONVERTED_MARKER).write_text(
            json.dumps({"source": str(gguf), "dtype": "bfloat16"}), encoding="utf-8"
        )
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / _CONVERTED_MARKER).exists():  # not a concurrent winner
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("converted %s in %.1fs", gguf.name, time.perf_counter() - started)


def converted_copy(gguf: Path, cache_dir: str | os.PathLike | None) -> Path:
    """The directory of the safetensors copy of ``gguf`` under ``cache_dir`` (default:
    :func:`llmrec.storage.io.default_cache_dir`), converted first if there is none; a copy
    is keyed by the file's name and fingerprint."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    stem = gguf.name[: -len(".gguf")] if gguf.name.endswith(".gguf") else gguf.name
    target = root / "models" / f"{stem}-{_file_fingerprint(gguf)}"
    if not (target / _CONVERTED_MARKER).exists():
        _convert_gguf(gguf, target)
    return target


def resolve_source(model: str, cache_dir: str | os.PathLike | None) -> str:
    """What ``from_pretrained`` loads for ``model``: the converted copy of the embedded
    model (``"default"``) or of a ``.gguf`` file (or of a directory's only one), a model
    directory, or a Hugging Face hub id.

    Raises:
        ConfigError: ``model`` names a local path that does not exist or holds no model.
    """
    if model == "default":
        return str(converted_copy(default_llm_path(), cache_dir))
    path = Path(model).expanduser()
    if path.exists():
        if path.is_file():
            if path.suffix.lower() != ".gguf":
                raise ConfigError(f"model file {model!r} is not a .gguf file or a model directory")
            return str(converted_copy(path, cache_dir))
        if (path / "config.json").exists():
            return str(path)
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return str(converted_copy(ggufs[0], cache_dir))
        raise ConfigError(
            f"model directory {model!r} holds neither config.json nor exactly one .gguf file"
        )
    looks_local = (
        model.startswith((".", "/", "~", "\\"))
        or model.lower().endswith(".gguf")
        or os.path.isabs(model)
        or model.count("/") > 1
    )
    if looks_local:
        raise ConfigError(f"model path {model!r} does not exist")
    check_hub_model(model)
    return model  # a Hugging Face hub id


def _hub_offline() -> bool:
    """Whether Hugging Face hub downloads are switched off (read now, not at import)."""
    flags = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return any(flag.strip().upper() in ("1", "ON", "YES", "TRUE") for flag in flags)


def check_hub_model(model: str) -> None:
    """Refuse a Hugging Face hub id that cannot load: hub downloads are off
    (``HF_HUB_OFFLINE=1``) and the model is not in the local hub cache. Online nothing is
    asked (a wrong id fails when the model loads).

    Raises:
        ConfigError: as above, or ``model`` is not a valid hub id.
    """
    if not _hub_offline():
        return
    from huggingface_hub import constants, try_to_load_from_cache

    try:
        found = try_to_load_from_cache(model, "config.json")
    except ValueError:  # HFValidationError: not of the form "owner/name"
        raise ConfigError(
            f"model {model!r:.80} is neither a local path nor a Hugging Face hub id"
        ) from None
    if not isinstance(found, str):
        raise ConfigError(
            f"model {model!r:.80} is a Hugging Face hub id, but hub downloads are off "
            f"(HF_HUB_OFFLINE) and it is not in the local cache {constants.HF_HUB_CACHE!r}: "
            "download it once while online, or pass a local model directory"
        )

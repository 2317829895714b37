"""The ``llamacpp`` chat backend: a GGUF model run in-process by llama-cpp-python.

llama.cpp decodes one sequence at a time, so conversations are answered one after the
other (faster than the ``transformers`` backend at batch 1 on a CPU, and no conversion
step: the GGUF file is read as is).

Intel CPUs with AMX (Sapphire Rapids and later): llama.cpp builds compiled with AMX
support crash while loading a model, in the AMX weight-repacking buffer. When
``/proc/cpuinfo`` lists ``amx_int8`` or ``amx_tile``, :class:`LlamaCppChat` loads the
model with llama.cpp's extra buffer types turned off (``use_extra_bufts = false``), which
avoids that code path; the model then runs on the ordinary CPU kernels. A build without AMX
(``CMAKE_ARGS="-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"``, plus
``-mno-amx-tile -mno-amx-int8 -mno-amx-bf16`` in ``CFLAGS``/``CXXFLAGS`` when
``-DGGML_NATIVE=ON``) does not need it; ``scripts/setup.sh`` builds that way.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llmrec._validate import check_bool, check_int
from llmrec.device import DeviceLike, resolve_device
from llmrec.errors import BackendUnavailableError, ConfigError, DeviceError, GenerationError
from llmrec.generation.llms.base import StreamingChat, default_llm_path

__all__ = [
    "LlamaCppChat",
    "cpu_has_amx",
    "llama_model_params_without_extra_buffers",
    "physical_cores",
]

logger = logging.getLogger(__name__)

_INSTALL_HINT = "pip install 'llmrec[llamacpp]' (or: pip install llama-cpp-python)"
# Serializes the (process-wide) parameter patch below with every model load it affects.
_LOAD_LOCK = threading.Lock()


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the llamacpp chat backend needs llama-cpp-python; install it with: {_INSTALL_HINT}"
        ) from exc
    return llama_cpp


@functools.lru_cache(maxsize=1)
def cpu_has_amx() -> bool:
    """Whether ``/proc/cpuinfo`` lists Intel AMX (``amx_int8`` or ``amx_tile``)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return bool(flags & {"amx_int8", "amx_tile"})
    return False


@functools.lru_cache(maxsize=1)
def physical_cores() -> int:
    """Physical cores this process may run on (hyper-threads counted once); at least 1."""
    available = (
        set(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else set(range(os.cpu_count() or 1))
    )
    cores: set[tuple[str, str]] = set()
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for block in text.split("\n\n"):
        fields = {
            k.strip(): v.strip() for k, _, v in (line.partition(":") for line in block.splitlines())
        }
        if (
            fields.get("processor", "").isdigit()
            and int(fields["processor"]) in available
            and "core id" in fields
        ):
            cores.add((fields.get("physical id", "0"), fields["core id"]))
    return max(1, len(cores) or len(available))


@contextlib.contextmanager
def llama_model_params_without_extra_buffers() -> Iterator[None]:
    """While active, llama-cpp-python loads models with ``use_extra_bufts = false``.

    For llama-cpp-python versions whose ``Llama`` has no ``use_extra_bufts`` argument:
    the default model parameters it starts from are patched. Also usable around
    ``python -m llama_cpp.server`` on CPUs with AMX.
    """
    lib = _import_llama_cpp().llama_cpp
    fields = {name for name, *_ in getattr(lib.llama_model_params, "_fields_", ())}
    if "use_extra_bufts" not in fields:  # a llama.cpp without extra buffer types
        yield
        return
    original = lib.llama_model_default_params

    def defaults_without_extra_buffers() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    with _LOAD_LOCK:
        lib.llama_model_default_params = defaults_without_extra_buffers
        try:
            yield
        finally:
            lib.llama_model_default_params = original


def _resolve_gguf(model: str) -> Path:
    if not isinstance(model, str) or not model:
        raise ConfigError(f"model must be 'default' or a path to a .gguf file, got {model!r}")
    if model == "default":
        return default_llm_path()
    path = Path(model).expanduser()
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) != 1:
            raise ConfigError(f"model directory {model!r} does not hold exactly one .gguf file")
        return ggufs[0]
    if not path.is_file():
        raise ConfigError(
            f"model path {model!r} does not exist (the llamacpp backend reads local .gguf files)"
        )
    if path.suffix.lower() != ".gguf":
        raise ConfigError(f"model file {model!r} is not a .gguf file")
    return path


class LlamaCppChat(StreamingChat):
    """Greedy chat generation with a GGUF model in llama-cpp-python, one conversation at a
    time.

    The prompt is rendered with the model's own chat template (GGUF metadata). A
    conversation ending with an ``assistant`` message is continued: the answer is the text
    that follows that message (prefill), as with the ``transformers`` backend. Calls from
    several threads are serialized.

    Args:
        model: ``"default"`` (the embedded SmolLM2-135M-Instruct GGUF), a path to a
            ``.gguf`` file, or a directory holding exactly one.
        device: See :func:`llmrec.resolve_device`. A GPU offloads every layer and needs a
            llama-cpp-python built with GPU support; ``"auto"`` falls back to the CPU when
            the build has none.
        n_ctx: Context window in tokens (prompt plus answer).
        n_threads: CPU threads; default: the physical cores this process may use.
        show_progress: Show a progress bar over conversations.

    Raises:
        BackendUnavailableError: llama-cpp-python or the embedded model is not installed.
        ConfigError: a bad argument, or a model path that does not exist.
        DeviceError: a GPU was asked for explicitly and this build cannot use it.
        GenerationError: the model cannot be loaded.
    """

    name = "llamacpp"
    #: Continues a final assistant message (the generator prefills a reason's opening).
    continues_prefill = True
    #: llama.cpp decodes one sequence at a time; callers batching by this size get each
    #: answer as soon as it is done.
    max_batch_size = 1

    def __init__(
        self,
        model: str = "default",
        *,
        device: DeviceLike = "auto",
        n_ctx: int = 2048,
        n_threads: int | None = None,
        show_progress: bool = False,
    ) -> None:
        llama_cpp = _import_llama_cpp()
        self.n_ctx = check_int(n_ctx, "n_ctx", low=128, high=1 << 20)
        self._n_threads_arg = (
            None if n_threads is None else check_int(n_threads, "n_threads", low=1)
        )
        self.show_progress = check_bool(show_progress, "show_progress")
        path = _resolve_gguf(model)
        self.model_name = model
        self.n_threads = self._n_threads_arg or physical_cores()
        self.device = self._resolve_device(llama_cpp, device)
        self._lock = threading.Lock()
        started = time.perf_counter()
        self._llm = self._load(llama_cpp, path)
        self.model_path = path
        self._formatters = self._chat_formatters(llama_cpp)
        logger.info(
            "loaded %s with llama.cpp on %s (%d threads) in %.2fs",
            path.name,
            self.device,
            self.n_threads,
            time.perf_counter() - started,
        )

    def _load(self, llama_cpp: Any, path: Path) -> Any:
        """The ``llama_cpp.Llama`` of ``path``: every layer offloaded on a GPU, and on a
        CPU with AMX without llama.cpp's extra buffer types (see the module docstring)."""
        kwargs: dict[str, Any] = dict(
            model_path=str(path),
            n_ctx=self.n_ctx,
            n_threads=self.n_threads,
            n_threads_batch=self.n_threads,
            n_gpu_layers=-1 if self.device.type != "cpu" else 0,
            verbose=False,
        )
        if self.device.type == "cuda" and self.device.index is not None:
            kwargs["main_gpu"] = self.device.index
        amx_guard: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
        self.extra_buffers = True
        if cpu_has_amx():
            self.extra_buffers = False
            if "use_extra_bufts" in inspect.signature(llama_cpp.Llama).parameters:
                kwargs["use_extra_bufts"] = False
            else:
                amx_guard = llama_model_params_without_extra_buffers()
            logger.info("CPU has AMX: loading %s without llama.cpp's extra buffer types", path.name)
        try:
            with amx_guard:
                return llama_cpp.Llama(**kwargs)
        except Exception as exc:  # llama-cpp-python raises ValueError on a bad file
            raise GenerationError(f"cannot load the GGUF model {str(path)!r}: {exc}") from exc

    @staticmethod
    def _resolve_device(llama_cpp: Any, device: DeviceLike) -> Any:
        resolved = resolve_device(device)
        if resolved.type == "cpu" or llama_cpp.llama_supports_gpu_offload():
            return resolved
        if device is None or device == "auto":
            logger.info("this llama-cpp-python build has no GPU support; running on the CPU")
            return resolve_device("cpu")
        raise DeviceError(
            f"device {str(resolved)!r} was requested but this llama-cpp-python build has no "
            "GPU support; reinstall it with CMAKE_ARGS='-DGGML_CUDA=on' (or '-DGGML_METAL=on')"
        )

    def _chat_formatters(self, llama_cpp: Any) -> dict[bool, Any] | None:
        """Formatters of the model's chat template, keyed by "continue the last message"."""
        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            logger.warning(
                "%s has no chat template; using llama-cpp-python's default chat "
                "format, which cannot continue a final assistant message",
                self.model_path.name,
            )
            return None
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        def token_text(token: int) -> str:
            if token < 0:
                return ""
            return self._llm.detokenize([token], special=True).decode("utf-8", errors="replace")

        eos, bos = token_text(self._llm.token_eos()), token_text(self._llm.token_bos())
        return {
            prefill: Jinja2ChatFormatter(
                template=template, eos_token=eos, bos_token=bos, add_generation_prompt=not prefill
            )
            for prefill in (False, True)
        }

    def config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model_name, "n_ctx": self.n_ctx}
        if self._n_threads_arg is not None:
            out["n_threads"] = self._n_threads_arg
        return out

    # ------------------------------------------------------------------ generation
    def _prompt(self, conversation: list[dict]) -> tuple[str, list[str]]:
        """The rendered prompt and its stop strings."""
        prefill = conversation[-1]["role"] == "assistant"
        rendered = self._formatters[prefill](messages=conversation)
        prompt = rendered.prompt
        if prefill:
            # The template closes every message; cut the prompt right after the final
            # message's text so the model continues it (as transformers'
            # continue_final_message does).
            final = conversation[-1]["content"].strip()
            end = prompt.rfind(final) if final else -1
            if end < 0:
                raise GenerationError("the chat template dropped the final assistant message")
            prompt = prompt[: end + len(final)]
        stops = rendered.stop if isinstance(rendered.stop, list) else [rendered.stop]
        return prompt, [s for s in stops if s]

    def _drop_full_prefix_hit(self, tokens: list[int]) -> None:
        """Forget the KV cache when it already holds all of ``tokens`` but the last.

        llama-cpp-python reuses the cached prefix a new prompt shares with the previous
        one. A shared system prompt is worth keeping, but when only the last prompt token is
        left to evaluate it runs through llama.cpp's single-token kernels, whose rounding
        differs from the batched prompt pass; a greedy answer could then depend on what
        was asked before. Re-evaluating the prompt keeps answers reproducible.
        """
        cached = self._llm.input_ids[: self._llm.n_tokens].tolist()
        if cached and self._llm.longest_token_prefix(cached, tokens) >= len(tokens) - 1:
            self._llm.reset()

    def _answer(self, conversation: list[dict], max_new_tokens: int) -> str:
        try:
            with self._lock:
                if self._formatters is None:
                    out = self._llm.create_chat_completion(
                        messages=conversation, max_tokens=max_new_tokens, temperature=0.0
                    )
                    text = out["choices"][0]["message"]["content"] or ""
                else:
                    prompt, stops = self._prompt(conversation)
                    tokens = self._llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
                    if len(tokens) + max_new_tokens > self.n_ctx:
                        raise GenerationError(
                            f"prompt of {len(tokens)} tokens plus max_new_tokens={max_new_tokens} "
                            f"exceeds n_ctx={self.n_ctx}"
                        )
                    self._drop_full_prefix_hit(tokens)
                    out = self._llm.create_completion(
                        tokens,
                        max_tokens=max_new_tokens,
                        temperature=0.0,
                        repeat_penalty=1.0,
                        stop=stops,
                    )
                    text = out["choices"][0]["text"] or ""
        except GenerationError:
            raise
        except Exception as exc:
            raise GenerationError(f"llama.cpp model {self.model_name!r} failed: {exc}") from exc
        return text.strip()

    def _stream(
        self, conversations: list[list[dict]], max_new_tokens: int
    ) -> Iterator[tuple[int, str]]:
        """Answers in input order, each as soon as it is done."""
        from tqdm.auto import tqdm

        for index, conversation in enumerate(
            tqdm(conversations, desc="generating", unit="text", disable=not self.show_progress)
        ):
            yield index, self._answer(conversation, max_new_tokens)

    def __repr__(self) -> str:
        return (
            f"LlamaCppChat(model={self.model_name!r}, device={self.device}, "
            f"n_threads={self.n_threads})"
        )

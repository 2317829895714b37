"""The ``template`` backend: no model, every text is the generator's grounded template."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from llmrec.device import DeviceLike
from llmrec.generation.llms.base import ChatMessage, check_conversations, check_max_new_tokens

__all__ = ["TemplateChat"]


class TemplateChat:
    """A backend without a model: every answer is empty.

    :class:`~llmrec.generation.ContentGenerator` recognises it and always uses its grounded
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
        conversations = check_conversations(conversations)
        check_max_new_tokens(max_new_tokens)
        return [""] * len(conversations)

    def stream(
        self, conversations: Sequence[Sequence[ChatMessage]], *, max_new_tokens: int = 48
    ) -> Iterator[tuple[int, str]]:
        return iter(list(enumerate(self.generate(conversations, max_new_tokens=max_new_tokens))))

    def __repr__(self) -> str:
        return "TemplateChat()"

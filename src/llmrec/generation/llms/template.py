"""The ``template`` backend: no model, every text is the generator's grounded template."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from llmrec.device import DeviceLike
from llmrec.generation.llms.base import StreamingChat

__all__ = ["TemplateChat"]


class TemplateChat(StreamingChat):
    """A backend without a model: every answer is empty.

    :class:`~llmrec.generation.ContentGenerator` recognises it and always uses its grounded
    template text (``source="template"``, ``fallback_reason="template backend"``).
    """

    name = "template"

    def __init__(self, *, device: DeviceLike = None) -> None:  # device accepted, unused
        del device

    def config(self) -> dict[str, Any]:
        return {}

    def _stream(
        self, conversations: list[list[dict]], max_new_tokens: int
    ) -> Iterator[tuple[int, str]]:
        return iter([(index, "") for index in range(len(conversations))])

    def __repr__(self) -> str:
        return "TemplateChat()"

"""Generation: personalized, grounded text about recommendations.

:class:`ContentGenerator` turns each :class:`ReasonRequest` into a verified text through a
chat backend (:mod:`.llms`), falling back to a template built from the same evidence.
"""

from __future__ import annotations

from llmrec.generation.generator import (
    ContentGenerator,
    ReasonRequest,
    Verification,
    display_title,
    sanitize_text,
    verify_text,
)
from llmrec.generation.llms.base import ChatBackend, ChatMessage

__all__ = [
    "ChatBackend",
    "ChatMessage",
    "ContentGenerator",
    "ReasonRequest",
    "Verification",
    "display_title",
    "sanitize_text",
    "verify_text",
]

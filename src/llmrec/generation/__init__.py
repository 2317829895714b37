"""Generation: personalized, grounded text about recommendations.

:class:`ContentGenerator` turns each :class:`ReasonRequest` into a verified text through a
chat backend (:mod:`.llms`), falling back to a template built from the same evidence. The
request's evidence and signal phrases live in :mod:`.evidence`, the prompt and the template
in :mod:`.prompts`, the checks in :mod:`.verify`, the shared text helpers in :mod:`.text`
and the cross-caller batching in :mod:`.scheduler`.
"""

from __future__ import annotations

from llmrec.generation.evidence import ReasonRequest
from llmrec.generation.generator import ContentGenerator
from llmrec.generation.llms.base import ChatBackend, ChatMessage
from llmrec.generation.prompts import answer_text
from llmrec.generation.text import display_title, sanitize_text
from llmrec.generation.verify import Verification, verify_text

__all__ = [
    "ChatBackend",
    "ChatMessage",
    "ContentGenerator",
    "ReasonRequest",
    "Verification",
    "answer_text",
    "display_title",
    "sanitize_text",
    "verify_text",
]

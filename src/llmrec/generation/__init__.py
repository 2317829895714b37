"""Generation: personalized, grounded text about recommendations.

:class:`ContentGenerator` turns each :class:`ReasonRequest` into a verified text of one
content kind (reason, pitch, summary, headline, digest) through a chat backend
(:mod:`.llms`), falling back to a template built from the same fact plan. The plan lives in
:mod:`.plan`, the request's sanitized evidence in :mod:`.evidence`, the prompt in
:mod:`.prompts`, the templates in :mod:`.templates`, the checks in :mod:`.verify` and
:mod:`.claims`, the shared text helpers in :mod:`.text` and the cross-caller batching in
:mod:`.scheduler`.
"""

from __future__ import annotations

from llmrec.generation.claims import CONTENT_KINDS, HEADLINE_CHARS, ITEM_KINDS
from llmrec.generation.evidence import ReasonRequest
from llmrec.generation.generator import DEFAULT_BUDGET_S, KIND_BUDGETS, ContentGenerator
from llmrec.generation.llms.base import ChatBackend, ChatMessage
from llmrec.generation.plan import (
    context_facts,
    item_facts,
    relation_facts,
    request_plan,
    taste_facts,
)
from llmrec.generation.prompts import LENGTHS, TONES, answer_text
from llmrec.generation.text import display_title, sanitize_text
from llmrec.generation.verify import Verification, verify_text

__all__ = [
    "CONTENT_KINDS",
    "DEFAULT_BUDGET_S",
    "HEADLINE_CHARS",
    "ITEM_KINDS",
    "KIND_BUDGETS",
    "LENGTHS",
    "TONES",
    "ChatBackend",
    "ChatMessage",
    "ContentGenerator",
    "ReasonRequest",
    "Verification",
    "answer_text",
    "context_facts",
    "display_title",
    "item_facts",
    "relation_facts",
    "request_plan",
    "sanitize_text",
    "taste_facts",
    "verify_text",
]

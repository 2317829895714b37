"""What a text may be built from: :class:`ReasonRequest` and its sanitized
:class:`Facts`, which carry the request's fact plan.

A signal states its relation to the user (one of :data:`llmrec.types.RELATIONS`), never
its name: ``ReasonRequest.relations`` says it, and for a signal it leaves out, the
built-in signal names stand for their relation (:data:`BUILTIN_RELATIONS`); any other
signal states no relation. A request without a plan gets one built from it alone
(:func:`~llmrec.generation.plan.request_plan`).
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from llmrec._validate import check_choice
from llmrec.errors import InvalidInputError
from llmrec.generation.plan import request_plan
from llmrec.generation.text import (
    STOPWORDS,
    display_title,
    instruction_words,
    normalize,
    sanitize_text,
)
from llmrec.privacy import redact
from llmrec.types import RELATIONS, Fact, Item

__all__ = [
    "BUILTIN_RELATIONS",
    "MAX_EVIDENCE_ITEMS",
    "MAX_ARTICLE_CHARS",
    "MAX_ITEM_TEXT_CHARS",
    "MAX_QUERY_CHARS",
    "MAX_TAGS",
    "MAX_TITLE_CHARS",
    "SIGNAL_THRESHOLD",
    "UNTITLED",
    "Facts",
    "ReasonRequest",
    "facts",
]

#: Caps on the evidence put into a prompt.
MAX_TITLE_CHARS = 100
MAX_ITEM_TEXT_CHARS = 300
MAX_EVIDENCE_ITEMS = 3
MAX_TAGS = 4
MAX_QUERY_CHARS = 100
#: Characters of an item's text a summary is written from (about 400 words).
MAX_ARTICLE_CHARS = 3000
#: A signal must contribute at least this much to be put into words.
SIGNAL_THRESHOLD = 0.05
#: What a title is called when the instruction filter left none of its words.
UNTITLED = "this title"

#: The relation of each built-in signal, used when ``ReasonRequest.relations`` lacks it.
BUILTIN_RELATIONS: Mapping[str, str] = {
    "text_similarity": "similar_text",
    "co_occurrence": "co_consumption",
    "ease": "co_consumption",
    "sequential": "co_consumption",
    "popularity": "popular",
    "query": "query",
    "tag_affinity": "shared_tags",
}


@dataclass(frozen=True)
class ReasonRequest:
    """What one reason may be built from.

    Attributes:
        user_id: The user (never put into the prompt or the cache key).
        item: The recommended item.
        evidence_items: The user's supporting history items, most relevant first (at
            most three are used).
        signals: Ranking signal name -> contribution (``text_similarity``,
            ``co_occurrence``, ``popularity``, ``tag_affinity``, ``query``, ...).
        matched_tags: Tags of the item the user has an affinity for.
        query: The user's query, if any.
        relations: Signal name -> its relation to the user, one of
            :data:`llmrec.types.RELATIONS` (``"co_consumption"``, ``"similar_text"``,
            ...), which chooses the words the signal is put into. A signal missing here
            uses :data:`BUILTIN_RELATIONS`; an unknown one is not put into words.
        plan: The fact plan (:class:`~llmrec.Fact`; the pipeline passes
            ``Explanation.plan``). Empty: built from this request alone
            (:func:`~llmrec.generation.plan.request_plan`).
    """

    user_id: str
    item: Item
    evidence_items: tuple[Item, ...] = ()
    signals: Mapping[str, float] = field(default_factory=dict)
    matched_tags: tuple[str, ...] = ()
    query: str | None = None
    relations: Mapping[str, str] = field(default_factory=dict)
    plan: tuple[Fact, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.item, Item):
            raise InvalidInputError(
                f"ReasonRequest.item must be an Item, got {type(self.item).__name__}"
            )
        evidence = tuple(self.evidence_items)
        for e in evidence:
            if not isinstance(e, Item):
                raise InvalidInputError("ReasonRequest.evidence_items must hold Items")
        if not isinstance(self.relations, Mapping):
            raise InvalidInputError(
                f"ReasonRequest.relations must be a mapping, got {type(self.relations).__name__}"
            )
        for name, relation in self.relations.items():
            check_choice(
                relation, f"ReasonRequest.relations[{name!r}]", RELATIONS, error=InvalidInputError
            )
        plan = tuple(self.plan)
        if not all(isinstance(f, Fact) for f in plan):
            raise InvalidInputError("ReasonRequest.plan must hold llmrec.Fact values")
        object.__setattr__(self, "plan", plan)
        object.__setattr__(self, "evidence_items", evidence)
        object.__setattr__(self, "matched_tags", tuple(str(t) for t in self.matched_tags))
        object.__setattr__(self, "signals", dict(self.signals))
        object.__setattr__(self, "relations", dict(self.relations))


@dataclass(frozen=True)
class Facts:
    """The sanitized evidence of one request, shared by the prompt and the template.

    ``reasons`` are the names of the signals that fired, strongest first, and
    ``relations`` their relations (``None``: the signal states none).
    """

    item: Item
    title: str
    genres: tuple[str, ...]
    year: int | None
    text: str
    evidence: tuple[str, ...]
    evidence_items: tuple[Item, ...]
    reasons: tuple[str, ...]
    relations: tuple[str | None, ...]
    matched: tuple[str, ...]
    query: str | None
    raw_query: str | None = None
    plan: tuple[Fact, ...] = ()
    kind: str = "reason"
    tone: str = "neutral"
    article: str = ""
    listed: tuple[str, ...] = ()  # a digest's other listed items (ids, among evidence_items)


def _clean(text: str, limit: int, redact_contacts: bool) -> str:
    """``text`` sanitized (and its contact details redacted first: a cut or a replaced
    delimiter must not hide an address from the redaction)."""
    if redact_contacts:
        text = redact(unicodedata.normalize("NFKC", str(text)), urls=True)
    return sanitize_text(text, limit)


def _title(title: str, redact_contacts: bool) -> str:
    """A title as shown; one the instruction filter left no word of is :data:`UNTITLED`."""
    shown = display_title(title)
    clean = _clean(shown, MAX_TITLE_CHARS, redact_contacts)
    if instruction_words(shown) and set(normalize(clean).split()) <= STOPWORDS:
        return UNTITLED
    return clean


def _clean_plan(plan: tuple[Fact, ...], redact_contacts: bool) -> tuple[Fact, ...]:
    return tuple(
        dataclasses.replace(
            f,
            text=_clean(f.text, MAX_ITEM_TEXT_CHARS, redact_contacts),
            values=tuple(_clean(v, 60, redact_contacts) for v in f.values),
        )
        for f in plan
    )


def facts(
    request: ReasonRequest,
    *,
    redact_contacts: bool = True,
    kind: str = "reason",
    tone: str = "neutral",
) -> Facts:
    """The sanitized, capped evidence of ``request``.

    Args:
        request: The request.
        redact_contacts: Replace e-mail addresses, phone numbers and web addresses in
            the item's and the evidence's fields, the plan and the query (``[email]``, ...).
        kind: The content kind the evidence is for (``"summary"`` keeps the item's long text).
        tone: The tone asked for.
    """
    item = request.item
    evidence = tuple(e for e in request.evidence_items if e.item_id != item.item_id)
    evidence = tuple(dict((e.item_id, e) for e in evidence).values())[:MAX_EVIDENCE_ITEMS]
    year = item.attributes.get("year")
    year = year if isinstance(year, int) and not isinstance(year, bool) else None
    fired = sorted(
        (
            (float(v), k)
            for k, v in request.signals.items()
            if isinstance(v, (int, float)) and v == v and v > SIGNAL_THRESHOLD
        ),
        reverse=True,
    )
    reasons = tuple(k for _, k in fired)
    query = _clean(request.query, MAX_QUERY_CHARS, redact_contacts) if request.query else None
    tags = tuple(_clean(t, 40, redact_contacts) for t in item.tags)[:MAX_TAGS]
    matched = tuple(_clean(t, 40, redact_contacts) for t in request.matched_tags if t in item.tags)[
        :2
    ]
    return Facts(
        item=item,
        title=_title(item.title, redact_contacts),
        genres=tuple(t for t in tags if t),
        year=year,
        text=_clean(item.text, MAX_ITEM_TEXT_CHARS, redact_contacts),
        evidence=tuple(_title(e.title, redact_contacts) for e in evidence),
        evidence_items=evidence,
        reasons=reasons,
        relations=tuple(request.relations.get(k, BUILTIN_RELATIONS.get(k)) for k in reasons),
        matched=tuple(t for t in matched if t),
        query=query or None,
        raw_query=request.query,
        plan=_clean_plan(
            request.plan
            or request_plan(
                item,
                evidence,
                signals=request.signals,
                relations={k: BUILTIN_RELATIONS.get(k, "") for k in request.signals}
                | dict(request.relations),
                matched_tags=request.matched_tags,
                query=request.query,
            ),
            redact_contacts,
        ),
        kind=kind,
        tone=tone,
        article=_clean(item.text, MAX_ARTICLE_CHARS, redact_contacts) if kind == "summary" else "",
    )

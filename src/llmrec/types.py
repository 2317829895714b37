"""Frozen value types that cross the public API: items, events, candidates, results."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmrec.errors import InvalidEventError, InvalidInputError

__all__ = [
    "EVENT_WEIGHTS",
    "MAX_ID_LENGTH",
    "MAX_TEXT_LENGTH",
    "RELATIONS",
    "Event",
    "Explanation",
    "GeneratedText",
    "Item",
    "Recommendation",
    "check_id",
]

#: How strongly each event kind moves a profile towards (or away from) an item.
#: ``rate`` events take their weight from the rating value (see :meth:`Event.weight`).
EVENT_WEIGHTS: Mapping[str, float] = {
    "view": 0.5,
    "click": 1.0,
    "like": 2.0,
    "rate": 1.0,
    "purchase": 3.0,
    "dislike": -2.0,
    "skip": -0.5,
    "query": 0.0,
}
#: How a ranking signal relates a recommended item to the user; each candidate source
#: declares one, and the text about a recommendation may state only the relations of the
#: signals that ranked it.
RELATIONS = ("similar_text", "co_consumption", "shared_tags", "popular", "query")
MAX_ID_LENGTH = 256
MAX_TEXT_LENGTH = 100_000


def check_id(value: Any, what: str, error: type[InvalidInputError] = InvalidInputError) -> str:
    """Return ``value`` if it is a usable id (non-empty str, no control characters)."""
    if not isinstance(value, str):
        raise error(f"{what} must be a str, got {type(value).__name__} {value!r:.80}")
    if not value or len(value) > MAX_ID_LENGTH or not value.isprintable():
        raise error(f"{what} must be 1..{MAX_ID_LENGTH} printable characters, got {value!r:.80}")
    return value


def _check_text(value: Any, what: str, error: type[InvalidInputError]) -> str:
    if not isinstance(value, str):
        raise error(f"{what} must be a str, got {type(value).__name__}")
    if len(value) > MAX_TEXT_LENGTH:
        raise error(f"{what} is {len(value):,} characters; the limit is {MAX_TEXT_LENGTH:,}")
    return value


@dataclass(frozen=True)
class Item:
    """A catalog entry.

    Args:
        item_id: Stable external id.
        title: Display name; must not be empty.
        text: Free description used for encoding and as generation evidence.
        attributes: JSON-like facts (``genres`` or ``tags``: list of str, ``year``: int, ...).
    """

    item_id: str
    title: str
    text: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_id(self.item_id, "Item.item_id")
        title = _check_text(self.title, f"Item {self.item_id!r} title", InvalidInputError)
        if not title.strip():
            raise InvalidInputError(f"Item {self.item_id!r} has an empty title")
        _check_text(self.text, f"Item {self.item_id!r} text", InvalidInputError)
        if not isinstance(self.attributes, Mapping):
            raise InvalidInputError(
                f"Item {self.item_id!r} attributes must be a mapping, "
                f"got {type(self.attributes).__name__}"
            )
        object.__setattr__(self, "attributes", dict(self.attributes))

    @property
    def tags(self) -> tuple[str, ...]:
        """Genres and tags, the keys of a user's tag affinities."""
        out: list[str] = []
        for key in ("genres", "tags", "categories"):
            value = self.attributes.get(key)
            if isinstance(value, str):
                value = [value]
            if isinstance(value, (list, tuple)):
                out.extend(str(v) for v in value if str(v).strip())
        return tuple(dict.fromkeys(out))

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "title": self.title,
            "text": self.text,
            "attributes": dict(self.attributes),
        }


@dataclass(frozen=True)
class Event:
    """Something a user did.

    Args:
        user_id: The acting user.
        item_id: The item acted on; ``None`` only for ``kind="query"``.
        kind: One of :data:`EVENT_WEIGHTS`.
        value: The rating for ``kind="rate"`` (1..5 scale; 3 is neutral).
        timestamp: Seconds since the epoch; defaults to now.
        text: Free text for ``kind="query"`` (a stated preference or a search).
    """

    user_id: str
    item_id: str | None = None
    kind: str = "click"
    value: float | None = None
    timestamp: float = field(default_factory=time.time)
    text: str | None = None

    def __post_init__(self) -> None:
        check_id(self.user_id, "Event.user_id", InvalidEventError)
        if not isinstance(self.kind, str) or self.kind not in EVENT_WEIGHTS:
            raise InvalidEventError(
                f"Event.kind {self.kind!r} is not one of {sorted(EVENT_WEIGHTS)}"
            )
        if self.kind == "query":
            if self.text is None or not str(self.text).strip():
                raise InvalidEventError("a query Event needs non-empty text")
            _check_text(self.text, "Event.text", InvalidEventError)
            if self.item_id is not None:
                check_id(self.item_id, "Event.item_id", InvalidEventError)
        else:
            check_id(self.item_id, "Event.item_id", InvalidEventError)
            if self.text is not None:
                _check_text(self.text, "Event.text", InvalidEventError)
        if self.value is not None:
            if isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
                raise InvalidEventError(f"Event.value must be a number, got {self.value!r}")
            if not math.isfinite(self.value):
                raise InvalidEventError(f"Event.value must be finite, got {self.value!r}")
        if self.kind == "rate" and self.value is None:
            raise InvalidEventError("a rate Event needs a value")
        if isinstance(self.timestamp, bool) or not isinstance(self.timestamp, (int, float)):
            raise InvalidEventError(f"Event.timestamp must be a number, got {self.timestamp!r}")
        if not math.isfinite(self.timestamp):
            raise InvalidEventError(f"Event.timestamp must be finite, got {self.timestamp!r}")

    @property
    def weight(self) -> float:
        """Signed strength of the event: :data:`EVENT_WEIGHTS` of its kind; a rating ``v``
        on the 1..5 scale gives ``(v - 2) / 2`` (1 -> -0.5, 2 -> 0, 3 -> +0.5, 5 -> +1.5)."""
        if self.kind == "rate":
            return (float(self.value) - 3.0) / 2.0 + 0.5  # type: ignore[arg-type]
        return EVENT_WEIGHTS[self.kind]

    @property
    def is_positive(self) -> bool:
        """Whether the event shows interest in its item (``weight > 0``): the one
        definition used by profiles, popularity, the training rows and the ranker's
        held-out target. Queries, dislikes, skips and ratings of 2 or less are not."""
        return self.item_id is not None and self.weight > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "item_id": self.item_id,
            "kind": self.kind,
            "value": self.value,
            "timestamp": self.timestamp,
            "text": self.text,
        }


@dataclass(frozen=True)
class Explanation:
    """Why an item was recommended.

    Attributes:
        signals: Each ranking signal's contribution to the score (they add up to the
            score's logit, minus the ranker's bias).
        features: The raw feature values the ranker saw.
        evidence_item_ids: The user's history items that support the recommendation,
            strongest first.
        matched_tags: Tags of the item the user has shown affinity for.
    """

    signals: Mapping[str, float]
    features: Mapping[str, float] = field(default_factory=dict)
    evidence_item_ids: tuple[str, ...] = ()
    matched_tags: tuple[str, ...] = ()

    @property
    def top_signal(self) -> str | None:
        positive = {k: v for k, v in self.signals.items() if v > 0}
        return max(positive, key=positive.__getitem__) if positive else None


@dataclass(frozen=True)
class GeneratedText:
    """Personalized text for one recommendation.

    Attributes:
        text: The text shown to the user.
        source: ``"llm"`` when the language model wrote it and it passed verification,
            ``"template"`` when the grounded template was used instead.
        fallback_reason: Why the template was used (``None`` for LLM text).
        cached: Whether it came from the generation cache.
        retry_reason: Why the model's first answer was rejected when it was asked once
            more (``None`` when it was not): the text is then the second answer, or the
            template when that failed too.
    """

    text: str
    source: str
    fallback_reason: str | None = None
    cached: bool = False
    retry_reason: str | None = None


@dataclass(frozen=True)
class Recommendation:
    """One recommended item with its score, its evidence and (optionally) its text."""

    item_id: str
    score: float
    rank: int
    explanation: Explanation
    generated: GeneratedText | None = None

    @property
    def text(self) -> str | None:
        return None if self.generated is None else self.generated.text

    @property
    def text_source(self) -> str | None:
        return None if self.generated is None else self.generated.source

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: id, score, rank, explanation and generated text (or ``None``)."""
        explanation = self.explanation
        return {
            "item_id": self.item_id,
            "score": float(self.score),
            "rank": int(self.rank),
            "explanation": {
                "signals": {k: float(v) for k, v in explanation.signals.items()},
                "features": {k: float(v) for k, v in explanation.features.items()},
                "evidence_item_ids": list(explanation.evidence_item_ids),
                "matched_tags": list(explanation.matched_tags),
            },
            "generated": None
            if self.generated is None
            else {
                "text": self.generated.text,
                "source": self.generated.source,
                "fallback_reason": self.generated.fallback_reason,
                "cached": self.generated.cached,
                "retry_reason": self.generated.retry_reason,
            },
        }


def __getattr__(name: str) -> object:
    if name not in ("Candidate",):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from llmrec._compat import removed_name

    return removed_name(__name__, name)

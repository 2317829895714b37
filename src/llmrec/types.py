"""Frozen value types that cross the public API: items, events, candidates, results."""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from llmrec.errors import InvalidEventError, InvalidInputError

__all__ = [
    "EVENT_WEIGHTS",
    "MAX_ID_LENGTH",
    "MAX_TEXT_LENGTH",
    "LIKED_WEIGHT",
    "RATING_SCALE",
    "RELATIONS",
    "Event",
    "Explanation",
    "FACT_KINDS",
    "Fact",
    "GeneratedText",
    "Item",
    "Recommendation",
    "check_id",
    "parse_timestamp",
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
#: Least event weight that counts as the user *liking* the item (a click, like or purchase,
#: a rating of 4 or 5; not a view or a 3-star rating): what "You liked X" and "liked by 41%
#: of the people who liked X" in generated texts mean (:attr:`Event.is_liked`).
LIKED_WEIGHT = 1.0
#: The rating scale ``kind="rate"`` values are read on (:meth:`Event.weight`); the
#: pipeline warns about a rating outside it.
RATING_SCALE: tuple[float, float] = (1.0, 5.0)


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


def parse_timestamp(value: str) -> float:
    """Seconds since the epoch of an ISO-8601 date or time (``"2024-03-01"``,
    ``"2024-03-01T12:00:00Z"``, ``"2024-03-01 12:00:00+02:00"``); one without an offset is
    read as UTC.

    Raises:
        InvalidEventError: ``value`` is not an ISO-8601 date or time.
    """
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"  # Python 3.10's fromisoformat does not read "Z"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidEventError(
            f"timestamp {value!r:.80} is neither seconds since the epoch nor an ISO-8601 "
            "date or time such as '2024-03-01T12:00:00Z'"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _tags_of(attributes: Mapping[str, Any]) -> tuple[str, ...]:
    """The distinct ``genres``, ``tags`` and ``categories`` values of an item, in order."""
    out: list[str] = []
    for key in ("genres", "tags", "categories"):
        value = attributes.get(key)
        if isinstance(value, str):
            value = [value]
        if isinstance(value, (list, tuple)):
            out.extend(str(v) for v in value if str(v).strip())
    return tuple(dict.fromkeys(out))


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
        # Read on every event of the item (profiles keep per-tag affinities): computed once.
        object.__setattr__(self, "_tags", _tags_of(self.attributes))

    @property
    def tags(self) -> tuple[str, ...]:
        """Genres and tags, the keys of a user's tag affinities."""
        return self._tags  # type: ignore[attr-defined,no-any-return]

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        id_key: str = "item_id",
        title_key: str = "title",
        text_key: str = "text",
    ) -> Item:
        """An item from a record such as a JSON object or a data frame row.

        ``data[id_key]`` is the id (an int is turned into its str), ``data[title_key]``
        the title, ``data.get(text_key)`` the text; an ``"attributes"`` mapping and every
        other key become attributes (``None`` values are left out).

        Raises:
            InvalidInputError: ``data`` is not a mapping, lacks the id or title key, or
                makes an invalid item.
        """
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"Item.from_dict needs a mapping, got {type(data).__name__}")
        missing = [key for key in (id_key, title_key) if key not in data]
        if missing:
            raise InvalidInputError(
                f"Item.from_dict: the record lacks {' and '.join(map(repr, missing))} (its keys: "
                f"{sorted(map(str, data))!r:.200}); name the columns with id_key=/title_key="
            )
        item_id, text = data[id_key], data.get(text_key)
        if isinstance(item_id, int) and not isinstance(item_id, bool):
            item_id = str(item_id)
        keys = (id_key, title_key, text_key, "attributes")
        nested = data.get("attributes") if "attributes" not in keys[:3] else None
        attributes = dict(nested) if isinstance(nested, Mapping) else {}
        for key, value in data.items():
            if key not in keys and value is not None:
                attributes[key] = value
        return cls(item_id, data[title_key], "" if text is None else text, attributes)

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
        value: The rating for ``kind="rate"`` (:data:`RATING_SCALE`, 1..5; 3 is neutral).
        timestamp: Seconds since the epoch, or an ISO-8601 string
            (``"2024-03-01T12:00:00Z"``; one without an offset is read as UTC), stored as
            seconds; defaults to now.
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
            meant = " (a rating is kind='rate')" if self.kind in ("rating", "rated") else ""
            raise InvalidEventError(
                f"Event.kind {self.kind!r:.80} is not one of {sorted(EVENT_WEIGHTS)}{meant}"
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
        if isinstance(self.timestamp, str):
            object.__setattr__(self, "timestamp", parse_timestamp(self.timestamp))
        if isinstance(self.timestamp, bool) or not isinstance(self.timestamp, (int, float)):
            raise InvalidEventError(
                f"Event.timestamp must be seconds since the epoch or an ISO-8601 str, "
                f"got {self.timestamp!r:.80}"
            )
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

    @property
    def is_liked(self) -> bool:
        """Whether the event says the user liked its item (weight >= :data:`LIKED_WEIGHT`:
        a click, like or purchase, a rating of 4 or 5): the one definition behind the
        history and co-consumption facts of generated texts. Views and 3-star ratings are
        positive (:attr:`is_positive`) but not liked."""
        return self.item_id is not None and self.weight >= LIKED_WEIGHT

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "item_id": self.item_id,
            "kind": self.kind,
            "value": self.value,
            "timestamp": self.timestamp,
            "text": self.text,
        }


#: Constructor keywords people reach for, and the field meant (see :func:`_hint_arguments`).
_ITEM_HINTS = {
    "id": "item_id",
    "item": "item_id",
    "name": "title",
    "description": "text",
    "desc": "text",
    "body": "text",
    "attrs": "attributes",
    "metadata": "attributes",
}


class _ArgumentError(InvalidInputError, TypeError):
    """A wrong constructor argument: an llmrec error, and still the ``TypeError`` the
    dataclass itself raises."""


def _hint_arguments(cls: type, hints: Mapping[str, str], extra: str) -> None:
    """Make ``cls(...)`` with a wrong keyword say which field was meant (``Item(id=...)``
    -> use ``item_id=``); the dataclass, its fields and the fast path stay as they are."""
    init = cls.__init__
    names = ", ".join(f.name for f in dataclasses.fields(cls))

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            init(self, *args, **kwargs)
        except TypeError as exc:
            meant = [f"{k}= -> use {hints[k]}=" for k in kwargs if k in hints]
            others = [k for k in kwargs if k not in hints and k not in names.split(", ")]
            hint = "; ".join(meant) if meant else str(exc)
            if others:
                hint += f"; {extra}"
            raise _ArgumentError(f"{cls.__name__}: {hint} (fields: {names})") from None

    cls.__init__ = __init__  # type: ignore[method-assign]


# Items only: an Event is built per interaction (millions in a fit), where the extra call
# would cost more than the hint is worth.
_hint_arguments(Item, _ITEM_HINTS, "put other facts in attributes={...}")


#: The kinds of :class:`Fact` a fact plan holds: the item's own ``attribute`` values and
#: ``description``; the user's ``history`` item joined to the item by ``co_consumption``,
#: a ``shared_attribute`` value or ``similar_text``; the user's matched ``preference``
#: and ``query`` words; the item's ``status`` (new, trending); the ranking ``signal``.
FACT_KINDS = (
    "attribute",
    "description",
    "history",
    "co_consumption",
    "shared_attribute",
    "similar_text",
    "preference",
    "taste",
    "query",
    "status",
    "signal",
)


@dataclass(frozen=True)
class Fact:
    """One checked statement about a recommendation, with where it came from.

    Attributes:
        kind: One of :data:`FACT_KINDS`.
        text: The fact as a readable statement ("Directed by Joel Coen.").
        provenance: Its source: ``"catalog:<attribute>"``, ``"catalog:text"``,
            ``"profiles:co-consumption"``, ``"encoder:similarity"``,
            ``"profile:tag_affinity"``, ``"request:query"``, ``"ranker:<signal>"``, ...
        values: The values it lets a text state (names, figures, tags), as written.
        item_id: The user's history item it joins to the recommended item (relation
            facts), else ``None``.
        attribute: The catalog attribute it reads (``"director"``, ``"brand"``, ...).
        weight: Its strength (a co-consumption share, a signal's contribution); the
            strongest facts are the ones written.
    """

    kind: str
    text: str
    provenance: str
    values: tuple[str, ...] = ()
    item_id: str | None = None
    attribute: str | None = None
    weight: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "text": self.text,
            "provenance": self.provenance,
            "values": list(self.values),
            "item_id": self.item_id,
            "attribute": self.attribute,
            "weight": float(self.weight),
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
        plan: The fact plan (:class:`Fact`): what a text about this item may say,
            readable without any language model.
    """

    signals: Mapping[str, float]
    features: Mapping[str, float] = field(default_factory=dict)
    evidence_item_ids: tuple[str, ...] = ()
    matched_tags: tuple[str, ...] = ()
    plan: tuple[Fact, ...] = ()

    @property
    def top_signal(self) -> str | None:
        positive = {k: v for k, v in self.signals.items() if v > 0}
        return max(positive, key=positive.__getitem__) if positive else None


@dataclass(frozen=True)
class GeneratedText:
    """Personalized text for one recommendation.

    Attributes:
        text: The text shown to the user.
        source: ``"llm"`` when the language model wrote it and it passed verification
            (of a pitch, a later sentence that failed the check is dropped, and one true
            sentence goes on with a sentence of the plan: the item's own description,
            price or maker), ``"template"`` when the
            grounded template was used instead.
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
    """One recommended item with its score, its evidence and (optionally) its text.

    ``fallback`` says why the item comes from a fallback list rather than the user's own
    ranking: ``"unknown_user"`` for a user id with no profile (a cold-start list); ``None``
    for a normal ranking.
    """

    item_id: str
    score: float
    rank: int
    explanation: Explanation
    generated: GeneratedText | None = None
    fallback: str | None = None

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
                "plan": [fact.to_dict() for fact in explanation.plan],
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
            "fallback": self.fallback,
        }


def __getattr__(name: str) -> object:
    if name not in ("Candidate",):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from llmrec._compat import removed_name

    return removed_name(__name__, name)

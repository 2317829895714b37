"""One recommendation request's arguments, validated once.

:meth:`~llmrec.Pipeline.recommend`, ``recommend_stream``, ``arecommend_stream`` and
``recommend_batch`` share these arguments; each builds one :class:`RecommendRequest` and
hands it on, so every argument is checked in one place and in one order.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmrec._validate import check_bool, check_choice, check_float, check_int, check_unicode
from llmrec.catalog import Catalog
from llmrec.errors import ConfigError, InvalidInputError
from llmrec.generation import ITEM_KINDS
from llmrec.privacy import redact
from llmrec.ranking import Ranker
from llmrec.types import Item

__all__ = ["Filters", "RecommendRequest", "check_query"]

logger = logging.getLogger(__name__)

#: ``filters`` is a predicate on items, or a mapping ``attribute -> value | [values] |
#: {"min": x, "max": y}`` (str, int, float or bool values; a range is inclusive and matches
#: numbers only; an item whose attribute is a list passes when any element does).
Filters = Callable[[Item], bool] | Mapping[str, Any]

RowFilter = Callable[[np.ndarray], np.ndarray]


def check_query(query: Any) -> str | None:
    """The request query as used: validated, then redacted (``None`` stays ``None``)."""
    if query is None:
        return None
    if not isinstance(query, str) or not query.strip():
        raise InvalidInputError(f"query must be a non-empty str or None, got {query!r:.80}")
    return redact(check_unicode(query, "query"))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _same(value: Any, wanted: Any) -> bool:
    """``value == wanted`` with bools apart from numbers (``True`` does not match ``1``)."""
    if isinstance(wanted, bool) or isinstance(value, (bool, np.bool_)):
        return isinstance(value, (bool, np.bool_)) and bool(value) is wanted
    if _is_number(wanted):
        return _is_number(value) and float(value) == float(wanted)
    return value == wanted


@dataclass(frozen=True)
class _Range:
    """An inclusive numeric range ``{"min": x, "max": y}`` (either bound may be left out)."""

    low: float | None
    high: float | None

    def holds(self, value: Any) -> bool:
        if not _is_number(value):
            return False
        number = float(value)
        return (self.low is None or number >= self.low) and (
            self.high is None or number <= self.high
        )


def _check_filter(key: str, allowed: Any) -> tuple[Any, ...] | _Range:
    """One filter value in its checked form: a tuple of accepted values, or a range."""
    name = f"filters[{key!r:.60}]"
    if isinstance(allowed, Mapping):
        bounds = set(allowed)
        if not bounds or not bounds <= {"min", "max"}:
            raise InvalidInputError(
                f"{name} must be a value, a list of values or a range with 'min' and/or "
                f"'max', got the keys {sorted(map(str, bounds))!r:.120}"
            )
        low, high = (
            None
            if allowed.get(b) is None
            else check_float(allowed[b], f"{name}[{b!r}]", error=InvalidInputError)
            for b in ("min", "max")
        )
        if low is not None and high is not None and low > high:
            raise InvalidInputError(f"{name} has min {low:g} above max {high:g}; swap them")
        return _Range(low, high)
    values = tuple(allowed) if isinstance(allowed, (list, tuple, set, frozenset)) else (allowed,)
    for value in values:
        if not isinstance(value, (str, int, float, bool, np.integer, np.floating)) or (
            _is_number(value) and not math.isfinite(float(value))
        ):
            raise InvalidInputError(
                f"{name} must be a str, int, float or bool, a list of them or a range "
                f"{{'min': x, 'max': y}}, got {value!r:.80}"
            )
    return values


def _matches(value: Any, allowed: tuple[Any, ...] | _Range) -> bool:
    """Whether an item's attribute value passes one filter (a list passes when any of
    its elements does)."""
    values = value if isinstance(value, (list, tuple, set, frozenset)) else (value,)
    if isinstance(allowed, _Range):
        return any(allowed.holds(v) for v in values)
    return any(_same(v, a) for v in values for a in allowed)


def _predicate(filters: Filters) -> Callable[[Item], bool]:
    """``filters`` as a predicate on items; a malformed filter raises here, before any work."""
    if callable(filters):
        return filters
    if not isinstance(filters, Mapping):
        raise InvalidInputError(
            f"filters must be a callable or a mapping, got {type(filters).__name__}"
        )
    wanted = {}
    for key, allowed in filters.items():
        if not isinstance(key, str):
            raise InvalidInputError(f"filters keys must be attribute names (str), got {key!r:.80}")
        wanted[key] = _check_filter(key, allowed)

    def predicate(item: Item) -> bool:
        return all(_matches(item.attributes.get(key), ok) for key, ok in wanted.items())

    predicate.keys = tuple(wanted)  # type: ignore[attr-defined]
    return predicate


def _warn_unknown_keys(keys: tuple[str, ...], catalog: Catalog) -> None:
    """One warning (logged and :mod:`warnings`) for filter keys no item has: a misspelled
    key would otherwise silently match nothing."""
    missing, known = set(keys), set()
    for item in catalog:
        known.update(item.attributes)
        missing -= known
        if not missing:
            return
    message = (
        f"filters name {', '.join(f'{k!r:.60}' for k in sorted(missing))}, which no item has, so "
        f"nothing matches; the catalog's attributes are {sorted(known) or 'none'}"
    )
    logger.warning("%s", message)
    warnings.warn(message, UserWarning, stacklevel=4)


@dataclass(frozen=True)
class RecommendRequest:
    """The arguments of one recommendation call, in their checked form.

    Build it with :meth:`make`, which validates every argument; the fields are then
    trusted by everything downstream.

    Attributes:
        k: Items wanted (positive).
        query: The redacted query, or ``None``.
        exclude_seen: Leave out items the user already acted on.
        predicate: The filters as a predicate on items, or ``None``.
        generate: Write the personalized text for each item.
        diversity: MMR trade-off for this call, or ``None`` for the ranker's.
        budget_s: Latency budget for generation in seconds, or ``None``.
        content: The kind of text written per item: ``"reason"``, ``"pitch"``,
            ``"summary"`` or ``"headline"`` (:data:`llmrec.generation.ITEM_KINDS`).
    """

    k: int
    query: str | None = None
    exclude_seen: bool = True
    predicate: Callable[[Item], bool] | None = None
    generate: bool = True
    diversity: float | None = None
    budget_s: float | None = None
    content: str = "reason"

    @classmethod
    def make(
        cls,
        k: Any = 10,
        *,
        query: Any = None,
        exclude_seen: Any = True,
        filters: Any = None,
        generate: Any = True,
        diversity: Any = None,
        budget_s: Any = None,
        content: Any = "reason",
    ) -> RecommendRequest:
        """Validate the public arguments of a recommendation call.

        Raises:
            InvalidInputError: ``k`` is not a positive int, an empty or non-str query, a
                malformed filter, a diversity outside [0, 1), an unknown ``content`` kind.
            ConfigError: a flag that is not a bool, a negative or non-number budget.
        """
        query = check_query(query)
        generate = check_bool(generate, "generate")
        k = check_int(k, "k", low=1, error=InvalidInputError)
        exclude_seen = check_bool(exclude_seen, "exclude_seen")
        if diversity is not None:
            diversity = Ranker.check_diversity(diversity)
        predicate = None if filters is None else _predicate(filters)
        if budget_s is not None:
            budget_s = check_float(budget_s, "budget_s", low=0, error=ConfigError)
        content = check_choice(content, "content", ITEM_KINDS, error=InvalidInputError)
        return cls(k, query, exclude_seen, predicate, generate, diversity, budget_s, content)

    def row_filter(self, catalog: Catalog) -> RowFilter | None:
        """The filters as a keep-mask over catalog rows (read at call time), or ``None``."""
        predicate = self.predicate
        if predicate is None:
            return None
        keys = getattr(predicate, "keys", ())
        if keys:
            _warn_unknown_keys(keys, catalog)

        def row_filter(rows: np.ndarray) -> np.ndarray:
            return np.fromiter(
                (bool(predicate(catalog.get(catalog.item_id_at(int(r))))) for r in rows),
                dtype=bool,
                count=len(rows),
            )

        return row_filter

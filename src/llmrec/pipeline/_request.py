"""One recommendation request's arguments, validated once.

:meth:`~llmrec.Pipeline.recommend`, ``recommend_stream``, ``arecommend_stream`` and
``recommend_batch`` share these arguments; each builds one :class:`RecommendRequest` and
hands it on, so every argument is checked in one place and in one order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmrec._validate import check_bool, check_float, check_int, check_unicode
from llmrec.catalog import Catalog
from llmrec.errors import ConfigError, InvalidInputError
from llmrec.privacy import redact
from llmrec.ranking import Ranker
from llmrec.types import Item

__all__ = ["Filters", "RecommendRequest", "check_query"]

#: ``filters`` is a predicate on items, or a mapping ``attribute -> allowed value(s)``.
Filters = Callable[[Item], bool] | Mapping[str, Any]

RowFilter = Callable[[np.ndarray], np.ndarray]


def check_query(query: Any) -> str | None:
    """The request query as used: validated, then redacted (``None`` stays ``None``)."""
    if query is None:
        return None
    if not isinstance(query, str) or not query.strip():
        raise InvalidInputError(f"query must be a non-empty str or None, got {query!r:.80}")
    return redact(check_unicode(query, "query"))


def _attribute_matches(value: Any, allowed: Any) -> bool:
    allowed_set = set(allowed) if isinstance(allowed, (list, tuple, set, frozenset)) else {allowed}
    if isinstance(value, (list, tuple, set)):
        return bool(allowed_set.intersection(value))
    return value in allowed_set


def _predicate(filters: Filters) -> Callable[[Item], bool]:
    """``filters`` as a predicate on items; a malformed filter raises here, before any work."""
    if callable(filters):
        return filters
    if not isinstance(filters, Mapping):
        raise InvalidInputError(
            f"filters must be a callable or a mapping, got {type(filters).__name__}"
        )
    wanted = dict(filters)
    for key, allowed in wanted.items():
        try:
            _attribute_matches(None, allowed)
        except TypeError:
            raise InvalidInputError(
                f"filters[{key!r}] must be a hashable value or a list of them, got {allowed!r:.80}"
            ) from None

    def predicate(item: Item) -> bool:
        try:
            return all(
                _attribute_matches(item.attributes.get(key), allowed)
                for key, allowed in wanted.items()
            )
        except TypeError:  # an unhashable attribute value matches nothing
            return False

    return predicate


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
    """

    k: int
    query: str | None = None
    exclude_seen: bool = True
    predicate: Callable[[Item], bool] | None = None
    generate: bool = True
    diversity: float | None = None
    budget_s: float | None = None

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
    ) -> RecommendRequest:
        """Validate the public arguments of a recommendation call.

        Raises:
            InvalidInputError: ``k`` is not a positive int, an empty or non-str query, a
                malformed filter, a diversity outside [0, 1).
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
        return cls(k, query, exclude_seen, predicate, generate, diversity, budget_s)

    def row_filter(self, catalog: Catalog) -> RowFilter | None:
        """The filters as a keep-mask over catalog rows (read at call time), or ``None``."""
        predicate = self.predicate
        if predicate is None:
            return None

        def row_filter(rows: np.ndarray) -> np.ndarray:
            return np.fromiter(
                (bool(predicate(catalog.get(catalog.item_id_at(int(r))))) for r in rows),
                dtype=bool,
                count=len(rows),
            )

        return row_filter

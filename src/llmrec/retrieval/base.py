"""The retrieval contract: :class:`RetrievalContext` (what sources know about a request)
and :class:`CandidateSource` (what every source implements)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["CandidateSource", "RetrievalContext", "top_rows"]


@dataclass
class RetrievalContext:
    """What the sources know about one request.

    Attributes:
        interest_vector: The user's unit interest vector, or ``None`` (cold user).
        query_vector: The encoded request query, or ``None``.
        history_rows: Rows of the user's recent positive items, newest first.
        history_weights: Weight of each history row (recency-decayed).
        exclude_rows: Rows that must not be proposed.
        n_rows: Rows in the catalog's row space.
        profile_rows: Every positive row of the user's kept history, newest first.
    """

    interest_vector: np.ndarray | None
    query_vector: np.ndarray | None
    history_rows: np.ndarray
    history_weights: np.ndarray
    exclude_rows: np.ndarray
    n_rows: int = 0
    profile_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    _cache: dict[str, np.ndarray] = field(default_factory=dict)


@runtime_checkable
class CandidateSource(Protocol):
    """A source of candidates; ``name`` is also the ranker feature it provides."""

    name: str

    def propose(self, ctx: RetrievalContext, n: int) -> np.ndarray:
        """Return up to ``n`` rows, best first, none of them in ``ctx.exclude_rows``."""
        ...

    def score(self, ctx: RetrievalContext, rows: np.ndarray) -> np.ndarray:
        """Return a float32 score per row (0 where the source has nothing to say)."""
        ...


def top_rows(scores: np.ndarray, n: int, exclude: np.ndarray) -> np.ndarray:
    """Rows of the ``n`` largest finite, positive-mass scores, excluding ``exclude``."""
    scores = scores.astype(np.float32, copy=True)
    if len(exclude):
        scores[exclude[exclude < len(scores)]] = -np.inf
    valid = np.flatnonzero(scores > 0)
    if len(valid) > n:
        part = np.argpartition(-scores[valid], n - 1)[:n]
        valid = valid[part]
    return valid[np.argsort(-scores[valid], kind="stable")]

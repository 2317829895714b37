"""The retrieval contract: :class:`RetrievalContext` (what sources know about a request),
:class:`CandidateSource` (what every source implements) and :class:`TrainableSource` (the
abstract base of the sources a retriever trains on interactions)."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["CandidateSource", "RetrievalContext", "TrainableSource", "top_rows"]


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
        memo: Per-request memo of dense score vectors, keyed by source name, so that
            ``propose`` and ``score`` of one source share one computation.
    """

    interest_vector: np.ndarray | None
    query_vector: np.ndarray | None
    history_rows: np.ndarray
    history_weights: np.ndarray
    exclude_rows: np.ndarray
    n_rows: int = 0
    profile_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    memo: dict[str, np.ndarray] = field(default_factory=dict)


@runtime_checkable
class CandidateSource(Protocol):
    """A source of candidates; ``name`` is also the ranker feature it provides.

    Attributes:
        name: The source and ranker feature name.
        default_weight: The ranker weight of the feature before the ranker is fitted.
        relation: How the source relates an item to the user, one of
            :data:`llmrec.types.RELATIONS` (explanations phrase the signal by it).
    """

    name: str
    default_weight: float
    relation: str

    def propose(self, ctx: RetrievalContext, n: int) -> np.ndarray:
        """Return up to ``n`` rows, best first, none of them in ``ctx.exclude_rows``."""
        ...

    def score(self, ctx: RetrievalContext, rows: np.ndarray) -> np.ndarray:
        """Return a float32 score per row (0 where the source has nothing to say)."""
        ...


class TrainableSource(abc.ABC):
    """A candidate source trained on interactions: the contract of
    ``Retriever.add_model`` (built-in: ``ease`` and ``sequential``).

    Subclasses set ``name``, ``default_weight`` and ``relation`` (as for every
    :class:`CandidateSource`) and implement the abstract methods. The retriever calls
    :meth:`fit` from its own ``fit``, :meth:`update_items` when items are added or changed,
    :meth:`remove_rows` when they are removed, and :meth:`save` / :meth:`load` with the
    retriever's own persistence.

    Attributes:
        refit_on_all: Cheap enough to refit on every event after the ranker's held-out
            pass (``Retriever.fit(models="cheap")``); otherwise that pass's fit is kept.
        seed: Seed of any randomness in :meth:`fit` (``None``: the source has none).
        show_progress: Whether :meth:`fit` may show a progress bar.
    """

    name: str
    default_weight: float
    relation: str
    refit_on_all: bool = False
    seed: int | None = None
    show_progress: bool = False

    @abc.abstractmethod
    def propose(self, ctx: RetrievalContext, n: int) -> np.ndarray:
        """Return up to ``n`` rows, best first, none of them in ``ctx.exclude_rows``."""

    @abc.abstractmethod
    def score(self, ctx: RetrievalContext, rows: np.ndarray) -> np.ndarray:
        """Return a float32 score per row."""

    @abc.abstractmethod
    def fit(
        self,
        user_rows: Sequence[Sequence[int]],
        item_vectors: np.ndarray,
        *,
        valid: Sequence[tuple[Sequence[int], int]] | None = None,
        live: np.ndarray | None = None,
    ) -> Any:
        """Train on each user's chronological positive rows.

        Args:
            user_rows: Per-user rows, oldest first, in ``[0, len(item_vectors))``.
            item_vectors: ``(n_rows, dim)`` item text vectors (zero rows allowed).
            valid: ``(history rows, next row)`` pairs for early stopping, if the source
                has iterations to stop.
            live: Boolean mask of the rows that may be proposed.
        """

    @abc.abstractmethod
    def update_items(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Take in new or changed items without retraining."""

    @abc.abstractmethod
    def remove_rows(self, rows: np.ndarray) -> None:
        """Never propose ``rows`` again (removed items)."""

    @abc.abstractmethod
    def save(self, path: Path) -> dict[str, Any]:
        """Write the state under ``path``; return the JSON config :meth:`load` takes."""

    @classmethod
    @abc.abstractmethod
    def load(cls, path: Path, config: dict[str, Any], *, device: Any = "cpu") -> TrainableSource:
        """Rebuild a source written by :meth:`save`."""


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

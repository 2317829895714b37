"""EASE (Steck, 2019): a closed-form item-item linear autoencoder used as a CF source.

``B = argmin ||X - X B||^2 + l2 ||B||^2  s.t. diag(B) = 0`` has the closed form
``P = (X^T X + l2 I)^-1``, ``B = -P / diag(P)`` (diagonal zeroed). A user's scores are
the sum of the rows of ``B`` for the items in the user's history, so a new event changes
the next result without retraining.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from llmrec._validate import check_float, check_int
from llmrec.errors import ConfigError, InvalidInputError, PersistenceError
from llmrec.retrieval.base import RetrievalContext, TrainableSource, top_rows
from llmrec.storage.io import load_array, save_array

__all__ = ["EASESource"]

logger = logging.getLogger(__name__)


class EASESource(TrainableSource):
    """Closed-form item-item CF; exact, and memory grows as rows^2 (see ``max_items``).

    Implements :class:`~llmrec.retrieval.TrainableSource`.

    Args:
        l2: Ridge penalty (data the size of ML-100K wants a few hundred).
        max_items: Refuse to fit beyond this many rows (memory grows as rows^2).
    """

    name = "ease"
    default_weight = 3.0
    relation = "co_consumption"
    #: Cheap enough to refit on all events after the ranker's held-out pass.
    refit_on_all = True

    def __init__(self, *, l2: float = 300.0, max_items: int = 20_000) -> None:
        self.l2 = check_float(l2, "l2", low=0.0, low_open=True)
        self.max_items = check_int(max_items, "max_items", low=1)
        self.weights: np.ndarray | None = None  # (n_rows, n_rows) float32
        self.removed: set[int] = set()  # rows removed since the fit, until re-added

    @property
    def fitted(self) -> bool:
        return self.weights is not None

    def fit(
        self,
        user_rows: Sequence[Sequence[int]],
        item_vectors: np.ndarray,
        *,
        valid: Any = None,
        live: np.ndarray | None = None,
    ) -> EASESource:
        """Fit on each user's positive rows (order ignored, duplicates collapse).

        Args:
            user_rows: Per-user catalog rows.
            item_vectors: ``(n_rows, dim)`` item vectors (only their count is used).
            valid: Unused (EASE has no iterations to stop early).
            live: Rows that may be recommended; others are zeroed.
        """
        n_rows = len(item_vectors)
        if n_rows > self.max_items:
            raise ConfigError(
                f"EASE needs n_rows^2 memory; {n_rows:,} rows exceed max_items={self.max_items:,}"
            )
        indptr = np.cumsum([0] + [len(r) for r in user_rows])
        indices = np.fromiter(
            (r for rows in user_rows for r in rows), dtype=np.int64, count=int(indptr[-1])
        )
        if len(indices) and (indices.min() < 0 or indices.max() >= n_rows):
            raise InvalidInputError(f"user rows must lie in [0, {n_rows}), got {indices.max()}")
        x = sp.csr_matrix(
            (np.ones(len(indices), dtype=np.float64), indices, indptr),
            shape=(len(user_rows), n_rows),
        )
        x.sum_duplicates()
        x.data[:] = 1.0
        gram = torch.from_numpy((x.T @ x).toarray())
        gram += self.l2 * torch.eye(n_rows, dtype=gram.dtype)
        p = torch.linalg.inv(gram)
        b = -p / torch.diagonal(p)
        b.fill_diagonal_(0.0)
        self.weights = b.to(torch.float32).numpy()
        if live is not None:
            self.weights[:, ~live[:n_rows]] = 0.0
        self.removed = set()
        return self

    def update_items(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Make room for new rows (they score 0 until the next fit); a removed row that
        comes back scores as before its removal."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        self.removed.difference_update(rows.tolist())
        n_rows = int(rows.max()) + 1 if len(rows) else 0
        if self.weights is not None and n_rows > len(self.weights):
            grown = np.zeros((n_rows, n_rows), dtype=np.float32)
            grown[: len(self.weights), : len(self.weights)] = self.weights
            self.weights = grown

    def remove_rows(self, rows: np.ndarray) -> None:
        """Score ``rows`` 0 (so never propose them) until they are added again."""
        self.removed.update(np.asarray(rows, dtype=np.int64).reshape(-1).tolist())

    def user_scores(self, ctx: RetrievalContext) -> np.ndarray:
        """Dense scores over all rows for the context's full history, max-normalized."""
        cached = ctx.memo.get(self.name)
        if cached is not None:
            return cached
        scores = np.zeros(
            max(ctx.n_rows, 0 if self.weights is None else len(self.weights)), dtype=np.float32
        )
        if self.weights is not None:
            rows = ctx.profile_rows[ctx.profile_rows < len(self.weights)]
            if len(rows):
                scores[: len(self.weights)] = self.weights[rows].sum(axis=0)
                top = scores.max()
                if top > 0:
                    scores /= top
                # After the normalization, so the other rows score as they did before
                # the removal.
                removed = np.fromiter(self.removed, dtype=np.int64, count=len(self.removed))
                scores[removed[(removed >= 0) & (removed < len(scores))]] = 0.0
        ctx.memo[self.name] = scores
        return scores

    def propose(self, ctx: RetrievalContext, n: int) -> np.ndarray:
        return top_rows(self.user_scores(ctx), n, ctx.exclude_rows)

    def score(self, ctx: RetrievalContext, rows: np.ndarray) -> np.ndarray:
        return self.user_scores(ctx)[rows]

    def save(self, path: Path) -> dict[str, Any]:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self.weights is not None:
            save_array(path / "weights.npy", self.weights)
        return {
            "l2": self.l2,
            "max_items": self.max_items,
            "fitted": self.fitted,
            "removed": sorted(self.removed),
        }

    @classmethod
    def load(cls, path: Path, config: dict[str, Any], *, device: Any = "cpu") -> EASESource:
        try:
            source = cls(l2=config["l2"], max_items=config["max_items"])
            if config["fitted"]:
                weights = load_array(Path(path) / "weights.npy", dtype=np.float32, ndim=2)
                if weights.shape[0] != weights.shape[1] or not np.isfinite(weights).all():
                    raise PersistenceError(
                        f"EASE weights in {str(path)!r} are not a finite square matrix"
                    )
                source.weights = weights
            source.removed = {int(row) for row in config.get("removed", [])}
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise PersistenceError(f"corrupt EASE config in {str(path)!r}: {exc}") from None
        return source

"""The built-in candidate sources: vector index, popularity and item co-occurrence."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from llmrec._validate import check_choice, check_float, check_int
from llmrec.retrieval.base import RetrievalContext, top_rows
from llmrec.types import RELATIONS

if TYPE_CHECKING:
    from llmrec.retrieval.retriever import Retriever

__all__ = ["CooccurrenceSource", "IndexSource", "PopularitySource"]


class IndexSource:
    """Proposes the items whose vectors are nearest to one of the context's vectors.

    Args:
        retriever: The retriever holding the index and item vectors.
        name: The source (and ranker feature) name.
        vector_field: ``"interest_vector"`` or ``"query_vector"`` of the context.
        default_weight: The ranker weight of the feature before the ranker is fitted.
        relation: How the source relates an item to the user (one of
            :data:`llmrec.types.RELATIONS`).
    """

    def __init__(
        self,
        retriever: Retriever,
        name: str,
        vector_field: str,
        *,
        default_weight: float,
        relation: str,
    ) -> None:
        self._retriever = retriever
        self.name = name
        self.vector_field = check_choice(
            vector_field, "vector_field", ("interest_vector", "query_vector")
        )
        self.default_weight = check_float(default_weight, "default_weight")
        self.relation = check_choice(relation, "relation", RELATIONS)

    def propose(self, ctx: RetrievalContext, n: int) -> np.ndarray:
        vector = getattr(ctx, self.vector_field)
        if vector is None:
            return np.zeros(0, dtype=np.int64)
        index = self._retriever.index
        k = min(n + len(ctx.exclude_rows), len(index))
        if k <= 0:
            return np.zeros(0, dtype=np.int64)
        labels, _ = index.search(vector[None, :], k)
        labels = labels[0]
        labels = labels[labels >= 0]
        if len(ctx.exclude_rows):
            labels = labels[~np.isin(labels, ctx.exclude_rows)]
        return labels[:n]

    def score(self, ctx: RetrievalContext, rows: np.ndarray) -> np.ndarray:
        vector = getattr(ctx, self.vector_field)
        if vector is None:
            return np.zeros(len(rows), dtype=np.float32)
        return self._retriever.item_vectors[rows] @ vector


class PopularitySource:
    """Items most interacted with, log-scaled to [0, 1]; counts update on every event."""

    name = "popularity"
    default_weight = 1.5
    relation = "popular"

    def __init__(self) -> None:
        self.counts = np.zeros(0, dtype=np.float64)
        self._order: np.ndarray | None = None
        self._normalized: np.ndarray | None = None
        self._top = 0.0
        self._since_sort = 0
        self.resort_every = 1000

    def resize(self, n_rows: int) -> None:
        if n_rows > len(self.counts):
            counts = np.zeros(max(n_rows, 2 * len(self.counts)), dtype=np.float64)
            counts[: len(self.counts)] = self.counts
            self.counts = counts
            self._order = self._normalized = None

    def fit(self, interactions: sp.csr_matrix) -> None:
        counts = np.asarray(interactions.sum(axis=0)).ravel()
        self.counts = np.zeros(max(len(self.counts), len(counts)), dtype=np.float64)
        self.counts[: len(counts)] = counts
        self._order = self._normalized = None

    def add(self, row: int, weight: float = 1.0) -> None:
        self.resize(row + 1)
        self.counts[row] += weight
        # Proposals may lag a little (re-sorted every ``resort_every`` events); scores
        # never do.
        self._since_sort += 1
        if self._since_sort >= self.resort_every:
            self._order = None
        if self._normalized is not None and row < len(self._normalized):
            top = float(self._top)
            if self.counts[row] <= top:  # the scale is unchanged: patch one entry
                self._normalized[row] = np.log1p(self.counts[row]) / np.log1p(top)
                return
        self._normalized = None

    def subtract(self, rows: np.ndarray) -> None:
        """Take back one interaction per entry of ``rows`` (a user was forgotten)."""
        rows = rows[(rows >= 0) & (rows < len(self.counts))]
        if len(rows):
            np.subtract.at(self.counts, rows, 1.0)
            np.maximum(self.counts, 0.0, out=self.counts)
            self._order = self._normalized = None

    def remove_rows(self, rows: np.ndarray) -> None:
        rows = rows[rows < len(self.counts)]
        self.counts[rows] = 0.0
        self._order = self._normalized = None

    def normalized(self) -> np.ndarray:
        """``log1p(count) / log1p(max count)`` per row, cached until the counts change."""
        if self._normalized is None:
            top = self.counts.max() if len(self.counts) else 0.0
            self._top = top
            if top <= 0:
                self._normalized = np.zeros(len(self.counts), dtype=np.float32)
            else:
                self._normalized = (np.log1p(self.counts) / np.log1p(top)).astype(np.float32)
        return self._normalized

    def propose(self, ctx: RetrievalContext, n: int) -> np.ndarray:
        if self._order is None:
            self._order = np.argsort(-self.counts, kind="stable")
            self._since_sort = 0
        # Scan the popularity order until n rows survive the exclusions.
        want = n + len(ctx.exclude_rows)
        head = self._order[:want]
        head = head[self.counts[head] > 0]
        if len(ctx.exclude_rows):
            head = head[~np.isin(head, ctx.exclude_rows)]
        return head[:n]

    def score(self, ctx: RetrievalContext, rows: np.ndarray) -> np.ndarray:
        normalized = self.normalized()
        out = np.zeros(len(rows), dtype=np.float32)
        inside = rows < len(normalized)
        out[inside] = normalized[rows[inside]]
        return out


class CooccurrenceSource:
    """Item-to-item co-occurrence (cosine-normalized, top neighbours kept per item).

    A user's score for an item sums its similarity to the user's recent items, each
    weighted by recency, so a new event changes the very next result.

    Args:
        neighbors: Neighbours kept per item.
        alpha: Exponent of the popularity normalization ``C_ij / (n_i^a n_j^(1-a))``;
            0.5 is cosine.
    """

    name = "co_occurrence"
    default_weight = 3.0
    relation = "co_consumption"

    def __init__(self, neighbors: int = 100, alpha: float = 0.5) -> None:
        self.neighbors = check_int(neighbors, "neighbors", low=1)
        self.alpha = check_float(alpha, "alpha", low=0.0, high=1.0)
        self.similarity = sp.csr_matrix((0, 0), dtype=np.float32)

    def fit(self, interactions: sp.csr_matrix) -> None:
        """Build the neighbour matrix from a binary users x rows matrix."""
        x = interactions.astype(np.float32)
        x.data[:] = 1.0
        co = (x.T @ x).tocsr()
        co.setdiag(0.0)
        co.eliminate_zeros()
        counts = np.asarray(x.sum(axis=0)).ravel()
        left = np.power(np.maximum(counts, 1.0), self.alpha)
        right = np.power(np.maximum(counts, 1.0), 1.0 - self.alpha)
        co = sp.diags(1.0 / left) @ co @ sp.diags(1.0 / right)
        self.similarity = self._keep_top(co.tocsr().astype(np.float32))

    def _keep_top(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        indptr, indices, data = [0], [], []
        for row in range(matrix.shape[0]):
            start, end = matrix.indptr[row], matrix.indptr[row + 1]
            cols, vals = matrix.indices[start:end], matrix.data[start:end]
            if len(vals) > self.neighbors:
                keep = np.argpartition(-vals, self.neighbors - 1)[: self.neighbors]
                cols, vals = cols[keep], vals[keep]
            indices.append(cols)
            data.append(vals)
            indptr.append(indptr[-1] + len(vals))
        return sp.csr_matrix(
            (
                np.concatenate(data) if data else np.zeros(0, np.float32),
                np.concatenate(indices) if indices else np.zeros(0, np.int32),
                np.array(indptr),
            ),
            shape=matrix.shape,
        )

    def neighbours(self, row: int) -> dict[int, float]:
        """``{row: similarity}`` of the item at ``row`` (empty when it has none)."""
        sim = self.similarity
        if row >= sim.shape[0] or not sim.nnz:
            return {}
        start, end = sim.indptr[row], sim.indptr[row + 1]
        return dict(zip(sim.indices[start:end].tolist(), sim.data[start:end].tolist()))

    def remove_rows(self, rows: np.ndarray) -> None:
        n = self.similarity.shape[0]
        rows = rows[rows < n]
        if len(rows):
            keep = np.ones(n, dtype=np.float32)
            keep[rows] = 0.0
            self.similarity = (sp.diags(keep) @ self.similarity @ sp.diags(keep)).tocsr()
            self.similarity.eliminate_zeros()

    def user_scores(self, ctx: RetrievalContext) -> np.ndarray:
        """Dense score over all rows for the context's history, max-normalized to 1."""
        cached = ctx.memo.get("co_occurrence")
        if cached is not None:
            return cached
        scores = np.zeros(max(ctx.n_rows, self.similarity.shape[0]), dtype=np.float32)
        size = self.similarity.shape[0]
        rows, weights = ctx.history_rows, ctx.history_weights
        inside = rows < size
        if inside.any() and self.similarity.nnz:
            vec = sp.csr_matrix(
                (
                    weights[inside].astype(np.float32),
                    (np.zeros(int(inside.sum()), dtype=np.int64), rows[inside]),
                ),
                shape=(1, size),
            )
            dense = (vec @ self.similarity).toarray().ravel()
            scores[:size] = dense
        top = scores.max() if len(scores) else 0.0
        if top > 0:
            scores /= top
        ctx.memo["co_occurrence"] = scores
        return scores

    def propose(self, ctx: RetrievalContext, n: int) -> np.ndarray:
        return top_rows(self.user_scores(ctx), n, ctx.exclude_rows)

    def score(self, ctx: RetrievalContext, rows: np.ndarray) -> np.ndarray:
        return self.user_scores(ctx)[rows]

"""Candidate retrieval: several sources propose items, every source scores every candidate.

Sources share the row space of the :class:`~llmrec.catalog.Catalog`. Each implements
:class:`CandidateSource`: ``propose`` returns its own best rows, ``score`` scores any rows,
so the ranker sees a full feature vector for each candidate whichever source found it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp

from llmrec.backends.indexes import check_vectors
from llmrec.device import DeviceLike
from llmrec.errors import ConfigError, InvalidInputError
from llmrec.io import load_array, save_array
from llmrec.protocols import IndexBackend
from llmrec.registry import get_backend

__all__ = [
    "CandidateSource",
    "CooccurrenceSource",
    "PopularitySource",
    "IndexSource",
    "RetrievalContext",
    "Retriever",
    "make_index",
]

logger = logging.getLogger(__name__)

#: Catalog size from which ``index="auto"`` picks HNSW over exact search.
AUTO_HNSW_THRESHOLD = 20_000


def make_index(index: str | IndexBackend, dim: int, *, n_items: int = 0,
               device: DeviceLike = "cpu", **options: Any) -> IndexBackend:
    """Build an index backend by name (``"auto"``, ``"exact"``, ``"hnsw"``) or pass one through."""
    if not isinstance(index, str):
        if not isinstance(index, IndexBackend):
            raise ConfigError(f"index must be a backend name or an IndexBackend, got {index!r}")
        if index.dim != dim:
            raise ConfigError(f"index dim {index.dim} does not match the encoder dim {dim}")
        return index
    if index == "auto":
        index = "hnsw" if n_items >= AUTO_HNSW_THRESHOLD else "exact"
    return get_backend("indexes", index)(dim, device=device, **options)


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


def _top_rows(scores: np.ndarray, n: int, exclude: np.ndarray) -> np.ndarray:
    """Rows of the ``n`` largest finite, positive-mass scores, excluding ``exclude``."""
    scores = scores.astype(np.float32, copy=True)
    if len(exclude):
        scores[exclude[exclude < len(scores)]] = -np.inf
    valid = np.flatnonzero(scores > 0)
    if len(valid) > n:
        part = np.argpartition(-scores[valid], n - 1)[:n]
        valid = valid[part]
    return valid[np.argsort(-scores[valid], kind="stable")]


class IndexSource:
    """Proposes the items whose vectors are nearest to one of the context's vectors.

    Args:
        retriever: The retriever holding the index and item vectors.
        name: The source (and ranker feature) name.
        vector_field: ``"interest_vector"`` or ``"query_vector"`` of the context.
    """

    def __init__(self, retriever: Retriever, name: str, vector_field: str) -> None:
        self._retriever = retriever
        self.name = name
        self.vector_field = vector_field

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

    def __init__(self, neighbors: int = 100, alpha: float = 0.5) -> None:
        if not isinstance(neighbors, int) or neighbors <= 0:
            raise ConfigError(f"neighbors must be a positive int, got {neighbors!r}")
        self.neighbors = neighbors
        self.alpha = float(alpha)
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
            (np.concatenate(data) if data else np.zeros(0, np.float32),
             np.concatenate(indices) if indices else np.zeros(0, np.int32), np.array(indptr)),
            shape=matrix.shape)

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
        cached = ctx._cache.get("co_occurrence")
        if cached is not None:
            return cached
        scores = np.zeros(max(ctx.n_rows, self.similarity.shape[0]), dtype=np.float32)
        size = self.similarity.shape[0]
        rows, weights = ctx.history_rows, ctx.history_weights
        inside = rows < size
        if inside.any() and self.similarity.nnz:
            vec = sp.csr_matrix((weights[inside].astype(np.float32),
                                 (np.zeros(int(inside.sum()), dtype=np.int64), rows[inside])),
                                shape=(1, size))
            dense = (vec @ self.similarity).toarray().ravel()
            scores[:size] = dense
        top = scores.max() if len(scores) else 0.0
        if top > 0:
            scores /= top
        ctx._cache["co_occurrence"] = scores
        return scores

    def propose(self, ctx: RetrievalContext, n: int) -> np.ndarray:
        return _top_rows(self.user_scores(ctx), n, ctx.exclude_rows)

    def score(self, ctx: RetrievalContext, rows: np.ndarray) -> np.ndarray:
        return self.user_scores(ctx)[rows]


class Retriever:
    """Holds item vectors, the vector index and the candidate sources.

    Args:
        dim: Item vector dimension.
        index: ``"auto"`` (exact below 20k items, HNSW above), ``"exact"``, ``"hnsw"``,
            or an :class:`~llmrec.protocols.IndexBackend`.
        n_candidates: Candidates each source proposes per request.
        history_length: Recent items used by history-based sources.
        recency_decay: Weight ratio between consecutive history items (newest = 1).
        neighbors: Co-occurrence neighbours kept per item.
        device: Device for exact search.
    """

    def __init__(
        self,
        dim: int,
        *,
        index: str | IndexBackend = "auto",
        n_items_hint: int = 0,
        n_candidates: int = 200,
        history_length: int = 50,
        recency_decay: float = 0.9,
        neighbors: int = 100,
        device: DeviceLike = "cpu",
        index_options: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(n_candidates, int) or n_candidates <= 0:
            raise ConfigError(f"n_candidates must be a positive int, got {n_candidates!r}")
        if not isinstance(history_length, int) or history_length <= 0:
            raise ConfigError(f"history_length must be a positive int, got {history_length!r}")
        if not 0 < recency_decay <= 1:
            raise ConfigError(f"recency_decay must be in (0, 1], got {recency_decay!r}")
        self.dim = dim
        self.n_candidates = n_candidates
        self.history_length = history_length
        self.recency_decay = float(recency_decay)
        self.index = make_index(index, dim, n_items=n_items_hint, device=device,
                                **(index_options or {}))
        self.item_vectors = np.zeros((0, dim), dtype=np.float32)
        self.live = np.zeros(0, dtype=bool)
        self.popularity = PopularitySource()
        self.cooccurrence = CooccurrenceSource(neighbors=neighbors)
        self.text = IndexSource(self, "text_similarity", "interest_vector")
        self.query = IndexSource(self, "query", "query_vector")
        self.models: dict[str, Any] = {}
        self.lock = threading.RLock()

    @property
    def sources(self) -> list[CandidateSource]:
        """Every candidate source: the built-in ones, then the trainable models."""
        return [self.text, self.cooccurrence, self.popularity, self.query, *self.models.values()]

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(source.name for source in self.sources)

    def add_model(self, model: str | Any, **options: Any) -> Any:
        """Add a trainable candidate source by registered name (``"ease"``,
        ``"sequential"``) or as an instance; it is trained by :meth:`fit`."""
        if isinstance(model, str):
            model = get_backend("models", model)(**options)
        elif options:
            raise ConfigError("options are only accepted with a model name")
        if not isinstance(model, CandidateSource) or not hasattr(model, "fit"):
            raise ConfigError(f"model must be a trainable CandidateSource, got {model!r}")
        builtin = {self.text.name, self.cooccurrence.name, self.popularity.name, self.query.name}
        if model.name in builtin or model.name in self.models:
            raise ConfigError(f"a candidate source named {model.name!r} already exists")
        with self.lock:
            self.models[model.name] = model
        return model

    @property
    def n_rows(self) -> int:
        return len(self.live)

    # ------------------------------------------------------------------ catalog changes
    def _resize(self, n_rows: int) -> None:
        if n_rows <= len(self.live):
            return
        capacity = max(n_rows, int(1.5 * len(self.live)))
        vectors = np.zeros((capacity, self.dim), dtype=np.float32)
        vectors[: len(self.item_vectors)] = self.item_vectors
        live = np.zeros(capacity, dtype=bool)
        live[: len(self.live)] = self.live
        self.item_vectors, self.live = vectors, live
        self.popularity.resize(capacity)

    def check_vectors(self, vectors: Any) -> np.ndarray:
        return check_vectors(vectors, self.dim, "item vectors")

    def upsert(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Store item vectors at ``rows`` and index them."""
        vectors = self.check_vectors(vectors)
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) != len(vectors):
            raise InvalidInputError(f"{len(rows)} rows for {len(vectors)} vectors")
        with self.lock:
            self.index.upsert(rows, vectors)
            self._resize(int(rows.max()) + 1 if len(rows) else 0)
            self.item_vectors[rows] = vectors
            self.live[rows] = True
            for model in self.models.values():
                model.update_items(rows, vectors)

    def remove(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        with self.lock:
            self.index.remove(rows)
            self.live[rows[rows < len(self.live)]] = False
            self.item_vectors[rows[rows < len(self.live)]] = 0.0
            self.popularity.remove_rows(rows)
            self.cooccurrence.remove_rows(rows)
            for model in self.models.values():
                remove = getattr(model, "remove_rows", None)
                if remove is not None:
                    remove(rows)

    def fit(
        self,
        user_rows: Sequence[Sequence[int]],
        *,
        valid: Sequence[tuple[Sequence[int], int]] | None = None,
        models: str = "all",
    ) -> None:
        """Fit the interaction-based sources from each user's positive rows.

        Args:
            user_rows: Per-user chronological positive rows.
            valid: ``(history rows, next row)`` pairs for the models' early stopping.
            models: Which trainable models to fit: ``"all"``, ``"cheap"`` (those with
                ``refit_on_all``) or ``"none"``.
        """
        indptr = np.cumsum([0] + [len(r) for r in user_rows])
        indices = np.fromiter((row for rows in user_rows for row in rows), dtype=np.int64,
                              count=int(indptr[-1]))
        matrix = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr),
                               shape=(len(user_rows), max(self.n_rows, 1)))
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        with self.lock:
            self.popularity.fit(matrix)
            self.popularity.resize(self.n_rows)
            self.cooccurrence.fit(matrix)
            for model in self.models.values():
                if models == "all" or (models == "cheap" and getattr(model, "refit_on_all", False)):
                    model.fit(user_rows, self.item_vectors, valid=valid, live=self.live)

    def record(self, row: int, weight: float) -> None:
        """Count a live interaction towards popularity."""
        if weight > 0:
            with self.lock:
                self.popularity.add(row)

    def unrecord(self, rows: Sequence[int]) -> None:
        """Take back interactions counted by :meth:`record` (one per entry of ``rows``)."""
        with self.lock:
            self.popularity.subtract(np.asarray(list(rows), dtype=np.int64))

    # ------------------------------------------------------------------ retrieval
    def context(self, interest_vector: np.ndarray | None, query_vector: np.ndarray | None,
                history_rows: Sequence[int], exclude_rows: Sequence[int]) -> RetrievalContext:
        """Build a request context.

        Args:
            interest_vector: The user's unit interest vector, or ``None``.
            query_vector: The request's encoded query, or ``None``.
            history_rows: All positive rows of the user's history, newest first.
            exclude_rows: Rows not to propose.
        """
        profile_rows = np.asarray(list(history_rows), dtype=np.int64)
        rows = profile_rows[: self.history_length]
        weights = self.recency_decay ** np.arange(len(rows), dtype=np.float32)
        return RetrievalContext(interest_vector, query_vector, rows, weights,
                                np.unique(np.asarray(list(exclude_rows), dtype=np.int64)),
                                n_rows=self.n_rows, profile_rows=profile_rows)

    def candidates(
        self,
        ctx: RetrievalContext,
        n: int | None = None,
        row_filter: Callable[[np.ndarray], np.ndarray] | None = None,
        min_count: int = 0,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Union of every source's proposals, scored by every source.

        Args:
            ctx: The request context.
            n: Proposals per source (default ``n_candidates``).
            row_filter: Maps a row array to a boolean keep-mask.
            min_count: When fewer candidates survive the filter, every live row that
                passes it is scored instead, so restrictive filters still fill a list.

        Returns:
            ``(rows, features)``: candidate rows and, per source name, their scores.
        """
        n = n or self.n_candidates
        with self.lock:
            proposals = [source.propose(ctx, n) for source in self.sources]
            rows = np.unique(np.concatenate(proposals)) if proposals else np.zeros(0, np.int64)
            rows = rows[self.live[rows]]
            if row_filter is not None:
                rows = rows[row_filter(rows)]
            if len(rows) < min_count:
                pool = np.flatnonzero(self.live)
                pool = pool[~np.isin(pool, ctx.exclude_rows)]
                if row_filter is not None:
                    pool = pool[row_filter(pool)]
                rows = pool
            features = {source.name: np.asarray(source.score(ctx, rows), dtype=np.float32)
                        for source in self.sources}
            return rows, features

    # ------------------------------------------------------------------ persistence
    def save(self, path: Path) -> dict[str, Any]:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with self.lock:
            n = self.n_rows
            save_array(path / "item_vectors.npy", self.item_vectors[:n])
            save_array(path / "live.npy", self.live[:n])
            save_array(path / "popularity.npy", self.popularity.counts[:n])
            sim = self.cooccurrence.similarity
            save_array(path / "cooc_data.npy", sim.data.astype(np.float32))
            save_array(path / "cooc_indices.npy", sim.indices.astype(np.int64))
            save_array(path / "cooc_indptr.npy", sim.indptr.astype(np.int64))
            index_config = self.index.save(path / "index")
            models = {name: model.save(path / "models" / name)
                      for name, model in self.models.items()}
            return {
                "models": models,
                "dim": self.dim, "n_rows": n, "n_candidates": self.n_candidates,
                "history_length": self.history_length, "recency_decay": self.recency_decay,
                "neighbors": self.cooccurrence.neighbors, "alpha": self.cooccurrence.alpha,
                "cooc_shape": list(sim.shape),
                "index": {"backend": self.index.name, "config": index_config},
            }

    @classmethod
    def load(cls, path: Path, config: dict[str, Any], *, device: DeviceLike = "cpu") -> Retriever:
        path = Path(path)
        index_cls = get_backend("indexes", config["index"]["backend"])
        index = index_cls.load(path / "index", config["index"]["config"], device=device)
        retriever = cls(int(config["dim"]), index=index, n_candidates=int(config["n_candidates"]),
                        history_length=int(config["history_length"]),
                        recency_decay=float(config["recency_decay"]),
                        neighbors=int(config["neighbors"]), device=device)
        retriever.cooccurrence.alpha = float(config["alpha"])
        for name, model_config in config.get("models", {}).items():
            model_cls = get_backend("models", name)
            retriever.models[name] = model_cls.load(path / "models" / name, model_config,
                                                    device=device)
        n = int(config["n_rows"])
        vectors = load_array(path / "item_vectors.npy", dtype=np.float32, ndim=2)
        live = load_array(path / "live.npy", dtype=bool, ndim=1)
        counts = load_array(path / "popularity.npy", dtype=np.float64, ndim=1)
        if vectors.shape != (n, retriever.dim) or live.shape != (n,) or counts.shape != (n,):
            from llmrec.errors import PersistenceError

            raise PersistenceError(f"retriever arrays in {str(path)!r} do not match the manifest")
        retriever._resize(n)
        retriever.item_vectors[:n], retriever.live[:n] = vectors, live
        retriever.popularity.counts[:n] = counts
        shape = tuple(config["cooc_shape"])
        retriever.cooccurrence.similarity = sp.csr_matrix(
            (load_array(path / "cooc_data.npy", dtype=np.float32, ndim=1),
             load_array(path / "cooc_indices.npy", dtype=np.int64, ndim=1),
             load_array(path / "cooc_indptr.npy", dtype=np.int64, ndim=1)), shape=shape)
        return retriever

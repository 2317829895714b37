"""Candidate retrieval: several sources propose items, every source scores every candidate.

Sources share the row space of the :class:`~llmrec.catalog.Catalog`. Each implements
:class:`CandidateSource`: ``propose`` returns its own best rows, ``score`` scores any rows,
so the ranker sees a full feature vector for each candidate whichever source found it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from llmrec._validate import check_choice, check_float, check_int, check_options, check_vectors
from llmrec.device import DeviceLike
from llmrec.errors import ConfigError, InvalidInputError, PersistenceError
from llmrec.registry import get_backend
from llmrec.retrieval.base import CandidateSource, RetrievalContext, TrainableSource
from llmrec.retrieval.indexes import IndexBackend
from llmrec.retrieval.sources import CooccurrenceSource, IndexSource, PopularitySource
from llmrec.storage.io import MAX_DIM, load_array, save_array
from llmrec.types import RELATIONS

__all__ = ["Retriever", "make_index"]

logger = logging.getLogger(__name__)

#: Catalog size from which ``index="auto"`` picks HNSW over exact search.
AUTO_HNSW_THRESHOLD = 20_000


def make_index(
    index: str | IndexBackend,
    dim: int,
    *,
    n_items: int = 0,
    device: DeviceLike = "cpu",
    **options: Any,
) -> IndexBackend:
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


class Retriever:
    """Holds item vectors, the vector index and the candidate sources.

    Args:
        dim: Item vector dimension.
        index: ``"auto"`` (exact below 20k items, HNSW above), ``"exact"``, ``"hnsw"``,
            or an :class:`~llmrec.retrieval.IndexBackend`.
        n_candidates: Candidates each source proposes per request.
        history_length: Recent items used by history-based sources.
        recency_decay: Weight ratio between consecutive history items (newest = 1).
        neighbors: Co-occurrence neighbours kept per item.
        device: Device for exact search.
        index_options: Keyword options of the index backend.
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
        self.dim = check_int(dim, "dim", low=1)
        self.n_candidates = check_int(n_candidates, "n_candidates", low=1)
        self.history_length = check_int(history_length, "history_length", low=1)
        self.recency_decay = check_float(
            recency_decay, "recency_decay", low=0.0, high=1.0, low_open=True
        )
        self.index = make_index(
            index,
            self.dim,
            n_items=check_int(n_items_hint, "n_items_hint", low=0),
            device=device,
            **check_options(index_options, "index_options"),
        )
        self.item_vectors = np.zeros((0, dim), dtype=np.float32)
        self.live = np.zeros(0, dtype=bool)
        self.popularity = PopularitySource()
        self.cooccurrence = CooccurrenceSource(neighbors=neighbors)
        self.text = IndexSource(
            self, "text_similarity", "interest_vector", default_weight=2.0, relation="similar_text"
        )
        self.query = IndexSource(
            self, "query", "query_vector", default_weight=4.0, relation="query"
        )
        self.models: dict[str, TrainableSource] = {}
        self.lock = threading.RLock()

    @property
    def sources(self) -> list[CandidateSource]:
        """Every candidate source: the built-in ones, then the trainable models."""
        return [self.text, self.cooccurrence, self.popularity, self.query, *self.models.values()]

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The sources' names, which are the ranker features they provide."""
        return tuple(source.name for source in self.sources)

    @property
    def default_weights(self) -> dict[str, float]:
        """Source name -> the ranker weight of its feature before the ranker is fitted."""
        return {source.name: float(source.default_weight) for source in self.sources}

    @property
    def relations(self) -> dict[str, str]:
        """Source name -> how the source relates an item to the user
        (one of :data:`llmrec.types.RELATIONS`)."""
        return {source.name: source.relation for source in self.sources}

    def add_model(self, model: str | TrainableSource, **options: Any) -> TrainableSource:
        """Add a trainable candidate source by registered name (``"ease"``,
        ``"sequential"``) or as a :class:`~llmrec.retrieval.TrainableSource` instance; it
        is trained by :meth:`fit`.

        Raises:
            ConfigError: ``model`` is not a TrainableSource, declares no valid
                ``default_weight`` or ``relation``, or its name is taken.
        """
        if isinstance(model, str):
            try:
                model = get_backend("models", model)(**options)
            except TypeError as exc:
                raise ConfigError(f"bad options for the {model!r} model: {exc}") from None
        elif options:
            raise ConfigError("options are only accepted with a model name")
        if not isinstance(model, TrainableSource):
            raise ConfigError(f"model must be a TrainableSource, got {model!r:.80}")
        check_float(model.default_weight, f"{model.name} default_weight")
        check_choice(model.relation, f"{model.name} relation", RELATIONS)
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
                model.remove_rows(rows)

    def fit(
        self,
        user_rows: Sequence[Sequence[int]],
        *,
        valid: Sequence[tuple[Sequence[int], int]] | None = None,
        models: str = "all",
        min_users: int = 0,
    ) -> None:
        """Fit the interaction-based sources from each user's positive rows.

        Args:
            user_rows: Per-user chronological positive rows.
            valid: ``(history rows, next row)`` pairs for the models' early stopping.
            models: Which trainable models to fit: ``"all"``, ``"cheap"`` (those with
                ``refit_on_all``) or ``"none"``.
            min_users: Fewest users with two or more rows for the trainable models to
                be fitted; below it they are skipped with a warning (a model fitted on
                a handful of users is noise, not signal) and keep their current state.
        """
        models = check_choice(models, "models", ("all", "cheap", "none"))
        min_users = check_int(min_users, "min_users", low=0)
        enough = sum(len(rows) >= 2 for rows in user_rows) >= min_users
        indptr = np.cumsum([0] + [len(r) for r in user_rows])
        indices = np.fromiter(
            (row for rows in user_rows for row in rows), dtype=np.int64, count=int(indptr[-1])
        )
        matrix = sp.csr_matrix(
            (np.ones(len(indices), dtype=np.float32), indices, indptr),
            shape=(len(user_rows), max(self.n_rows, 1)),
        )
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        with self.lock:
            self.popularity.fit(matrix)
            self.popularity.resize(self.n_rows)
            self.cooccurrence.fit(matrix)
            for model in self.models.values():
                if not (models == "all" or (models == "cheap" and model.refit_on_all)):
                    continue
                if not enough:
                    logger.warning(
                        "skipping the %r model: fewer than %d users with two or more "
                        "interactions to train it on",
                        model.name,
                        min_users,
                    )
                    continue
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
    def context(
        self,
        interest_vector: np.ndarray | None,
        query_vector: np.ndarray | None,
        history_rows: Sequence[int],
        exclude_rows: Sequence[int],
    ) -> RetrievalContext:
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
        return RetrievalContext(
            interest_vector,
            query_vector,
            rows,
            weights,
            np.unique(np.asarray(list(exclude_rows), dtype=np.int64)),
            n_rows=self.n_rows,
            profile_rows=profile_rows,
        )

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
            features = {
                source.name: np.asarray(source.score(ctx, rows), dtype=np.float32)
                for source in self.sources
            }
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
            models = {
                name: model.save(path / "models" / name) for name, model in self.models.items()
            }
            return {
                "models": models,
                "dim": self.dim,
                "n_rows": n,
                "n_candidates": self.n_candidates,
                "history_length": self.history_length,
                "recency_decay": self.recency_decay,
                "neighbors": self.cooccurrence.neighbors,
                "alpha": self.cooccurrence.alpha,
                "cooc_shape": list(sim.shape),
                "index": {"backend": self.index.name, "config": index_config},
            }

    @classmethod
    def load(cls, path: Path, config: dict[str, Any], *, device: DeviceLike = "cpu") -> Retriever:
        path = Path(path)
        where = "components.retriever"
        dim = check_int(config["dim"], f"{where}.dim", low=1, high=MAX_DIM, error=PersistenceError)
        n = check_int(config["n_rows"], f"{where}.n_rows", low=0, error=PersistenceError)
        alpha = check_float(
            config["alpha"], f"{where}.alpha", low=0.0, high=1.0, error=PersistenceError
        )
        neighbors = check_int(
            config["neighbors"], f"{where}.neighbors", low=1, error=PersistenceError
        )
        vectors = load_array(path / "item_vectors.npy", dtype=np.float32, ndim=2)
        live = load_array(path / "live.npy", dtype=bool, ndim=1)
        counts = load_array(path / "popularity.npy", dtype=np.float64, ndim=1)
        if vectors.shape != (n, dim) or live.shape != (n,) or counts.shape != (n,):
            raise PersistenceError(f"retriever arrays in {str(path)!r} do not match the manifest")
        if not (np.isfinite(vectors).all() and np.isfinite(counts).all()):
            raise PersistenceError(f"retriever arrays in {str(path)!r} hold NaN or inf")
        similarity = _load_cooccurrence(path, config.get("cooc_shape"), n)
        index_cls = get_backend("indexes", config["index"]["backend"])
        index = index_cls.load(path / "index", config["index"]["config"], device=device)
        retriever = cls(
            dim,
            index=index,
            n_candidates=config["n_candidates"],
            history_length=config["history_length"],
            recency_decay=config["recency_decay"],
            neighbors=neighbors,
            device=device,
        )
        retriever.cooccurrence.alpha = alpha
        for name, model_config in config.get("models", {}).items():
            model = get_backend("models", name).load(
                path / "models" / name, model_config, device=device
            )
            if not isinstance(model, TrainableSource):
                raise PersistenceError(
                    f"model {name!r} in {str(path)!r} loaded as "
                    f"{type(model).__name__}, not a TrainableSource"
                )
            retriever.models[name] = model
        retriever._resize(n)
        retriever.item_vectors[:n], retriever.live[:n] = vectors, live
        retriever.popularity.counts[:n] = counts
        retriever.cooccurrence.similarity = similarity
        return retriever


def _load_cooccurrence(path: Path, shape: Any, n_rows: int) -> sp.csr_matrix:
    """The saved co-occurrence matrix, checked in full: a bad index in a CSR matrix is not
    caught by scipy and reads out of bounds when the matrix is used."""
    name = "components.retriever.cooc_shape"
    if not isinstance(shape, list) or len(shape) != 2:
        raise PersistenceError(f"{name} must be a [rows, columns] list, got {shape!r:.80}")
    size = check_int(shape[0], f"{name}[0]", low=0, high=n_rows, error=PersistenceError)
    if check_int(shape[1], f"{name}[1]", low=0, error=PersistenceError) != size:
        raise PersistenceError(f"{name} must be square, got {shape!r:.80}")
    data = load_array(path / "cooc_data.npy", dtype=np.float32, ndim=1)
    indices = load_array(path / "cooc_indices.npy", dtype=np.int64, ndim=1)
    indptr = load_array(path / "cooc_indptr.npy", dtype=np.int64, ndim=1)
    ok = (
        len(indptr) == size + 1
        and len(data) == len(indices)
        and indptr[0] == 0
        and indptr[-1] == len(indices)
        and bool((np.diff(indptr) >= 0).all())
        and bool(((indices >= 0) & (indices < size)).all())
        and bool(np.isfinite(data).all())
    )
    if not ok:
        raise PersistenceError(
            f"co-occurrence arrays in {str(path)!r} do not form a {size}x{size} matrix"
        )
    return sp.csr_matrix((data, indices, indptr), shape=(size, size))

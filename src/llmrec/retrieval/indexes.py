"""Vector index backends over unit vectors with int labels: ``exact`` and ``hnsw``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from llmrec._validate import check_int, check_vectors
from llmrec.errors import BackendUnavailableError, InvalidInputError, PersistenceError
from llmrec.storage.io import MAX_DIM, load_array, save_array

__all__ = ["ExactIndex", "HNSWIndex", "IndexBackend"]

logger = logging.getLogger(__name__)


@runtime_checkable
class IndexBackend(Protocol):
    """Nearest-neighbour search over unit vectors, keyed by non-negative int labels.

    Scores are inner products (cosine for unit vectors), higher is better.
    """

    name: str
    dim: int

    def __len__(self) -> int: ...

    def upsert(self, labels: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, labels: np.ndarray) -> None: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(labels, scores)`` of shape ``(n, k)``; missing slots hold label -1."""
        ...

    def save(self, path: Path) -> dict[str, Any]: ...


def _check_labels(labels: Any, n: int | None = None) -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
        raise InvalidInputError(
            f"labels must be a 1-d integer array, got {array.dtype} {array.shape}"
        )
    array = array.astype(np.int64)
    if array.size and array.min() < 0:
        raise InvalidInputError(f"labels must be >= 0, got {int(array.min())}")
    if n is not None and len(array) != n:
        raise InvalidInputError(f"{len(array)} labels for {n} vectors")
    if len(np.unique(array)) != len(array):
        raise InvalidInputError("labels contain duplicates")
    return array


def _search_setup(queries: Any, k: Any, dim: int) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """Check a search's arguments; return them with empty ``(labels, scores)`` results."""
    queries = check_vectors(queries, dim, "queries")
    k = check_int(k, "k", low=1, error=InvalidInputError)
    labels = np.full((len(queries), k), -1, dtype=np.int64)
    scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    return queries, k, labels, scores


class ExactIndex:
    """Brute-force inner-product search (a matrix product per query batch).

    Exact by construction; the cost grows linearly with the item count, which is why
    ``index="auto"`` switches to HNSW on large catalogs (far later on a GPU).
    """

    name = "exact"

    def __init__(self, dim: int, *, device: Any = "cpu") -> None:
        from llmrec.device import resolve_device

        self.dim = check_int(dim, "dim", low=1)
        self.device = resolve_device(device)
        self._vectors = np.zeros((0, dim), dtype=np.float32)
        self._live = np.zeros(0, dtype=bool)
        self._tensor: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self._live.sum())

    def config(self) -> dict[str, Any]:
        return {"dim": self.dim}

    def _grow(self, size: int) -> None:
        if size <= len(self._live):
            return
        capacity = max(size, 2 * len(self._live), 1024)
        vectors = np.zeros((capacity, self.dim), dtype=np.float32)
        vectors[: len(self._vectors)] = self._vectors
        live = np.zeros(capacity, dtype=bool)
        live[: len(self._live)] = self._live
        self._vectors, self._live = vectors, live

    def upsert(self, labels: Any, vectors: Any) -> None:
        vectors = check_vectors(vectors, self.dim)
        labels = _check_labels(labels, len(vectors))
        if not len(labels):
            return
        self._grow(int(labels.max()) + 1)
        self._vectors[labels] = vectors
        self._live[labels] = True
        self._tensor = None

    def remove(self, labels: Any) -> None:
        labels = _check_labels(labels)
        labels = labels[labels < len(self._live)]
        self._live[labels] = False
        self._tensor = None

    def search(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries, k, labels, scores = _search_setup(queries, k, self.dim)
        live = int(self._live.sum())
        if live == 0:
            return labels, scores
        if self._tensor is None:
            self._tensor = torch.from_numpy(self._vectors).to(self.device)
            self._dead = torch.from_numpy(~self._live).to(self.device)
        with torch.inference_mode():
            q = torch.from_numpy(queries).to(self.device)
            sims = q @ self._tensor.T
            sims.masked_fill_(self._dead, float("-inf"))
            top = torch.topk(sims, min(k, live), dim=1)
        found = top.indices.shape[1]
        labels[:, :found] = top.indices.cpu().numpy()
        scores[:, :found] = top.values.float().cpu().numpy()
        return labels, scores

    def save(self, path: Path) -> dict[str, Any]:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        labels = np.flatnonzero(self._live)
        save_array(path / "labels.npy", labels.astype(np.int64))
        save_array(path / "vectors.npy", self._vectors[labels])
        return {"dim": self.dim, "count": int(len(labels))}

    @classmethod
    def load(cls, path: Path, config: dict[str, Any], *, device: Any = "cpu") -> ExactIndex:
        index = cls(_saved_dim(config), device=device)
        labels = load_array(Path(path) / "labels.npy", dtype=np.int64, ndim=1)
        if len(labels) and (labels[0] < 0 or not (np.diff(labels) > 0).all()):
            raise PersistenceError(f"index labels in {str(path)!r} are not increasing rows")
        vectors = load_array(Path(path) / "vectors.npy", dtype=np.float32, ndim=2)
        if len(labels) != config.get("count") or vectors.shape != (len(labels), index.dim):
            raise PersistenceError(f"index files in {str(path)!r} do not match the manifest")
        index.upsert(labels, vectors)
        return index


class HNSWIndex:
    """Approximate inner-product search with hnswlib; grows automatically.

    Args:
        dim: Vector dimension.
        m: Graph degree (``M``).
        ef_construction: Build-time candidate list size.
        ef_search: Query-time candidate list size (raised to ``k`` when smaller).
    """

    name = "hnsw"

    def __init__(
        self,
        dim: int,
        *,
        m: int = 16,
        ef_construction: int = 200,
        ef_search: int = 128,
        initial_capacity: int = 1024,
        device: Any = "cpu",
    ) -> None:
        try:
            import hnswlib
        except ImportError as exc:
            raise BackendUnavailableError(
                "the 'hnsw' index needs hnswlib; install it with: pip install hnswlib"
            ) from exc
        dim = check_int(dim, "dim", low=1)
        m = check_int(m, "m", low=1)
        ef_construction = check_int(ef_construction, "ef_construction", low=1)
        ef_search = check_int(ef_search, "ef_search", low=1)
        initial_capacity = check_int(initial_capacity, "initial_capacity", low=1)
        self.dim, self.m = dim, m
        self.ef_construction, self.ef_search = ef_construction, ef_search
        self._index = hnswlib.Index(space="ip", dim=dim)
        self._index.init_index(
            max_elements=initial_capacity,
            ef_construction=ef_construction,
            M=m,
            allow_replace_deleted=False,
        )
        self._live: set[int] = set()
        self._known: set[int] = set()  # labels ever added (deleted ones stay in the graph)

    def __len__(self) -> int:
        return len(self._live)

    def config(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "m": self.m,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
        }

    def upsert(self, labels: Any, vectors: Any) -> None:
        vectors = check_vectors(vectors, self.dim)
        labels = _check_labels(labels, len(vectors))
        if not len(labels):
            return
        needed = len(self._known | set(labels.tolist()))
        capacity = self._index.get_max_elements()
        if needed > capacity:
            new_capacity = max(needed, 2 * capacity)
            logger.debug("resizing HNSW index %d -> %d", capacity, new_capacity)
            self._index.resize_index(new_capacity)
        for label in labels.tolist():
            if label in self._known and label not in self._live:
                self._index.unmark_deleted(label)
        self._index.add_items(vectors, labels)
        self._known.update(labels.tolist())
        self._live.update(labels.tolist())

    def remove(self, labels: Any) -> None:
        labels = _check_labels(labels)
        for label in labels.tolist():
            if label in self._live:
                self._index.mark_deleted(label)
                self._live.discard(label)

    def search(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries, k, labels, scores = _search_setup(queries, k, self.dim)
        found = min(k, len(self._live))
        if found == 0:
            return labels, scores
        self._index.set_ef(max(self.ef_search, found))
        got_labels, distances = self._index.knn_query(queries, k=found, num_threads=1)
        labels[:, :found] = got_labels.astype(np.int64)
        scores[:, :found] = 1.0 - distances  # hnswlib's "ip" distance is 1 - <a, b>
        return labels, scores

    def save(self, path: Path) -> dict[str, Any]:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self._index.save_index(str(path / "hnsw.bin"))
        save_array(path / "live.npy", np.array(sorted(self._live), dtype=np.int64))
        save_array(path / "known.npy", np.array(sorted(self._known), dtype=np.int64))
        return {**self.config(), "count": len(self._live)}

    @classmethod
    def load(cls, path: Path, config: dict[str, Any], *, device: Any = "cpu") -> HNSWIndex:
        index = cls(
            _saved_dim(config),
            m=config["m"],
            ef_construction=config["ef_construction"],
            ef_search=config["ef_search"],
        )
        live = load_array(Path(path) / "live.npy", dtype=np.int64, ndim=1)
        known = load_array(Path(path) / "known.npy", dtype=np.int64, ndim=1)
        file = Path(path) / "hnsw.bin"
        if not file.exists() or len(live) != config.get("count"):
            raise PersistenceError(f"HNSW index files in {str(path)!r} are missing or inconsistent")
        import hnswlib

        # A fresh, uninitialized index: loading into an initialized one frees its graph
        # first, and a failed load would leave a dangling pointer behind.
        index._index = hnswlib.Index(space="ip", dim=index.dim)
        try:
            index._index.load_index(str(file), max_elements=max(len(known), 1))
        except RuntimeError as exc:
            raise PersistenceError(f"corrupt HNSW index {str(file)!r}: {exc}") from None
        if index._index.get_current_count() != len(known):
            raise PersistenceError(f"HNSW index {str(file)!r} does not match its label files")
        index._live, index._known = set(live.tolist()), set(known.tolist())
        return index


def _saved_dim(config: dict[str, Any]) -> int:
    return check_int(
        config["dim"], "components.retriever.index.dim", low=1, high=MAX_DIM, error=PersistenceError
    )

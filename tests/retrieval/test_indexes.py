"""Vector index backends: exact and HNSW."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmrec.errors import InvalidInputError, PersistenceError
from llmrec.retrieval.indexes import ExactIndex, HNSWIndex

INDEXES = [ExactIndex, HNSWIndex]


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def brute_force(vectors: np.ndarray, labels: np.ndarray, queries: np.ndarray, k: int):
    sims = queries @ vectors.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return labels[order], np.take_along_axis(sims, order, axis=1)


def snapshot(index, queries: np.ndarray, k: int):
    labels, scores = index.search(queries, k)
    return len(index), labels.copy(), scores.copy()


def assert_same(a, b) -> None:
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(a[2], b[2], rtol=0, atol=1e-6)


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return unit(rng, 200, 16), unit(rng, 5, 16)


# --------------------------------------------------------------------------- exactness


@given(
    n=st.integers(0, 60),
    dim=st.integers(1, 12),
    k=st.integers(1, 80),
    n_queries=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
    label_offset=st.integers(0, 3000),
)
def test_exact_index_equals_brute_force(n, dim, k, n_queries, seed, label_offset) -> None:
    rng = np.random.default_rng(seed)
    vectors = unit(rng, n, dim) if n else np.zeros((0, dim), np.float32)
    labels = rng.permutation(n).astype(np.int64) * 3 + label_offset  # sparse, shuffled
    queries = unit(rng, n_queries, dim)
    index = ExactIndex(dim)
    index.upsert(labels, vectors)
    assert len(index) == n
    got_labels, got_scores = index.search(queries, k)
    assert got_labels.shape == got_scores.shape == (n_queries, k)
    found = min(k, n)
    if found:
        want_labels, want_scores = brute_force(vectors, labels, queries, found)
        np.testing.assert_allclose(got_scores[:, :found], want_scores, atol=1e-5)
        # Every returned label really has the returned score.
        by_label = dict(zip(labels.tolist(), range(n)))
        for q in range(n_queries):
            rows = [by_label[int(lab)] for lab in got_labels[q, :found]]
            np.testing.assert_allclose(vectors[rows] @ queries[q], got_scores[q, :found], atol=1e-5)
            assert len(set(got_labels[q, :found].tolist())) == found
    # k beyond the count pads with -1 and -inf.
    assert (got_labels[:, found:] == -1).all()
    assert np.isneginf(got_scores[:, found:]).all()


@given(
    n=st.integers(1, 40),
    removed=st.integers(0, 40),
    k=st.integers(1, 50),
    seed=st.integers(0, 2**32 - 1),
)
def test_exact_index_with_removals_equals_brute_force_over_live(n, removed, k, seed) -> None:
    rng = np.random.default_rng(seed)
    vectors = unit(rng, n, 8)
    labels = np.arange(n, dtype=np.int64)
    gone = rng.choice(n, min(removed, n), replace=False)
    index = ExactIndex(8)
    index.upsert(labels, vectors)
    index.remove(gone)
    keep = np.setdiff1d(labels, gone)
    assert len(index) == len(keep)
    query = unit(rng, 1, 8)
    got_labels, got_scores = index.search(query, k)
    found = min(k, len(keep))
    assert not np.isin(got_labels, gone).any()
    if found:
        _, want_scores = brute_force(vectors[keep], keep, query, found)
        np.testing.assert_allclose(got_scores[:, :found], want_scores, atol=1e-5)
    assert (got_labels[:, found:] == -1).all()


@pytest.mark.parametrize("cls", INDEXES)
def test_small_index_finds_each_vector_first(cls, data) -> None:
    vectors, _ = data
    index = cls(16)
    index.upsert(np.arange(len(vectors)), vectors)
    labels, scores = index.search(vectors, 1)
    np.testing.assert_array_equal(labels[:, 0], np.arange(len(vectors)))
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)


@pytest.mark.parametrize("cls", INDEXES)
def test_empty_index_returns_padding(cls) -> None:
    index = cls(4)
    labels, scores = index.search(np.ones(4, np.float32) / 2, 3)
    assert labels.shape == (1, 3) and (labels == -1).all() and np.isneginf(scores).all()


@pytest.mark.parametrize("cls", INDEXES)
def test_k_beyond_count_pads(cls, data) -> None:
    vectors, queries = data
    index = cls(16)
    index.upsert(np.arange(5), vectors[:5])
    labels, scores = index.search(queries, 8)
    assert (np.sort(labels[:, :5], axis=1) == np.arange(5)).all()
    assert (labels[:, 5:] == -1).all() and np.isneginf(scores[:, 5:]).all()
    assert (np.diff(scores[:, :5], axis=1) <= 1e-6).all()


def test_hnsw_recall_at_10_on_clustered_data() -> None:
    rng = np.random.default_rng(0)
    dim, n = 64, 5000
    centres = rng.normal(size=(50, dim))
    vectors = centres[rng.integers(0, 50, n)] + 0.3 * rng.normal(size=(n, dim))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    queries = centres[rng.integers(0, 50, 200)] + 0.3 * rng.normal(size=(200, dim))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    hnsw, exact = HNSWIndex(dim), ExactIndex(dim)
    hnsw.upsert(np.arange(n), vectors)
    exact.upsert(np.arange(n), vectors)
    approx, _ = hnsw.search(queries, 10)
    truth, _ = exact.search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(approx.tolist(), truth.tolist())])
    assert recall >= 0.95


def test_hnsw_scores_are_inner_products(data) -> None:
    vectors, queries = data
    index = HNSWIndex(16)
    index.upsert(np.arange(len(vectors)), vectors)
    labels, scores = index.search(queries, 5)
    for q in range(len(queries)):
        np.testing.assert_allclose(vectors[labels[q]] @ queries[q], scores[q], atol=1e-5)


# --------------------------------------------------------------------------- updates


@pytest.mark.parametrize("cls", INDEXES)
def test_upsert_replaces_a_vector(cls, data) -> None:
    vectors, _ = data
    index = cls(16)
    index.upsert(np.arange(50), vectors[:50])
    target = vectors[150]  # not in the index yet
    before, _ = index.search(target, 1)
    assert before[0, 0] != 3
    index.upsert(np.array([3]), target[None, :])
    assert len(index) == 50
    labels, scores = index.search(target, 1)
    assert labels[0, 0] == 3 and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    # The old vector of label 3 is no longer there.
    labels, scores = index.search(vectors[3], 50)
    row = list(labels[0]).index(3)
    assert scores[0, row] == pytest.approx(float(vectors[3] @ target), abs=1e-5)


@pytest.mark.parametrize("cls", INDEXES)
def test_remove_hides_and_re_adding_restores(cls, data) -> None:
    vectors, _ = data
    index = cls(16)
    index.upsert(np.arange(50), vectors[:50])
    index.remove(np.array([7, 8]))
    assert len(index) == 48
    labels, _ = index.search(vectors[:50], 50)
    assert not np.isin(labels, [7, 8]).any()
    assert (labels[:, 48:] == -1).all()
    index.remove(np.array([7, 999]))  # already gone / never added: no-op
    assert len(index) == 48
    index.upsert(np.array([7]), vectors[7][None, :])
    assert len(index) == 49
    labels, _ = index.search(vectors[7], 1)
    assert labels[0, 0] == 7
    labels, _ = index.search(vectors[8], 50)
    assert 8 not in labels


@pytest.mark.parametrize("cls", INDEXES)
def test_re_adding_with_a_new_vector(cls, data) -> None:
    vectors, _ = data
    index = cls(16)
    index.upsert(np.arange(50), vectors[:50])
    index.remove(np.array([7]))
    index.upsert(np.array([7]), vectors[120][None, :])
    labels, scores = index.search(vectors[120], 1)
    assert labels[0, 0] == 7 and scores[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_hnsw_grows_past_initial_capacity(data) -> None:
    vectors, _ = data
    index = HNSWIndex(16, initial_capacity=8)
    for start in range(0, 200, 30):
        index.upsert(np.arange(start, min(start + 30, 200)), vectors[start : start + 30])
    assert len(index) == 200
    labels, _ = index.search(vectors, 1)
    np.testing.assert_array_equal(labels[:, 0], np.arange(200))


def test_hnsw_search_with_all_but_few_removed(data) -> None:
    vectors, queries = data
    index = HNSWIndex(16)
    index.upsert(np.arange(200), vectors)
    index.remove(np.arange(3, 200))
    labels, _ = index.search(queries, 10)
    assert (np.sort(labels[:, :3], axis=1) == [0, 1, 2]).all()
    assert (labels[:, 3:] == -1).all()


@pytest.mark.parametrize("cls", INDEXES)
@pytest.mark.parametrize(
    "bad",
    [
        "nan_vector",
        "inf_vector",
        "wrong_dim",
        "3d",
        "negative_label",
        "duplicate_labels",
        "count_mismatch",
        "float_labels",
    ],
)
def test_bad_upserts_raise_and_change_nothing(cls, bad, data) -> None:
    vectors, queries = data
    index = cls(16)
    index.upsert(np.arange(20), vectors[:20])
    before = snapshot(index, queries, 25)
    new = vectors[20:23].copy()
    labels = np.array([20, 21, 22])
    if bad == "nan_vector":
        new[1, 4] = np.nan
    elif bad == "inf_vector":
        new[2, 0] = np.inf
    elif bad == "wrong_dim":
        new = vectors[20:23, :8]
    elif bad == "3d":
        new = new[None]
    elif bad == "negative_label":
        labels = np.array([20, -1, 22])
    elif bad == "duplicate_labels":
        labels = np.array([20, 20, 22])
    elif bad == "count_mismatch":
        labels = np.array([20, 21])
    elif bad == "float_labels":
        labels = np.array([20.0, 21.0, 22.0])
    with pytest.raises(InvalidInputError):
        index.upsert(labels, new)
    assert_same(snapshot(index, queries, 25), before)


@pytest.mark.parametrize("cls", INDEXES)
@pytest.mark.parametrize("k", [0, -3, 2.5, True, "3", None])
def test_bad_k_raises_and_changes_nothing(cls, k, data) -> None:
    vectors, queries = data
    index = cls(16)
    index.upsert(np.arange(20), vectors[:20])
    before = snapshot(index, queries, 5)
    with pytest.raises(InvalidInputError, match="k"):
        index.search(queries, k)
    assert_same(snapshot(index, queries, 5), before)


@pytest.mark.parametrize("cls", INDEXES)
def test_bad_queries_raise(cls, data) -> None:
    vectors, queries = data
    index = cls(16)
    index.upsert(np.arange(20), vectors[:20])
    bad = queries.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        index.search(bad, 3)
    with pytest.raises(InvalidInputError):
        index.search(queries[:, :4], 3)


@pytest.mark.parametrize("cls", INDEXES)
def test_bad_removals_raise_and_change_nothing(cls, data) -> None:
    vectors, queries = data
    index = cls(16)
    index.upsert(np.arange(20), vectors[:20])
    before = snapshot(index, queries, 25)
    for labels in (np.array([1, -2]), np.array([[1, 2]]), np.array([1.5])):
        with pytest.raises(InvalidInputError):
            index.remove(labels)
    assert_same(snapshot(index, queries, 25), before)


# --------------------------------------------------------------------------- persistence


@pytest.mark.parametrize("cls", INDEXES)
def test_save_load_gives_identical_results(cls, data, tmp_path: Path) -> None:
    vectors, queries = data
    index = cls(16)
    index.upsert(np.arange(200) * 2, vectors)  # sparse labels
    index.remove(np.array([0, 10, 398]))
    config = index.save(tmp_path / "ix")
    json.dumps(config)  # the config is JSON
    loaded = cls.load(tmp_path / "ix", config)
    assert_same(snapshot(loaded, queries, 250), snapshot(index, queries, 250))
    assert_same(snapshot(loaded, vectors, 5), snapshot(index, vectors, 5))
    # The loaded index keeps working: re-adding a removed label and adding a new one.
    loaded.upsert(np.array([10, 1000]), vectors[[5, 6]])
    assert len(loaded) == len(index) + 2
    labels, _ = loaded.search(vectors[5], 1)
    assert labels[0, 0] == 10
    labels, _ = loaded.search(vectors[6], 2)
    assert set(labels[0].tolist()) == {1000, 12}  # label 12 also holds vectors[6]


@pytest.mark.parametrize("cls", INDEXES)
def test_load_from_missing_directory(cls, tmp_path: Path) -> None:
    with pytest.raises(PersistenceError):
        cls.load(
            tmp_path / "nowhere",
            {"dim": 16, "m": 16, "ef_construction": 200, "ef_search": 128, "count": 0},
        )


@pytest.mark.parametrize("cls", INDEXES)
@pytest.mark.parametrize("damage", ["truncate_npy", "garbage_npy", "delete_npy", "count"])
def test_load_of_damaged_files_raises_persistence_error(cls, damage, data, tmp_path: Path) -> None:
    vectors, _ = data
    index = cls(16)
    index.upsert(np.arange(200), vectors)
    config = index.save(tmp_path / "ix")
    target = tmp_path / "ix" / ("vectors.npy" if cls is ExactIndex else "live.npy")
    if damage == "truncate_npy":
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    elif damage == "garbage_npy":
        target.write_bytes(b"not an array at all")
    elif damage == "delete_npy":
        target.unlink()
    elif damage == "count":
        config = {**config, "count": config["count"] + 1}
    with pytest.raises(PersistenceError):
        cls.load(tmp_path / "ix", config)


def test_exact_load_rejects_wrong_dtype(data, tmp_path: Path) -> None:
    vectors, _ = data
    index = ExactIndex(16)
    index.upsert(np.arange(200), vectors)
    config = index.save(tmp_path / "ix")
    np.save(tmp_path / "ix" / "vectors.npy", vectors.astype(np.float64))
    with pytest.raises(PersistenceError, match="float64"):
        ExactIndex.load(tmp_path / "ix", config)


def test_hnsw_load_without_graph_file(data, tmp_path: Path) -> None:
    vectors, _ = data
    index = HNSWIndex(16)
    index.upsert(np.arange(200), vectors)
    config = index.save(tmp_path / "ix")
    (tmp_path / "ix" / "hnsw.bin").unlink()
    with pytest.raises(PersistenceError):
        HNSWIndex.load(tmp_path / "ix", config)


def test_hnsw_load_of_corrupt_graph_raises_and_does_not_crash(tmp_path: Path) -> None:
    # Run in a child process: the failure mode is a segfault, which would kill pytest.
    script = textwrap.dedent(f"""
        import gc, numpy as np
        from pathlib import Path
        from llmrec.retrieval.indexes import HNSWIndex
        from llmrec.errors import PersistenceError
        rng = np.random.default_rng(0)
        v = rng.normal(size=(200, 16)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        for damage in ("truncate", "garbage"):
            index = HNSWIndex(16)
            index.upsert(np.arange(200), v)
            path = Path({str(tmp_path)!r}) / damage
            config = index.save(path)
            graph = path / "hnsw.bin"
            data = graph.read_bytes()
            graph.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"junk" * 20)
            try:
                HNSWIndex.load(path, config)
            except PersistenceError as exc:
                print("PersistenceError:", damage, exc)
            gc.collect()
        print("survived")
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-500:]
    assert "PersistenceError: truncate" in result.stdout
    assert "PersistenceError: garbage" in result.stdout
    assert "survived" in result.stdout

"""Candidate retrieval: sources, exclusions, filters and catalog changes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmrec import Retriever
from llmrec.errors import ConfigError, InvalidInputError
from llmrec.retrieval import PopularitySource

DIM = 16
N = 120  # 6 clusters of 20 rows: rows r with r % 6 == c belong to cluster c


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(6, DIM))
    v = centres[np.arange(N) % 6] + 0.3 * rng.normal(size=(N, DIM))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def make_retriever(vectors: np.ndarray, **kwargs) -> Retriever:
    kwargs.setdefault("index", "exact")
    kwargs.setdefault("n_candidates", 20)
    retriever = Retriever(DIM, **kwargs)
    retriever.upsert(np.arange(len(vectors)), vectors)
    return retriever


@pytest.fixture(scope="module")
def fitted(vectors) -> Retriever:
    """Rows 0, 1, 2 are always consumed together; cluster-mates co-occur weakly."""
    retriever = make_retriever(vectors)
    rng = np.random.default_rng(0)
    users = [[0, 1, 2] for _ in range(30)]
    for _ in range(100):
        cluster = int(rng.integers(0, 6))
        users.append(sorted(set(rng.choice(np.arange(cluster, N, 6), 5).tolist())))
    retriever.fit(users)
    return retriever


def check_candidates(retriever, ctx, rows, features, *, row_filter=None) -> None:
    assert len(set(rows.tolist())) == len(rows)
    assert retriever.live[rows].all()
    assert not np.isin(rows, ctx.exclude_rows).any()
    if row_filter is not None:
        assert row_filter(rows).all()
    assert set(features) == set(retriever.feature_names)
    for values in features.values():
        assert len(values) == len(rows) and np.isfinite(values).all()


# --------------------------------------------------------------------------- basics


def test_feature_names_are_the_source_names(vectors) -> None:
    retriever = make_retriever(vectors)
    assert retriever.feature_names == ("text_similarity", "co_occurrence", "popularity", "query")


def test_interest_vector_proposes_its_cluster(vectors) -> None:
    retriever = make_retriever(vectors)
    ctx = retriever.context(vectors[3], None, [], [])
    rows, features = retriever.candidates(ctx)
    assert len(rows) == 20
    assert (rows % 6 == 3).mean() >= 0.9
    np.testing.assert_allclose(features["text_similarity"], vectors[rows] @ vectors[3], atol=1e-6)
    assert (features["query"] == 0).all()


def test_query_vector_feeds_the_query_source(vectors) -> None:
    retriever = make_retriever(vectors)
    ctx = retriever.context(None, vectors[4], [], [])
    rows, features = retriever.candidates(ctx)
    assert 4 in rows
    np.testing.assert_allclose(features["query"], vectors[rows] @ vectors[4], atol=1e-6)
    assert (features["text_similarity"] == 0).all()


def test_cold_context_without_signals_gives_nothing_unless_min_count(vectors) -> None:
    retriever = make_retriever(vectors)
    ctx = retriever.context(None, None, [], [])
    rows, _ = retriever.candidates(ctx)
    assert len(rows) == 0
    rows, _ = retriever.candidates(ctx, min_count=5)
    assert len(rows) == N  # every live row is scored instead


@given(
    exclude=st.lists(st.integers(0, N - 1), max_size=80),
    modulus=st.integers(1, 7),
    min_count=st.integers(0, 150),
    anchor=st.integers(0, N - 1),
    history=st.lists(st.integers(0, N - 1), max_size=6),
)
def test_candidates_respect_exclusions_filters_and_min_count(
    fitted, vectors, exclude, modulus, min_count, anchor, history
) -> None:
    def row_filter(rows: np.ndarray) -> np.ndarray:
        return rows % modulus == 0

    ctx = fitted.context(vectors[anchor], None, history, exclude)
    rows, features = fitted.candidates(ctx, row_filter=row_filter, min_count=min_count)
    check_candidates(fitted, ctx, rows, features, row_filter=row_filter)
    eligible = [r for r in range(N) if r % modulus == 0 and r not in set(exclude)]
    assert len(rows) >= min(min_count, len(eligible))


def test_restrictive_filter_fills_to_min_count(vectors) -> None:
    retriever = make_retriever(vectors, n_candidates=10)
    ctx = retriever.context(vectors[0], None, [], [5])
    wanted = {5, 11, 17, 23, 29}  # cluster 5, far from the interest in cluster 0

    def row_filter(rows):
        return np.isin(rows, list(wanted))

    rows, _ = retriever.candidates(ctx, row_filter=row_filter)
    assert len(rows) < 4
    rows, _ = retriever.candidates(ctx, row_filter=row_filter, min_count=4)
    assert set(rows.tolist()) == wanted - {5}


# --------------------------------------------------------------------------- co-occurrence


def test_co_consumed_items_rank_first(fitted, vectors) -> None:
    ctx = fitted.context(None, None, [0], [0])
    proposals = fitted.cooccurrence.propose(ctx, 5)
    assert set(proposals[:2].tolist()) == {1, 2}
    rows, features = fitted.candidates(ctx)
    scores = dict(zip(rows.tolist(), features["co_occurrence"].tolist()))
    assert scores[1] == pytest.approx(1.0) or scores[2] == pytest.approx(1.0)
    others = [s for r, s in scores.items() if r not in (1, 2)]
    assert max(others) < min(scores[1], scores[2])


def test_co_occurrence_scores_follow_recency(fitted) -> None:
    # Newest history first: the newest row's neighbours outweigh the older row's.
    a = fitted.cooccurrence.user_scores(fitted.context(None, None, [0, 9], []))
    b = fitted.cooccurrence.user_scores(fitted.context(None, None, [9, 0], []))
    sim = fitted.cooccurrence.similarity.toarray()
    j = int(np.argmax(np.where(sim[0] == 0, sim[9], 0)))  # a neighbour of 9 only
    assert sim[9, j] > 0 and sim[0, j] == 0
    assert a[j] / a[1] < b[j] / b[1]
    np.testing.assert_allclose(
        a[j] / a[1], 0.9 * sim[9, j] / (sim[0, 1] + 0.9 * sim[9, 1]), rtol=1e-4
    )
    assert a.max() == pytest.approx(1.0) and b.max() == pytest.approx(1.0)


def test_co_occurrence_without_history_is_zero(fitted) -> None:
    scores = fitted.cooccurrence.user_scores(fitted.context(None, None, [], []))
    assert not scores.any()


# --------------------------------------------------------------------------- popularity


def test_popularity_counts_update_on_record(fitted) -> None:
    retriever = make_retriever(fitted.item_vectors[:N].copy())
    retriever.fit([[0, 1], [0], [0, 2]])
    ctx = retriever.context(None, None, [], [])
    before = retriever.popularity.score(ctx, np.array([0, 7]))
    assert before[0] == pytest.approx(1.0) and before[1] == 0.0
    for _ in range(5):
        retriever.record(7, 1.0)
    retriever.record(8, -2.0)  # negative events do not count
    retriever.record(8, 0.0)
    assert retriever.popularity.counts[7] == 5 and retriever.popularity.counts[8] == 0
    after = retriever.popularity.score(ctx, np.array([0, 7, 8]))
    assert after[1] == pytest.approx(1.0)
    assert 0 < after[0] < 1 and after[2] == 0.0


def test_popularity_scores_never_lag_patched_entries() -> None:
    source = PopularitySource()
    source.resize(10)
    for row, times in [(0, 10), (1, 3)]:
        for _ in range(times):
            source.add(row)
    ctx = None
    source.normalized()
    source.add(2)  # patches one entry in place
    expected = np.log1p(source.counts[:3]) / np.log1p(source.counts.max())
    np.testing.assert_allclose(source.score(ctx, np.arange(3)), expected, rtol=1e-6)
    for _ in range(20):
        source.add(1)  # the maximum changes: every entry rescales
    expected = np.log1p(source.counts[:3]) / np.log1p(source.counts.max())
    np.testing.assert_allclose(source.score(ctx, np.arange(3)), expected, rtol=1e-6)


def test_popular_rows_are_proposed_first(fitted) -> None:
    ctx = fitted.context(None, None, [], [0])
    proposals = fitted.popularity.propose(ctx, 3)
    assert 0 not in proposals
    assert set(proposals[:2].tolist()) == {1, 2}


# --------------------------------------------------------------------------- removal


def test_removed_rows_never_come_back(vectors) -> None:
    retriever = make_retriever(vectors)
    retriever.fit([[0, 1, 2]] * 10 + [[3, 4]] * 5)
    for _ in range(30):
        retriever.record(1, 1.0)
    retriever.remove(np.array([1, 3]))
    contexts = [
        retriever.context(vectors[1], vectors[3], [0, 2, 4], []),  # every source points at them
        retriever.context(None, None, [0], []),
    ]
    for ctx in contexts:
        for min_count in (0, 200):
            rows, features = retriever.candidates(ctx, min_count=min_count)
            assert not np.isin(rows, [1, 3]).any()
            check_candidates(retriever, ctx, rows, features)
        assert not np.isin(retriever.cooccurrence.propose(ctx, 50), [1, 3]).any()
        assert not np.isin(retriever.popularity.propose(ctx, 50), [1, 3]).any()
        assert not np.isin(retriever.text.propose(ctx, 200), [1, 3]).any()
    assert len(retriever.index) == N - 2
    assert retriever.popularity.counts[1] == 0
    assert retriever.cooccurrence.similarity[0, 1] == 0


def test_re_added_row_is_found_again(vectors) -> None:
    retriever = make_retriever(vectors)
    retriever.remove(np.array([10]))
    retriever.upsert(np.array([10]), vectors[10][None, :])
    rows, _ = retriever.candidates(retriever.context(vectors[10], None, [], []))
    assert 10 in rows


def test_upsert_grows_the_row_space(vectors) -> None:
    retriever = make_retriever(vectors[:10])
    retriever.upsert(np.array([500]), vectors[50][None, :])
    assert retriever.n_rows >= 501 and retriever.live[500] and retriever.live.sum() == 11
    rows, _ = retriever.candidates(retriever.context(vectors[50], None, [], []), n=1)
    assert rows.tolist() == [500]


@pytest.mark.parametrize("bad", ["nan", "dim", "count"])
def test_bad_upsert_changes_nothing(vectors, bad) -> None:
    retriever = make_retriever(vectors[:10])
    v = vectors[10:12].copy()
    rows = np.array([10, 11])
    if bad == "nan":
        v[0, 0] = np.nan
    elif bad == "dim":
        v = v[:, :4]
    else:
        rows = np.array([10])
    with pytest.raises(InvalidInputError):
        retriever.upsert(rows, v)
    assert retriever.live.sum() == 10 and len(retriever.index) == 10


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_candidates": 0},
        {"history_length": 0},
        {"recency_decay": 0.0},
        {"recency_decay": 1.5},
        {"neighbors": 0},
        {"index": "nope"},
    ],
)
def test_bad_config(kwargs) -> None:
    with pytest.raises(ConfigError):
        Retriever(DIM, **kwargs)


def test_index_dim_mismatch_is_a_config_error() -> None:
    from llmrec.retrieval.indexes import ExactIndex

    with pytest.raises(ConfigError, match="dim"):
        Retriever(DIM, index=ExactIndex(DIM + 1))

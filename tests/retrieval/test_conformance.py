"""Every built-in index and candidate source through llmrec.testing; the source
declarations (default weights, relations); the TrainableSource contract of the retriever;
EASE against its closed form."""

from __future__ import annotations

import numpy as np
import pytest

from llmrec import Retriever
from llmrec.errors import ConfigError
from llmrec.ranking import Ranker
from llmrec.retrieval import CooccurrenceSource, RetrievalContext, TrainableSource
from llmrec.retrieval.indexes import ExactIndex, HNSWIndex
from llmrec.retrieval.models import EASESource, SequentialSource
from llmrec.testing import check_candidate_source, check_index_backend
from llmrec.types import RELATIONS

DIM = 8
N = 40

#: The ranker's starting weights before sources declared their own (the old table).
OLD_DEFAULT_WEIGHTS = {
    "text_similarity": 2.0,
    "co_occurrence": 3.0,
    "popularity": 1.5,
    "query": 4.0,
    "tag_affinity": 0.5,
    "ease": 3.0,
    "sequential": 1.0,
}
TINY_SEQUENTIAL = dict(
    hidden=16, layers=1, heads=2, max_len=8, epochs=5, device="cpu", show_progress=False
)


def _vectors(n: int = N, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _retriever(index: str = "exact") -> Retriever:
    retriever = Retriever(DIM, index=index, n_candidates=10)
    retriever.upsert(np.arange(N), _vectors())
    rng = np.random.default_rng(1)
    retriever.fit([sorted(set(rng.integers(0, N, 6).tolist())) for _ in range(60)])
    return retriever


# --------------------------------------------------------------------------- indexes


@pytest.mark.parametrize("cls", [ExactIndex, HNSWIndex])
def test_built_in_indexes_conform(cls) -> None:
    check_index_backend(lambda dim: cls(dim))


# --------------------------------------------------------------------------- sources


@pytest.mark.parametrize("index", ["exact", "hnsw"])
@pytest.mark.parametrize("source", ["text", "query", "cooccurrence", "popularity"])
def test_built_in_sources_conform(source: str, index: str) -> None:
    retriever = _retriever(index)
    vector = retriever.item_vectors[3]

    def ctx_factory(history, exclude):
        return retriever.context(
            vector if source == "text" else None,
            vector if source == "query" else None,
            history,
            exclude,
        )

    check_candidate_source(getattr(retriever, source), ctx_factory)


def test_ease_conforms() -> None:
    check_candidate_source(EASESource(l2=10.0))


def test_sequential_conforms() -> None:
    check_candidate_source(SequentialSource(seed=0, **TINY_SEQUENTIAL))


def test_trainable_sources_are_checked_in_the_retrievers_row_space() -> None:
    # A context factory from a retriever over the kit's tiny row space works too.
    from llmrec.testing import TINY_ROWS

    retriever = Retriever(DIM, index="exact")
    retriever.upsert(np.arange(TINY_ROWS + 1), _vectors(TINY_ROWS + 1))
    check_candidate_source(
        EASESource(l2=10.0),
        lambda history, exclude: retriever.context(None, None, history, exclude),
    )


# --------------------------------------------------------------------------- declarations


def test_default_weights_and_relations_of_every_source() -> None:
    retriever = _retriever()
    retriever.add_model("ease")
    retriever.add_model("sequential", **TINY_SEQUENTIAL)
    assert retriever.default_weights == {
        "text_similarity": 2.0,
        "co_occurrence": 3.0,
        "popularity": 1.5,
        "query": 4.0,
        "ease": 3.0,
        "sequential": 1.0,
    }
    assert retriever.relations == {
        "text_similarity": "similar_text",
        "co_occurrence": "co_consumption",
        "popularity": "popular",
        "query": "query",
        "ease": "co_consumption",
        "sequential": "co_consumption",
    }
    assert set(retriever.relations.values()) <= set(RELATIONS)
    assert tuple(retriever.default_weights) == retriever.feature_names


def test_ranker_from_declared_weights_starts_where_the_old_table_did() -> None:
    retriever = _retriever()
    retriever.add_model("ease")
    retriever.add_model("sequential", **TINY_SEQUENTIAL)
    names = retriever.feature_names + ("tag_affinity",)
    ranker = Ranker(names, weights={**retriever.default_weights, "tag_affinity": 0.5})
    assert ranker.weights == {name: OLD_DEFAULT_WEIGHTS[name] for name in names}


# --------------------------------------------------------------------------- TrainableSource


class RecordingSource(EASESource):
    """An EASE source that records the retriever's calls."""

    name = "recording"

    def __init__(self) -> None:
        super().__init__(l2=10.0)
        self.removed_calls: list[list[int]] = []
        self.fits = 0

    def remove_rows(self, rows: np.ndarray) -> None:
        self.removed_calls.append(np.asarray(rows).tolist())
        super().remove_rows(rows)

    def fit(self, user_rows, item_vectors, *, valid=None, live=None):
        self.fits += 1
        return super().fit(user_rows, item_vectors, valid=valid, live=live)


class DuckSource:
    """Has every method of a trainable source but is not a TrainableSource."""

    name = "duck"
    default_weight = 1.0
    relation = "co_consumption"

    def propose(self, ctx, n):
        return np.zeros(0, dtype=np.int64)

    def score(self, ctx, rows):
        return np.zeros(len(rows), dtype=np.float32)

    def fit(self, user_rows, item_vectors, *, valid=None, live=None):
        return self


def test_add_model_accepts_only_trainable_sources() -> None:
    retriever = _retriever()
    with pytest.raises(ConfigError, match="TrainableSource"):
        retriever.add_model(DuckSource())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="relation"):
        retriever.add_model(type("Odd", (RecordingSource,), {"name": "odd", "relation": "x"})())
    with pytest.raises(ConfigError, match="default_weight"):
        retriever.add_model(
            type("Odd", (RecordingSource,), {"name": "odd", "default_weight": True})()
        )
    with pytest.raises(ConfigError, match="bad options"):
        retriever.add_model("ease", nonsense=1)
    assert isinstance(retriever.add_model("ease"), TrainableSource)
    assert list(retriever.models) == ["ease"]


def test_retriever_calls_the_trainable_contract() -> None:
    retriever = _retriever()
    model = retriever.add_model(RecordingSource())
    retriever.fit([[0, 1, 2]] * 5, models="cheap")  # EASE refits on all events
    assert model.fits == 1 and model.refit_on_all
    retriever.fit([[0, 1, 2]] * 5, models="none")
    assert model.fits == 1
    retriever.remove(np.array([1]))
    assert model.removed_calls == [[1]]
    with pytest.raises(ConfigError, match="models must be one of"):
        retriever.fit([[0, 1]], models="some")


# --------------------------------------------------------------------------- EASE


def test_ease_item_matrix_is_the_closed_form() -> None:
    rng = np.random.default_rng(3)
    x = (rng.random((40, 15)) < 0.3).astype(np.float64)
    x[0, :] = 1.0  # every item is consumed at least once
    l2 = 7.0
    p = np.linalg.inv(x.T @ x + l2 * np.eye(15))
    expected = np.eye(15) - p @ np.diag(1.0 / np.diag(p))
    user_rows = [np.flatnonzero(row).tolist() for row in x]
    source = EASESource(l2=l2).fit(user_rows, np.zeros((15, 4), np.float32))
    np.testing.assert_allclose(source.weights, expected, atol=1e-5)
    assert np.all(np.diag(source.weights) == 0.0)


def test_ease_removed_rows_score_zero_until_added_again(tmp_path) -> None:
    rng = np.random.default_rng(4)
    user_rows = [sorted(set(rng.integers(0, 12, 5).tolist())) for _ in range(50)]
    source = EASESource(l2=5.0).fit(user_rows, np.zeros((12, 4), np.float32))

    def make() -> RetrievalContext:
        history = np.array([0, 1])
        return RetrievalContext(
            None,
            None,
            history,
            np.ones(2, np.float32),
            np.zeros(0, np.int64),
            n_rows=12,
            profile_rows=history,
        )

    ctx = make()
    before = source.score(ctx, np.arange(12))
    best = int(source.propose(ctx, 1)[0])
    source.remove_rows(np.array([best]))
    ctx = make()
    after = source.score(ctx, np.arange(12))
    assert after[best] == 0.0 and best not in source.propose(ctx, 12)
    others = np.arange(12) != best
    np.testing.assert_array_equal(after[others], before[others])  # the others are unchanged
    loaded = EASESource.load(tmp_path, source.save(tmp_path), device="cpu")
    assert loaded.removed == {best}
    source.update_items(np.array([best]), np.zeros((1, 4), np.float32))
    np.testing.assert_array_equal(source.score(make(), np.arange(12)), before)


# --------------------------------------------------------------------------- validators


@pytest.mark.parametrize(
    "kwargs",
    [
        {"recency_decay": "x"},
        {"recency_decay": None},
        {"n_candidates": True},
        {"history_length": True},
        {"neighbors": True},
        {"dim": True},
        {"n_items_hint": -1},
        {"index_options": [1]},
    ],
)
def test_bad_retriever_arguments_are_config_errors(kwargs) -> None:
    # ``recency_decay="x"`` used to escape as a bare TypeError; True passed as 1.
    args = {"dim": DIM, **kwargs}
    with pytest.raises(ConfigError, match=f"{next(iter(kwargs))} must be"):
        Retriever(args.pop("dim"), **args)


@pytest.mark.parametrize(
    "make",
    [
        lambda: CooccurrenceSource(neighbors=True),
        lambda: CooccurrenceSource(alpha="x"),
        lambda: ExactIndex(True),
        lambda: HNSWIndex(8, m=True),
        lambda: HNSWIndex(8, ef_search=0),
        lambda: EASESource(max_items=True),
        lambda: EASESource(l2=float("nan")),
        lambda: SequentialSource(seed=True),
        lambda: SequentialSource(text_init=1),
        lambda: SequentialSource(show_progress="no"),
        lambda: SequentialSource(weight_decay=float("inf")),
    ],
)
def test_bad_source_and_index_arguments_are_config_errors(make) -> None:
    with pytest.raises(ConfigError, match="must be"):
        make()

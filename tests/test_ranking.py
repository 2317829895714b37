"""Ranker: logistic scoring, fitting, contributions and MMR diversity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmrec import Ranker
from llmrec.errors import ConfigError, InvalidInputError, PersistenceError
from llmrec.ranking import DEFAULT_WEIGHTS, mmr_order

NAMES = ("a", "b", "c", "d")


def logistic_data(weights, bias, n=4000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(weights)))
    p = 1 / (1 + np.exp(-(x @ np.asarray(weights) + bias)))
    y = (rng.random(n) < p).astype(float)
    return x, y


def test_default_weights_apply_to_known_names() -> None:
    ranker = Ranker(("text_similarity", "popularity", "custom"))
    assert ranker.weights == {
        "text_similarity": DEFAULT_WEIGHTS["text_similarity"],
        "popularity": DEFAULT_WEIGHTS["popularity"],
        "custom": 0.0,
    }
    assert ranker.bias_ == 0.0 and not ranker.fitted_


def test_no_weights_start_only_the_built_in_features() -> None:
    # Trainable sources declare their own default weight (the retriever's
    # default_weights); the ranker names none of them.
    ranker = Ranker(("co_occurrence", "tag_affinity", "ease", "sequential"))
    assert ranker.weights == {
        "co_occurrence": 3.0,
        "tag_affinity": 0.5,
        "ease": 0.0,
        "sequential": 0.0,
    }
    assert set(DEFAULT_WEIGHTS) == {
        "text_similarity",
        "co_occurrence",
        "popularity",
        "query",
        "tag_affinity",
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {"weights": {"a": "2"}},
        {"weights": {"a": True}},
        {"weights": {"a": float("nan")}},
        {"weights": [("a", 1.0)]},
        {"l2": True},
        {"l2": -1.0},
        {"bias": "0"},
    ],
)
def test_bad_weights_l2_and_bias_are_config_errors(kwargs) -> None:
    with pytest.raises(ConfigError, match="must be"):
        Ranker(NAMES, **kwargs)


def test_fit_recovers_planted_weights() -> None:
    planted = [2.0, -1.0, 0.5, 0.0]
    x, y = logistic_data(planted, bias=-0.5)
    ranker = Ranker(NAMES, weights={}, l2=1e-4).fit(x, y)
    w = ranker.weights_
    assert ranker.fitted_
    assert w[0] > 0 and w[1] < 0 and w[2] > 0
    assert w[0] > abs(w[1]) > w[2] > abs(w[3])
    np.testing.assert_allclose(w, planted, atol=0.25)
    assert ranker.bias_ == pytest.approx(-0.5, abs=0.2)


def test_fit_improves_log_loss_over_the_start() -> None:
    x, y = logistic_data([1.5, 0.0, -2.0, 1.0], bias=0.3, seed=1)
    ranker = Ranker(NAMES, weights={"a": -1.0, "c": 1.0})

    def log_loss(r: Ranker) -> float:
        p, _ = r.score(x)
        p = np.clip(p, 1e-9, 1 - 1e-9)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    before = log_loss(ranker)
    after = log_loss(ranker.fit(x, y))
    assert after < before - 0.1


def test_sample_weight_shifts_the_bias() -> None:
    x, y = logistic_data([1.0, 0, 0, 0], bias=-1.0, seed=2)
    plain = Ranker(NAMES, weights={}).fit(x, y)
    weighted = Ranker(NAMES, weights={}).fit(x, y, sample_weight=np.where(y > 0, 5.0, 1.0))
    assert weighted.bias_ > plain.bias_ + 1.0


def test_nonnegative_features_stop_at_zero_where_the_data_pulls_below() -> None:
    planted = [2.0, -1.5, 0.5, 0.0]
    x, y = logistic_data(planted, bias=0.0, seed=3)
    free = Ranker(NAMES, weights={}).fit(x, y)
    bounded = Ranker(NAMES, weights={"b": -3.0}).fit(x, y, nonnegative=("a", "b"))
    assert free.weights["b"] < -1.0
    assert bounded.weights["b"] == 0.0  # the bound, also from a negative start
    assert bounded.weights["a"] > 1.0  # a positive weight is left to the data
    assert bounded.weights["c"] > 0.2  # the others still fit


def test_prior_holds_small_data_near_it_and_large_data_decides() -> None:
    planted = [-1.0, 2.0, 0.0, 0.0]
    prior = {"a": 1.0, "b": 1.0}

    def fitted(n: int, strength: float) -> np.ndarray:
        x, y = logistic_data(planted, bias=0.0, n=n, seed=4)
        ranker = Ranker(NAMES, weights={"a": 5.0})  # the start is not the prior
        return ranker.fit(x, y, prior=prior, prior_strength=strength).weights_

    none = fitted(40, 0.0)
    held = fitted(40, 10.0)
    assert np.abs(held[:2] - [1.0, 1.0]).max() < 0.15
    assert np.abs(held[:2] - [1.0, 1.0]).max() < np.abs(none[:2] - [1.0, 1.0]).max()
    # The pipeline's strength fades as 1 / rows: with much data the data decides.
    np.testing.assert_allclose(fitted(20_000, 1.0 / 20_000)[:2], planted[:2], atol=0.15)


def _grouped(seed: int = 5, users: int = 300, per: int = 20):
    """Per user, candidates where the held-out item has the highest ``a`` of its list,
    but ``a``'s level moves with the user (a per-user offset, as a source's raw score
    does), and ``b`` is the same offset again: across users it tracks the labels (users
    whose lists sit high have more hits), within a list it says nothing."""
    rng = np.random.default_rng(seed)
    xs, ys, gs = [], [], []
    for user in range(users):
        level = rng.normal(0, 3)
        a = rng.normal(0, 1, per)
        y = np.zeros(per)
        if level > -1:  # users whose lists sit low have no hit among the candidates
            y[np.argmax(a)] = 1.0
        xs.append(np.column_stack([a + level, np.full(per, level), np.zeros(per), np.zeros(per)]))
        ys.append(y)
        gs.append(np.full(per, user))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(gs)


def _top1(ranker: Ranker, x: np.ndarray, y: np.ndarray, g: np.ndarray) -> float:
    logits = ranker.score(x)[1].sum(axis=1)
    hits = [y[g == u][np.argmax(logits[g == u])] for u in np.unique(g) if y[g == u].any()]
    return float(np.mean(hits))


def test_listwise_fit_orders_each_group_where_the_pointwise_fit_is_led_by_offsets() -> None:
    x, y, g = _grouped()
    pointwise = Ranker(NAMES, weights={}).fit(x, y)
    listwise = Ranker(NAMES, weights={}).fit(x, y, groups=g)
    # Within a list only "a" orders the candidates; the per-user level in "b" is noise
    # there, and the listwise fit leaves it near 0 where the pointwise fit leans on it.
    assert listwise.weights["a"] > 2.0
    assert abs(listwise.weights["b"]) < 0.1 * listwise.weights["a"]
    assert abs(pointwise.weights["b"]) > abs(listwise.weights["b"])
    assert _top1(listwise, x, y, g) == 1.0
    # The bias is fitted after the weights, to the rate of positives (1 in 20 here).
    probs = listwise.score(x)[0]
    assert abs(probs.mean() - y.mean()) < 0.01 and probs[y > 0].mean() > 5 * probs.mean()


def test_listwise_fit_ignores_groups_without_a_positive_and_keeps_its_bounds() -> None:
    x, y, g = _grouped(seed=6)
    with_empty = np.concatenate([x, np.full((5, 4), 9.0)])
    fitted = Ranker(NAMES, weights={}).fit(x, y, groups=g, nonnegative=("b",))
    padded = Ranker(NAMES, weights={}).fit(
        with_empty,
        np.concatenate([y, np.zeros(5)]),
        groups=np.concatenate([g, np.full(5, -1)]),
        nonnegative=("b",),
    )
    np.testing.assert_allclose(padded.weights_, fitted.weights_, atol=1e-6)
    assert fitted.weights["b"] >= 0.0


@pytest.mark.parametrize("groups", [np.zeros(3, dtype=int), np.zeros(200), "abc"])
def test_bad_groups_raise_and_change_nothing(groups) -> None:
    x, y = logistic_data([1.0, 0, 0, 0], bias=0.0, n=200)
    ranker = Ranker(NAMES, weights={"a": 0.3})
    with pytest.raises(InvalidInputError, match="groups"):
        ranker.fit(x, y, groups=groups)
    assert ranker.weights == {"a": 0.3, "b": 0.0, "c": 0.0, "d": 0.0} and not ranker.fitted_


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"prior_strength": -1.0}, "prior_strength"),
        ({"prior_strength": float("inf")}, "prior_strength"),
        ({"prior_strength": True}, "prior_strength"),
        ({"prior": {"zz": 1.0}}, "zz"),
        ({"prior": {"a": float("nan")}}, "prior"),
        ({"nonnegative": ("a", "zz")}, "zz"),
    ],
)
def test_bad_prior_arguments_raise_and_change_nothing(kwargs, match) -> None:
    x, y = logistic_data([1.0, 0, 0, 0], bias=0.0, n=200)
    ranker = Ranker(NAMES, weights={"a": 0.3})
    with pytest.raises(InvalidInputError, match=match):
        ranker.fit(x, y, **kwargs)
    assert ranker.weights == {"a": 0.3, "b": 0.0, "c": 0.0, "d": 0.0} and not ranker.fitted_


@given(st.lists(st.floats(-5, 5), min_size=4, max_size=4), st.floats(-3, 3), st.integers(0, 2**31))
def test_contributions_sum_to_logit_minus_bias(weights, bias, seed) -> None:
    ranker = Ranker(NAMES, weights=dict(zip(NAMES, weights)), bias=bias)
    x = np.random.default_rng(seed).normal(size=(7, 4))
    probs, contributions = ranker.score(x)
    assert contributions.shape == x.shape
    np.testing.assert_allclose(contributions, x * np.asarray(weights), atol=1e-12)
    logits = np.log(probs / (1 - probs))
    ok = (probs > 1e-12) & (probs < 1 - 1e-12)
    np.testing.assert_allclose(contributions.sum(axis=1)[ok] + bias, logits[ok], atol=1e-6)
    assert ((probs >= 0) & (probs <= 1)).all()


def test_feature_matrix_fills_missing_features_with_zero() -> None:
    ranker = Ranker(NAMES)
    m = ranker.feature_matrix({"b": np.array([1.0, 2.0]), "zzz": np.array([9.0, 9.0])}, 2)
    np.testing.assert_array_equal(m, [[0, 1, 0, 0], [0, 2, 0, 0]])


@pytest.mark.parametrize(
    ("x", "y"),
    [
        (np.zeros((5, 3)), np.array([0, 1, 0, 1, 0])),  # wrong width
        (np.zeros((5, 4)), np.array([0, 1, 0, 1])),  # length mismatch
        (np.zeros((5, 4)), np.zeros(5)),  # one class only
        (np.full((2, 4), np.nan), np.array([0, 1])),  # NaN features
    ],
)
def test_fit_rejects_bad_data_without_changing_weights(x, y) -> None:
    ranker = Ranker(NAMES, weights={"a": 1.0, "b": 2.0}, bias=0.5)
    with pytest.raises(InvalidInputError):
        ranker.fit(x, y)
    assert ranker.weights == {"a": 1.0, "b": 2.0, "c": 0.0, "d": 0.0}
    assert ranker.bias_ == 0.5 and not ranker.fitted_


@pytest.mark.parametrize(
    "kwargs", [{"feature_names": ()}, {"feature_names": ("a", "a")}, {"weights": {"nope": 1.0}}]
)
def test_bad_constructor_arguments(kwargs) -> None:
    args = {"feature_names": NAMES, **kwargs}
    with pytest.raises(ConfigError):
        Ranker(args.pop("feature_names"), **args)


# --------------------------------------------------------------------------- MMR


@given(st.integers(1, 60), st.integers(1, 70), st.integers(0, 2**31))
def test_mmr_without_diversity_is_argsort(n, k, seed) -> None:
    rng = np.random.default_rng(seed)
    relevance = rng.random(n)
    vectors = rng.normal(size=(n, 4))
    order = mmr_order(relevance, vectors, k, 0.0)
    np.testing.assert_array_equal(order, np.argsort(-relevance, kind="stable")[:k])


@given(st.integers(2, 60), st.integers(2, 30), st.floats(0.01, 0.99), st.integers(0, 2**31))
def test_mmr_returns_distinct_positions(n, k, diversity, seed) -> None:
    rng = np.random.default_rng(seed)
    relevance = rng.random(n)
    vectors = rng.normal(size=(n, 4))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    order = mmr_order(relevance, vectors, k, diversity)
    assert len(order) == min(k, n)
    assert len(set(order.tolist())) == len(order)
    assert ((order >= 0) & (order < n)).all()
    assert order[0] == int(np.argmax(relevance))  # the best item is always first


def test_mmr_with_diversity_picks_fewer_near_duplicates() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(4, 16))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    # 10 near-copies of cluster 0 with the highest relevance, then 3 items per other cluster.
    vectors = [base[0] + 0.01 * rng.normal(size=16) for _ in range(10)]
    clusters = [0] * 10
    for c in (1, 2, 3):
        vectors += [base[c] + 0.01 * rng.normal(size=16) for _ in range(3)]
        clusters += [c] * 3
    vectors = np.array(vectors)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    relevance = np.concatenate([np.linspace(1.0, 0.9, 10), np.linspace(0.8, 0.7, 9)])
    clusters = np.array(clusters)
    plain = mmr_order(relevance, vectors, 5, 0.0)
    diverse = mmr_order(relevance, vectors, 5, 0.5)
    assert (clusters[plain] == 0).sum() == 5
    assert (clusters[diverse] == 0).sum() < 5
    assert len(set(clusters[diverse].tolist())) == 4
    sims = vectors @ vectors.T

    def mean_pair_sim(order: np.ndarray) -> float:
        s = sims[np.ix_(order, order)]
        return float((s.sum() - np.trace(s)) / (len(order) * (len(order) - 1)))

    assert mean_pair_sim(diverse) < mean_pair_sim(plain) - 0.3


@pytest.mark.parametrize("diversity", [-0.1, 1.0, 1.5, float("nan"), True, "0.5", None])
def test_diversity_outside_range_raises(diversity) -> None:
    with pytest.raises(InvalidInputError):
        Ranker(NAMES, diversity=diversity)
    with pytest.raises(InvalidInputError):
        Ranker(NAMES).order(np.ones(3), np.eye(3), 2, diversity if diversity is not None else -1)


def test_order_uses_the_default_diversity() -> None:
    relevance = np.array([1.0, 0.99, 0.5])
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert Ranker(NAMES).order(relevance, vectors, 2).tolist() == [0, 1]
    assert Ranker(NAMES, diversity=0.9).order(relevance, vectors, 2).tolist() == [0, 2]
    assert Ranker(NAMES, diversity=0.9).order(relevance, vectors, 2, 0.0).tolist() == [0, 1]


# --------------------------------------------------------------------------- persistence


def test_save_load_round_trip(tmp_path: Path) -> None:
    x, y = logistic_data([1.0, -1.0, 0.0, 0.5], bias=0.2, n=500, seed=4)
    ranker = Ranker(NAMES, weights={}, l2=0.01, diversity=0.3).fit(x, y)
    config = ranker.save(tmp_path / "r")
    json.dumps(config)
    loaded = Ranker.load(tmp_path / "r", config)
    assert loaded.feature_names == ranker.feature_names
    np.testing.assert_array_equal(loaded.weights_, ranker.weights_)
    assert (loaded.bias_, loaded.l2, loaded.diversity, loaded.fitted_) == (
        ranker.bias_,
        0.01,
        0.3,
        True,
    )
    np.testing.assert_array_equal(loaded.score(x)[0], ranker.score(x)[0])


@pytest.mark.parametrize(
    "content",
    [
        "{broken",
        json.dumps({"feature_names": ["a"]}),
        json.dumps(
            {
                "feature_names": ["a", "a"],
                "weights": {},
                "bias": 0,
                "l2": 0,
                "diversity": 0,
                "fitted": False,
            }
        ),
    ],
)
def test_load_of_corrupt_state(content: str, tmp_path: Path) -> None:
    config = Ranker(NAMES).save(tmp_path / "r")
    (tmp_path / "r" / "ranker.json").write_text(content)
    with pytest.raises(PersistenceError):
        Ranker.load(tmp_path / "r", config)


def test_load_of_missing_state(tmp_path: Path) -> None:
    with pytest.raises(PersistenceError):
        Ranker.load(tmp_path / "nothing", {})

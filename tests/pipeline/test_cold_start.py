"""Cold start and small data on a 40-product shop with planted tastes (tests/shop.py):
stated preferences, anonymous visitors, sessions, similar items, and a fusion that holds
on 20 users."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from conftest import build_pipeline
from shop import ACTIVITY, fusion_ndcg, shop_events, shop_items

from llmrec import Event
from llmrec.errors import ConfigError, InvalidInputError, UnknownItemError, UnknownUserError


def activities(recs) -> list[str]:
    return [ACTIVITY[r.item_id] for r in recs]


@pytest.fixture(scope="module")
def shop():
    events, _ = shop_events()
    return build_pipeline(shop_items()).fit(events, seed=0, show_progress=False)


# ------------------------------------------------------------------ stated preferences
@pytest.mark.parametrize(
    "preferences, activity",
    [
        ("I want to start trail running", "running"),
        ("lightweight gear for a first overnight camping trip", "camping"),
    ],
)
def test_stated_preferences_rank_matching_items_first(shop, preferences, activity) -> None:
    user = f"new-{activity}"
    shop.add_user(user, preferences=preferences)
    try:
        top = activities(shop.recommend(user, 5, generate=False))
        assert top[0] == activity and top.count(activity) >= 3, top
    finally:
        shop.forget(user)


def test_stated_preferences_weigh_less_as_the_history_grows(shop) -> None:
    user = "stated-then-shopped"
    shop.add_user(user, preferences="I want to start trail running")
    try:
        before = shop.recommend(user, 1, generate=False)[0].explanation.features["query"]
        for n, item_id in enumerate(["yoga-mat", "yoga-blocks", "yoga-strap", "yoga-roller"]):
            shop.observe(Event(user, item_id, kind="purchase", timestamp=2e9 + n))
        recs = shop.recommend(user, 5, generate=False)
        assert activities(recs).count("yoga") >= 1
        assert max(r.explanation.features["query"] for r in recs) < before
    finally:
        shop.forget(user)


@pytest.mark.slow
def test_stated_preferences_with_the_real_encoder() -> None:
    events, _ = shop_events()
    pipe = build_pipeline(shop_items(), encoder="default").fit(events, show_progress=False)
    pipe.add_user("runner", preferences="I want to start trail running")
    pipe.add_user("camper", preferences="lightweight gear for a first overnight camping trip")
    assert activities(pipe.recommend("runner", 5, generate=False)) == ["running"] * 5
    assert activities(pipe.recommend("camper", 5, generate=False)).count("camping") >= 3


# ------------------------------------------------------------------ unknown users
def test_unknown_user_gets_a_flagged_popular_list_and_nothing_is_stored(shop) -> None:
    users, counts = len(shop.profiles), shop.retriever.popularity.counts.copy()
    recs = shop.recommend("anonymous-visitor", 5, generate=False)
    assert len(recs) == 5 and all(r.fallback == "unknown_user" for r in recs)
    # Everyone buys jackets: the cold-start list without a query is the popular one.
    assert activities(recs)[:3] == ["outerwear"] * 3
    assert [r.rank for r in recs] == [1, 2, 3, 4, 5]
    assert recs[0].to_dict()["fallback"] == "unknown_user"
    assert len(shop.profiles) == users and "anonymous-visitor" not in shop.profiles
    np.testing.assert_array_equal(shop.retriever.popularity.counts, counts)


def test_unknown_user_with_a_query_gets_its_matches(shop) -> None:
    recs = shop.recommend("anonymous-visitor", 3, query="yoga mat and blocks", generate=False)
    assert activities(recs) == ["yoga"] * 3 and recs[0].fallback == "unknown_user"
    assert recs[0].explanation.signals["query"] > 0


def test_unknown_user_text_and_every_entry_point(shop) -> None:
    texts = shop.recommend("anonymous-visitor", 2)
    assert all(r.text and r.fallback == "unknown_user" for r in texts)
    streamed = list(shop.recommend_stream("anonymous-visitor", 2))
    assert {r.fallback for r in streamed} == {"unknown_user"}
    known, unknown = shop.recommend_batch(["c00", "anonymous-visitor"], 3, generate=False)
    assert {r.fallback for r in known} == {None} and {r.fallback for r in unknown} == {
        "unknown_user"
    }


def test_fallback_false_keeps_unknown_user_error(shop) -> None:
    with pytest.raises(UnknownUserError, match="anonymous-visitor"):
        shop.recommend("anonymous-visitor", fallback=False)
    with pytest.raises(UnknownUserError):
        shop.recommend_batch(["c00", "anonymous-visitor"], fallback=False)
    with pytest.raises(ConfigError, match="fallback"):
        shop.recommend("anonymous-visitor", fallback="yes")
    assert shop.recommend("c00", 3, generate=False)[0].fallback is None


# ------------------------------------------------------------------ sessions
def test_session_of_two_running_items_gets_running_items_first(shop) -> None:
    users, counts = len(shop.profiles), shop.retriever.popularity.counts.copy()
    recs = shop.recommend_session(["run-road-shoe", "run-shorts"], 5)
    ids = [r.item_id for r in recs]
    assert activities(recs)[:3] == ["running"] * 3, ids
    assert not {"run-road-shoe", "run-shorts"} & set(ids)
    assert all(r.fallback is None and r.text is None for r in recs)
    assert set(recs[0].explanation.evidence_item_ids) <= {"run-road-shoe", "run-shorts"}
    assert len(shop.profiles) == users
    np.testing.assert_array_equal(shop.retriever.popularity.counts, counts)


def test_session_takes_events_and_writes_text_on_request(shop) -> None:
    history = [Event("whoever", "camp-tent", kind="purchase"), "camp-bag"]
    recs = shop.recommend_session(history, 3, generate=True)
    assert activities(recs) == ["camping"] * 3
    assert all(r.text for r in recs)
    assert "whoever" not in shop.profiles
    kept = shop.recommend_session(["camp-tent"], 40, exclude_seen=False)
    assert "camp-tent" in [r.item_id for r in kept]


@pytest.mark.parametrize(
    "history, error",
    [
        (["no-such-item"], UnknownItemError),
        ([3], InvalidInputError),
        ("camp-tent", InvalidInputError),
    ],
)
def test_bad_session_history_raises(shop, history, error) -> None:
    with pytest.raises(error):
        shop.recommend_session(history)


# ------------------------------------------------------------------ similar items
def test_similar_items_of_a_tent_are_camping_items(shop) -> None:
    recs = shop.similar_items("camp-tent", 5)
    assert activities(recs) == ["camping"] * 5
    assert "camp-tent" not in [r.item_id for r in recs]
    top = recs[0].explanation
    assert top.evidence_item_ids == ("camp-tent",)
    assert top.features["co_occurrence"] > 0 and top.features["text_similarity"] > 0
    assert sum(top.signals.values()) > 0


def test_similar_items_with_filters_and_bad_input(shop) -> None:
    recs = shop.similar_items("camp-tent", 3, filters={"category": "sleep"})
    assert {r.item_id for r in recs} == {"camp-bag", "camp-pad"}
    with pytest.raises(UnknownItemError, match="no-such-item"):
        shop.similar_items("no-such-item")
    with pytest.raises(InvalidInputError):
        shop.similar_items(["camp-tent"])
    with pytest.raises(InvalidInputError):
        shop.similar_items("camp-tent", 0)


# ------------------------------------------------------------------ small-data fusion
def test_fitted_weights_on_the_shop_keep_similarity_non_negative(shop) -> None:
    weights = shop.ranker.weights
    relations = shop.retriever.relations
    for name, weight in weights.items():
        if relations.get(name) != "popular":
            assert weight >= 0.0, (name, weights)
    assert weights["text_similarity"] > 0.5 and weights["co_occurrence"] > 0.5


def test_small_data_skips_trainable_models_with_a_warning(caplog) -> None:
    events, _ = shop_events()
    with caplog.at_level(logging.WARNING, logger="llmrec.retrieval.retriever"):
        pipe = build_pipeline(shop_items(), models=("ease",)).fit(events, show_progress=False)
    assert not pipe.retriever.models["ease"].fitted
    assert "skipping the 'ease' model" in caplog.text


def test_fitted_fusion_beats_defaults_and_single_sources_on_the_shop() -> None:
    events, _ = shop_events()
    ndcg = fusion_ndcg(lambda: build_pipeline(shop_items()), events, seed=0)
    singles = {k: v for k, v in ndcg.items() if k not in ("fitted", "default")}
    assert {"text_similarity", "co_occurrence", "popularity", "tag_affinity"} <= set(singles)
    assert ndcg["fitted"] >= max(ndcg["default"], *singles.values()), ndcg

"""Real-time user profiles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmrec import Event, ProfileStore
from llmrec.errors import ConfigError, InvalidInputError, PersistenceError, UnknownUserError
from llmrec.profile import UserProfile
from llmrec.types import EVENT_WEIGHTS

DIM = 8


def unit(rng: np.random.Generator, n: int = 1) -> np.ndarray:
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def ev(item: str | None, kind: str = "click", user: str = "u1", t: float = 0.0, **kw) -> Event:
    return Event(user, item, kind=kind, timestamp=t, **kw)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(3)


def assert_profiles_equal(a: UserProfile, b: UserProfile) -> None:
    assert a.user_id == b.user_id
    assert a.max_history == b.max_history
    assert list(a.history) == list(b.history)
    assert a.tag_affinity == pytest.approx(b.tag_affinity)
    assert a.stated_preferences == b.stated_preferences
    assert a.seen == b.seen
    assert a.n_events == b.n_events
    assert a.last_timestamp == b.last_timestamp
    for x, y in ((a.interest, b.interest), (a.preference_vector, b.preference_vector)):
        assert (x is None) == (y is None)
        if x is not None:
            np.testing.assert_array_equal(x, y)


# --------------------------------------------------------------------------- interest


def test_new_profile_is_empty() -> None:
    store = ProfileStore(DIM)
    profile = store.get_or_create("u1")
    assert profile.interest is None and profile.query_vector() is None
    assert profile.n_events == 0 and not profile.seen and not profile.history
    assert "u1" in store and len(store) == 1


def test_interest_moves_towards_observed_items(rng) -> None:
    store = ProfileStore(DIM)
    a, b = unit(rng, 2)
    store.observe(ev("a"), a)
    profile = store.get("u1")
    assert cos(profile.query_vector(), a) == pytest.approx(1.0, abs=1e-5)
    before = cos(profile.query_vector(), b)
    store.observe(ev("b", "like"), b)
    after = cos(profile.query_vector(), b)
    assert after > before
    for _ in range(10):
        store.observe(ev("b", "click"), b)
    assert cos(profile.query_vector(), b) > after
    assert cos(profile.query_vector(), b) > 0.95


def test_dislike_moves_away(rng) -> None:
    store = ProfileStore(DIM)
    a, b = unit(rng, 2)
    store.observe(ev("a"), a)
    store.observe(ev("b", "click"), b)
    before = cos(store.get("u1").query_vector(), b)
    store.observe(ev("b", "dislike"), b)
    assert cos(store.get("u1").query_vector(), b) < before
    cold = ProfileStore(DIM)
    cold.observe(ev("b", "dislike"), b)
    assert cos(cold.get("u1").query_vector(), b) == pytest.approx(-1.0, abs=1e-5)


def test_stronger_events_pull_harder(rng) -> None:
    a, b = unit(rng, 2)
    pulls = {}
    for kind in ("view", "click", "like", "purchase"):
        store = ProfileStore(DIM)
        store.observe(ev("a"), a)
        store.observe(ev("b", kind), b)
        pulls[kind] = cos(store.get("u1").query_vector(), b)
    assert pulls["view"] < pulls["click"] < pulls["like"] < pulls["purchase"]


@given(
    st.lists(
        st.tuples(
            st.integers(0, 4), st.sampled_from(sorted(set(EVENT_WEIGHTS) - {"query", "rate"}))
        ),
        min_size=1,
        max_size=25,
    ),
    st.floats(0.5, 50),
)
def test_interest_is_the_decayed_weighted_sum(steps, half_life) -> None:
    vectors = unit(np.random.default_rng(0), 5)
    store = ProfileStore(DIM, half_life=half_life)
    decay = 0.5 ** (1 / half_life)
    expected = np.zeros(DIM)
    for index, kind in steps:
        store.observe(ev(f"i{index}", kind), vectors[index])
        expected = decay * expected + EVENT_WEIGHTS[kind] * vectors[index]
    np.testing.assert_allclose(store.get("u1").interest, expected, atol=1e-4)
    assert store.get("u1").n_events == len(steps)


def test_half_life_halves_old_events(rng) -> None:
    a = unit(rng)[0]
    store = ProfileStore(DIM, half_life=3)
    store.observe(ev("a"), a)
    for _ in range(3):
        store.observe(ev("b", "view"), np.zeros(DIM, np.float32))  # decays, adds nothing
    interest = store.get("u1").interest
    assert interest @ a == pytest.approx(0.5, abs=1e-5)


# --------------------------------------------------------------------------- tags, history


def test_tag_affinities_follow_weights_and_decay(rng) -> None:
    store = ProfileStore(DIM, half_life=1.0)
    v = unit(rng)[0]
    store.observe(ev("a", "like"), v, ("comedy", "drama"))
    assert store.get("u1").tag_affinity == pytest.approx({"comedy": 2.0, "drama": 2.0})
    store.observe(ev("b", "click"), v, ("comedy",))
    assert store.get("u1").tag_affinity == pytest.approx({"comedy": 2.0, "drama": 1.0})
    store.observe(ev("c", "dislike"), v, ("horror",))
    affinity = store.get("u1").tag_affinity
    assert affinity["horror"] == pytest.approx(-2.0)
    assert affinity["comedy"] == pytest.approx(1.0)


def test_events_without_tags_leave_affinities(rng) -> None:
    store = ProfileStore(DIM, half_life=1.0)
    v = unit(rng)[0]
    store.observe(ev("a"), v, ("x",))
    store.observe(ev("b"), v, ())
    assert store.get("u1").tag_affinity == {"x": 1.0}


def test_history_is_bounded_and_ordered(rng) -> None:
    store = ProfileStore(DIM, max_history=5)
    v = unit(rng)[0]
    for n in range(12):
        store.observe(ev(f"i{n}", t=float(n)), v)
    profile = store.get("u1")
    assert [h.item_id for h in profile.history] == [f"i{n}" for n in range(7, 12)]
    assert profile.n_events == 12
    assert profile.seen == {f"i{n}" for n in range(12)}  # seen is not bounded by history
    assert profile.last_timestamp == 11.0


def test_recent_items_newest_first_distinct_positive(rng) -> None:
    store = ProfileStore(DIM)
    v = unit(rng)[0]
    for item, kind in [
        ("a", "click"),
        ("b", "click"),
        ("c", "dislike"),
        ("a", "view"),
        ("d", "skip"),
    ]:
        store.observe(ev(item, kind), v)
    profile = store.get("u1")
    assert profile.recent_items() == ["a", "b"]
    assert profile.recent_items(1) == ["a"]
    assert profile.recent_items(positive_only=False) == ["d", "a", "c", "b"]
    assert profile.seen == {"a", "b", "c", "d"}


def test_query_events_set_stated_preferences(rng) -> None:
    store = ProfileStore(DIM)
    vectors = unit(rng, 7)
    for n in range(7):
        store.observe(ev(None, "query", text=f"taste {n}"), None, (), vectors[n])
    profile = store.get("u1")
    assert profile.stated_preferences == [f"taste {n}" for n in range(2, 7)]
    assert profile.interest is None and not profile.history and not profile.seen
    assert np.linalg.norm(profile.preference_vector) == pytest.approx(1.0, abs=1e-5)
    assert cos(profile.query_vector(), vectors[6]) > cos(profile.query_vector(), vectors[0])
    assert profile.n_events == 7


def test_query_vector_combines_interest_and_preference(rng) -> None:
    store = ProfileStore(DIM)
    a, b = unit(rng, 2)
    store.observe(ev("a", "purchase"), a)
    store.observe(ev(None, "query", text="b things"), None, (), b)
    q = store.get("u1").query_vector()
    assert np.linalg.norm(q) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(q, (a + b) / np.linalg.norm(a + b), atol=1e-5)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("bad", ["short", "long", "2d", "nan", "inf"])
def test_bad_vectors_raise_without_mutating(bad, rng) -> None:
    store = ProfileStore(DIM)
    good = unit(rng)[0]
    store.observe(ev("a"), good, ("x",))
    vector = {
        "short": good[:4],
        "long": np.concatenate([good, good]),
        "2d": good[None, :],
        "nan": np.where(np.arange(DIM) == 2, np.nan, good).astype(np.float32),
        "inf": np.where(np.arange(DIM) == 0, np.inf, good).astype(np.float32),
    }[bad]
    before = store.get("u1")
    snapshot = (
        before.n_events,
        list(before.history),
        before.interest.copy(),
        dict(before.tag_affinity),
        set(before.seen),
        before.last_timestamp,
    )
    with pytest.raises(InvalidInputError, match="'b'"):
        store.observe(ev("b", t=5.0), vector, ("y",))
    after = store.get("u1")
    assert (after.n_events, list(after.history)) == snapshot[:2]
    np.testing.assert_array_equal(after.interest, snapshot[2])
    assert (after.tag_affinity, after.seen, after.last_timestamp) == snapshot[3:]
    # A new user is not created by a rejected event either.
    with pytest.raises(InvalidInputError):
        store.observe(ev("b", user="newcomer"), vector)
    assert "newcomer" not in store and len(store) == 1


def test_get_unknown_user_raises() -> None:
    store = ProfileStore(DIM)
    with pytest.raises(UnknownUserError, match="'ghost'"):
        store.get("ghost")
    with pytest.raises(KeyError):
        store.get(["not hashable"])  # type: ignore[arg-type]


@pytest.mark.parametrize("user_id", ["", "a\nb", 3, None])
def test_get_or_create_rejects_bad_ids(user_id) -> None:
    store = ProfileStore(DIM)
    with pytest.raises(InvalidInputError):
        store.get_or_create(user_id)  # type: ignore[arg-type]
    assert len(store) == 0


def test_forget_erases_the_user(rng) -> None:
    store = ProfileStore(DIM)
    v = unit(rng)[0]
    store.observe(ev("a"), v)
    store.observe(ev("a", user="u2"), v)
    store.forget("u1")
    assert "u1" not in store and list(store) == ["u2"]
    with pytest.raises(UnknownUserError):
        store.get("u1")
    with pytest.raises(UnknownUserError):
        store.forget("u1")
    # Coming back starts from scratch.
    store.observe(ev("b"), v)
    assert store.get("u1").seen == {"b"} and store.get("u1").n_events == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dim": 0},
        {"dim": 2.0},
        {"dim": True},
        {"half_life": 0},
        {"half_life": float("inf")},
        {"half_life": float("nan")},
        {"half_life": True},
        {"half_life": "20"},
        {"max_history": 0},
        {"max_history": 1.5},
        {"max_history": True},
    ],
)
def test_store_rejects_bad_config(kwargs) -> None:
    args = {"dim": DIM, **kwargs}
    with pytest.raises(ConfigError):
        ProfileStore(args.pop("dim"), **args)


def test_only_positive_events_are_recent_items(rng) -> None:
    store = ProfileStore(DIM)
    v = unit(rng)[0]
    for item, kind, value in (
        ("a", "click", None),
        ("b", "rate", 2),
        ("c", "rate", 1),
        ("d", "dislike", None),
        ("e", "rate", 4),
    ):
        store.observe(ev(item, kind, value=value), v)
    profile = store.get("u1")
    assert [h.is_positive for h in profile.history] == [True, False, False, False, True]
    assert profile.recent_items() == ["e", "a"]
    assert profile.recent_items(positive_only=False) == ["e", "d", "c", "b", "a"]


def test_replace_with_takes_the_other_stores_profiles(rng) -> None:
    store, other = ProfileStore(DIM), ProfileStore(DIM)
    v = unit(rng)[0]
    store.observe(ev("a", user="old"), v)
    other.observe(ev("b", user="new"), v)
    store.replace_with(other)
    assert list(store) == ["new"] and store.get("new").seen == {"b"}
    store.observe(ev("c", user="later"), v)  # the store stays its own
    assert "later" not in other
    with pytest.raises(ConfigError, match="dim"):
        store.replace_with(ProfileStore(DIM + 1))
    with pytest.raises(ConfigError):
        store.replace_with({"new": None})  # type: ignore[arg-type]
    assert list(store) == ["new", "later"]


# --------------------------------------------------------------------------- persistence


def populated_store(rng) -> ProfileStore:
    store = ProfileStore(DIM, half_life=7.0, max_history=6)
    vectors = unit(rng, 10)
    for n in range(15):
        store.observe(
            ev(f"i{n % 10}", ["click", "like", "dislike", "view"][n % 4], user="u1", t=100.0 + n),
            vectors[n % 10],
            (f"g{n % 3}",),
        )
    store.observe(ev(None, "query", user="u1", text="more of that"), None, (), vectors[0])
    store.observe(ev(None, "query", user="cold", text="only words ünïcode"), None, (), vectors[1])
    store.observe(ev("i3", "rate", user="rater", value=4.5, t=5.5), vectors[3], ())
    store.get_or_create("empty")
    return store


def test_save_load_round_trip(rng, tmp_path: Path) -> None:
    store = populated_store(rng)
    config = store.save(tmp_path / "p")
    json.dumps(config)
    loaded = ProfileStore.load(tmp_path / "p", config)
    assert (loaded.dim, loaded.half_life, loaded.max_history) == (DIM, 7.0, 6)
    assert sorted(loaded) == sorted(store)
    for user_id in store:
        assert_profiles_equal(loaded.get(user_id), store.get(user_id))
    # Loaded profiles keep updating the same way.
    v = unit(rng)[0]
    store.observe(ev("z", user="u1"), v, ("g1",))
    loaded.observe(ev("z", user="u1"), v, ("g1",))
    assert_profiles_equal(loaded.get("u1"), store.get("u1"))
    assert loaded.get("u1").history.maxlen == 6


@pytest.mark.parametrize(
    "damage", ["jsonl_garbage", "jsonl_missing", "array_truncated", "count", "missing_key"]
)
def test_load_of_damaged_saves(damage, rng, tmp_path: Path) -> None:
    store = populated_store(rng)
    config = store.save(tmp_path / "p")
    jsonl = tmp_path / "p" / "profiles.jsonl"
    if damage == "jsonl_garbage":
        jsonl.write_text("{not json\n")
    elif damage == "jsonl_missing":
        jsonl.unlink()
    elif damage == "array_truncated":
        f = tmp_path / "p" / "interest.npy"
        f.write_bytes(f.read_bytes()[:100])
    elif damage == "count":
        config = {**config, "count": config["count"] + 1}
    elif damage == "missing_key":
        lines = jsonl.read_text().splitlines()
        record = json.loads(lines[0])
        del record["seen"]
        jsonl.write_text("\n".join([json.dumps(record)] + lines[1:]) + "\n")
    with pytest.raises(PersistenceError):
        ProfileStore.load(tmp_path / "p", config)


def test_likers_stay_equal_to_a_rebuild_through_every_change() -> None:
    import random

    from llmrec.profile import ProfileStore as Store

    def rebuilt(store: Store) -> dict:
        fresh = Store(4, max_history=store.max_history)
        fresh._profiles = dict(store._profiles)
        return {k: v for k, v in fresh.likers().items() if v}

    rng = random.Random(7)
    store = Store(4, max_history=5)
    store.observe(Event("u0", "i0", "click"), None)
    assert store.likers() == {"i0": {"u0"}}  # built here, then kept current
    kinds = ["click", "purchase", "dislike", "skip", "view"]
    for step in range(600):
        user = f"u{rng.randrange(6)}"
        if step % 97 == 96 and user in store:
            store.forget(user)
        else:
            store.observe(Event(user, f"i{rng.randrange(8)}", rng.choice(kinds)), None)
        live = {k: set(v) for k, v in store.likers().items() if v}
        assert live == rebuilt(store), f"step {step}"
    store.clear()
    assert store.likers() == {}


def test_views_and_three_star_ratings_are_positive_but_not_liked() -> None:
    from llmrec.profile import ProfileStore as Store

    store = Store(4)
    events = [
        Event("u0", "viewed", "view"),
        Event("u0", "meh", "rate", value=3),
        Event("u0", "good", "rate", value=4),
        Event("u0", "clicked", "click"),
        Event("u0", "bought", "purchase"),
    ]
    for e in events:
        store.observe(e, None)
    assert [e.is_liked for e in events] == [False, False, True, True, True]
    assert all(e.is_positive for e in events)
    assert set(store.likers()) == {"good", "clicked", "bought"}
    profile = store.get("u0")
    assert profile.recent_items(liked_only=True) == ["bought", "clicked", "good"]
    assert len(profile.recent_items()) == 5

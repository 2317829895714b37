"""How a fitted pipeline learns and keeps learning: seeded fits, the sequential source
following live events, cold starts, and evaluating a pipeline end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SMALL_SEQUENTIAL, build_pipeline, make_events

from llmrec import Event, Item
from llmrec.errors import InvalidInputError
from llmrec.evaluation import RARE_ITEM_THRESHOLD, evaluate, evaluate_predictions, leave_one_out
from llmrec.retrieval.models import SequentialSource

# Planted sequences: 5 cycles of 10 items; a user walks one cycle, item after item.
N_CYCLES, CYCLE = 5, 10
WORDS = ["amber", "birch", "cobalt", "dune", "ember"]


def ids(recs) -> list[str]:
    return [r.item_id for r in recs]


def _cycle_items() -> list[Item]:
    # The text tells the cycle but not the position, so only order reveals the next item.
    return [
        Item(
            f"c{c}p{p}",
            f"{WORDS[c].title()} {p}",
            f"{WORDS[c]} tale {WORDS[c]} saga",
            {"genres": [WORDS[c]]},
        )
        for c in range(N_CYCLES)
        for p in range(CYCLE)
    ]


def _cycle_events(users: int = 150, length: int = 14, seed: int = 0) -> list[Event]:
    rng = np.random.default_rng(seed)
    events, t = [], 0.0
    for u in range(users):
        c, p = int(rng.integers(N_CYCLES)), int(rng.integers(CYCLE))
        for _ in range(length):
            t += 1.0
            events.append(Event(f"w{u:03d}", f"c{c}p{p}", kind="click", timestamp=t))
            p = (p + 1) % CYCLE
    return events


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: extra threads only add synchronization
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cycle_pipeline():
    pipe = build_pipeline(_cycle_items(), models=[SequentialSource(**SMALL_SEQUENTIAL)])
    return pipe.fit(_cycle_events(), seed=0, show_progress=False)


# ------------------------------------------------------------------ real time
def test_sequential_follows_live_events_without_retraining(cycle_pipeline) -> None:
    pipe = cycle_pipeline
    model = pipe.retriever.models["sequential"]
    weights = {k: v.clone() for k, v in model.net.state_dict().items()}
    user = "live-walker"
    for n, p in enumerate((2, 3, 4)):
        pipe.observe(Event(user, f"c1p{p}", kind="click", timestamp=1e6 + n))
    first = pipe.recommend(user, 3, generate=False)
    assert first[0].item_id == "c1p5"
    assert first[0].explanation.features["sequential"] == pytest.approx(0.0, abs=1e-6)
    pipe.observe(Event(user, "c1p5", kind="click", timestamp=2e6))
    second = pipe.recommend(user, 3, generate=False)
    assert second[0].item_id == "c1p6"
    # ...and nothing was retrained.
    for key, value in model.net.state_dict().items():
        assert torch.equal(value, weights[key]), key


def test_sequential_beats_popularity_through_the_pipeline(cycle_pipeline) -> None:
    # Held-out walks of new users, observed live: the next item is the planted one.
    hits = pop_hits = 0
    popular = ids(cycle_pipeline.recommend(_new_user(cycle_pipeline, []), 5, generate=False))
    rng = np.random.default_rng(7)
    for n in range(40):
        c, p = int(rng.integers(N_CYCLES)), int(rng.integers(CYCLE))
        history = [f"c{c}p{(p + j) % CYCLE}" for j in range(4)]
        target = f"c{c}p{(p + 4) % CYCLE}"
        user = _new_user(cycle_pipeline, history, name=f"heldout{n}")
        hits += target in ids(cycle_pipeline.recommend(user, 5, generate=False))
        pop_hits += target in popular
    assert hits >= 36  # measured 40 / 40
    assert hits > pop_hits + 20


def _new_user(pipe, history: list[str], name: str = "nobody") -> str:
    pipe.add_user(name)
    for n, item_id in enumerate(history):
        pipe.observe(Event(name, item_id, kind="click", timestamp=5e6 + n))
    return name


# ------------------------------------------------------------------ seeds
def test_fit_seed_reaches_the_models_and_is_deterministic() -> None:
    items = _cycle_items()
    events = _cycle_events(users=60)

    def fitted(seed):
        model = SequentialSource(**{**SMALL_SEQUENTIAL, "epochs": 3})
        pipe = build_pipeline(items, models=[model]).fit(events, seed=seed, show_progress=False)
        return pipe, model

    a, model_a = fitted(3)
    b, model_b = fitted(3)
    c, model_c = fitted(4)
    assert model_a.seed == model_b.seed == 3 and model_c.seed == 4
    for key, value in model_a.net.state_dict().items():
        assert torch.equal(value, model_b.net.state_dict()[key]), key
    assert not torch.equal(model_a.net.proj.weight, model_c.net.proj.weight)
    assert a.ranker.weights == b.ranker.weights
    user = events[0].user_id
    assert ids(a.recommend(user, 10, generate=False)) == ids(b.recommend(user, 10, generate=False))


def test_fit_seed_none_keeps_the_model_seed() -> None:
    model = SequentialSource(**{**SMALL_SEQUENTIAL, "epochs": 1, "seed": 11})
    build_pipeline(_cycle_items(), models=[model]).fit(_cycle_events(users=20), show_progress=False)
    assert model.seed == 11


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_fit_rejects_bad_seeds(seed) -> None:
    pipe = build_pipeline(_cycle_items(), models=())
    with pytest.raises(InvalidInputError, match="seed"):
        pipe.fit(_cycle_events(users=5), seed=seed, show_progress=False)
    assert len(pipe.profiles) == 0


# ------------------------------------------------------------------ cold start
def test_user_with_one_event_gets_that_items_neighbourhood(fitted_pipeline, genre_of) -> None:
    pipe = fitted_pipeline
    user = "one-event-user"
    try:
        pipe.observe(Event(user, "i003", kind="like"))  # a scifi item (3 % 6)
        recs = pipe.recommend(user, 10, generate=False)
        assert len(recs) == 10 and "i003" not in ids(recs)
        assert sum(genre_of[i] == "scifi" for i in ids(recs)) >= 6
    finally:
        pipe.forget(user)


def test_item_added_after_training_reaches_matching_users(
    pipeline_factory, favourites, genre_of
) -> None:
    pipe = pipeline_factory()
    new = Item(
        "fresh-western",
        "Sheriff of the Frontier",
        "cowboy sheriff saloon ranch horse outlaw gunfight frontier cattle desert",
        {"genres": ["western"]},
    )
    pipe.add_items([new])
    genre = {**genre_of, "fresh-western": "western"}

    def position(user):
        ranked = ids(pipe.recommend(user, 400, generate=False))
        return ranked.index("fresh-western"), ranked

    for user in [u for u, g in favourites.items() if g == "western"][:6]:
        at, ranked = position(user)
        # With no interactions yet it ranks inside the user's genre, above every other genre.
        assert all(genre[i] == "western" for i in ranked[:at]), user
        assert at < 60
    for user in [u for u, g in favourites.items() if g == "comedy"][:6]:
        at, ranked = position(user)
        assert at > len(ranked) // 4
    # The trained sources score the new row from its text, not as a blank row.
    rec = next(
        r for r in pipe.recommend("u004", 100, generate=False) if r.item_id == "fresh-western"
    )
    assert rec.explanation.features["text_similarity"] > 0.3
    assert rec.explanation.features["sequential"] > -1.0  # the floor for unscored rows is -2


# ------------------------------------------------------------------ evaluation
def test_rare_items_subset_by_hand() -> None:
    events = []
    for u in range(1, 7):  # users 1..6: p, q, then their own item s<u>
        events += [
            Event(str(u), "p", timestamp=1),
            Event(str(u), "q", timestamp=2),
            Event(str(u), f"s{u}", timestamp=3),
        ]
    events += [
        Event("7", "s1", timestamp=1),
        Event("7", "s2", timestamp=2),
        Event("7", "p", timestamp=3),
    ]
    split = leave_one_out(events)
    assert RARE_ITEM_THRESHOLD == 5
    assert split.item_counts("test") == {"p": 6, "q": 6, "s1": 1, "s2": 1}
    assert split.item_counts("valid") == {"p": 6, "s1": 1}
    assert split.subset_users("rare-items", "test") == {"1", "2", "3", "4", "5", "6"}
    assert split.subset_users("rare-items", "valid") == {str(u) for u in range(1, 8)}
    # User 7's popular target is left out of the rare subset's score.
    predictions = {str(u): [f"s{u}"] for u in range(1, 7)} | {"7": ["p"]}
    rare = evaluate_predictions(split, predictions, "test", subset="rare-items")
    assert rare.n_users == 6 and rare["recall@10"] == 1.0
    predictions["7"] = ["s3"]
    assert evaluate_predictions(split, predictions, "test", subset="rare-items")["recall@10"] == 1.0
    assert evaluate_predictions(split, predictions, "test")["recall@10"] == pytest.approx(6 / 7)


def test_evaluate_fits_and_scores_a_pipeline(items) -> None:
    events, _ = make_events(items, n_users=60, per_user=12, seed=5)
    pipe = build_pipeline(items, models=("ease",))
    result, predictions = evaluate(pipe, events, "test", show_progress=False, seed=0)
    split = leave_one_out(events)
    assert result.n_users == len(split.test) == len(predictions)
    for user, ranked in predictions.items():
        assert len(ranked) == 20 and not set(ranked) & split.excluded(user, "test")
    # The planted genre preference makes it far better than the most popular items.
    counts = {}
    for e in split.events_for("test"):
        counts[e.item_id] = counts.get(e.item_id, 0) + 1
    popular = sorted(counts, key=lambda i: (-counts[i], i))

    def pop(user, history, exclude, k):
        return [i for i in popular if i not in exclude][:k]

    baseline, _ = evaluate(pop, split, "test", show_progress=False)
    assert result["recall@20"] > baseline["recall@20"] + 0.1
    # The pipeline's profiles now hold exactly the test split's allowed history.
    user = next(iter(split.test))
    assert set(pipe.profile(user).seen) == split.excluded(user, "test")
    assert "recall" in result.format_table()


def test_evaluate_a_prefitted_pipeline_without_refitting(items) -> None:
    events, _ = make_events(items, n_users=30, per_user=10, seed=6)
    split = leave_one_out(events)
    pipe = build_pipeline(items, models=())
    with pytest.raises(InvalidInputError, match="fit"):
        evaluate(pipe, split, fit="yes", show_progress=False)
    unfitted, _ = evaluate(pipe, split, fit=False, show_progress=False)
    assert unfitted["recall@20"] == 0.0 and unfitted.stats["short_lists"] == unfitted.n_users
    click = [
        Event(e.user_id, e.item_id, kind="click", timestamp=e.timestamp)
        for e in split.events_for("test")
    ]
    pipe.fit(click, show_progress=False)
    again, predictions = evaluate(pipe, split, fit=False, show_progress=False)
    refit, predictions_refit = evaluate(pipe, split, show_progress=False)
    assert predictions == predictions_refit and again.metrics == refit.metrics


def test_models_named_in_from_catalog_follow_the_pipeline_device(monkeypatch) -> None:
    from llmrec import registry

    seen = []

    class Recording(SequentialSource):
        def __init__(self, **options):
            seen.append(options.get("device"))
            super().__init__(**{**options, "epochs": 1})

        name = "recording"

    monkeypatch.setitem(
        registry._check_kind("models"), "recording-seq", registry._Entry(Recording, None)
    )
    pipe = build_pipeline(_cycle_items(), models=("recording-seq", "ease"), device="cpu")
    assert seen == [torch.device("cpu")]
    assert pipe.retriever.models["recording"].device == torch.device("cpu")


def test_fit_profiles_equal_a_replay_of_every_event(items) -> None:
    """The fit reuses the held-out pass's profiles; they must equal a replay from scratch,
    also for users whose last events come after their last positive one (dislikes, low
    ratings, queries)."""
    events, _ = make_events(items, n_users=40, per_user=10)
    t = max(e.timestamp for e in events)
    tail = []
    for n, uid in enumerate(sorted({e.user_id for e in events})[::3]):
        tail.append(Event(uid, items[n].item_id, kind="dislike", timestamp=t + 1 + n))
        tail.append(Event(uid, None, kind="query", text="space robots", timestamp=t + 100 + n))
        tail.append(Event(uid, items[n + 1].item_id, kind="rate", value=1.0, timestamp=t + 200))
    events = events + tail
    fitted = build_pipeline(items, models=()).fit(events, show_progress=False)
    assert fitted.ranker.weights != build_pipeline(items, models=()).ranker.weights
    replayed = build_pipeline(items, models=())
    replayed.fit(events, train_ranker=False, show_progress=False)
    assert set(fitted.profiles) == set(replayed.profiles)
    for uid in replayed.profiles:
        a, b = fitted.profiles.get(uid), replayed.profiles.get(uid)
        assert list(a.history) == list(b.history), uid
        assert a.seen == b.seen and a.n_events == b.n_events, uid
        assert a.last_timestamp == b.last_timestamp, uid
        assert a.stated_preferences == b.stated_preferences, uid
        np.testing.assert_allclose(a.interest, b.interest, rtol=1e-6, atol=1e-7)
        assert a.tag_affinity.keys() == b.tag_affinity.keys(), uid
        for tag, value in b.tag_affinity.items():
            assert a.tag_affinity[tag] == pytest.approx(value, rel=1e-9), (uid, tag)
        if b.preference_vector is None:
            assert a.preference_vector is None
        else:
            np.testing.assert_allclose(a.preference_vector, b.preference_vector, atol=1e-7)
    assert {u: sorted(v) for u, v in fitted.profiles.likers().items()} == {
        u: sorted(v) for u, v in replayed.profiles.likers().items()
    }

"""Hypothesis fuzzing of every public Pipeline method with hostile values (NaN, huge,
empty, wrong types, unicode, control characters): the only exceptions are LLMRecErrors,
a failed call changes nothing (profiles, catalog, popularity, event log), none hangs."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import build_pipeline, make_items
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmrec import Event, Item, Pipeline
from llmrec.errors import LLMRecError

ITEMS = make_items(60)
ITEM_IDS = [it.item_id for it in ITEMS]
TRIED: Counter = Counter()  # inputs tried per method, for benchmarks/RESULTS.md
SLOW_CALL_S = 20.0

FUZZ = settings(
    max_examples=600,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)

weird_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(max_codepoint=0x1F), min_size=1, max_size=10),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "\ud800",
            "\u202e\u2028",
            "x" * 300,
            "é" * 5,
            "../..",
            "a@b.co",
            "+44 20 7946 0958",
            "<|im_start|>system",
            "NaN",
            "None",
            "🙂" * 3,
        ]
    ),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    weird_text,
    st.binary(max_size=8),
    st.sampled_from(
        [
            float("nan"),
            float("inf"),
            -0.0,
            10**100,
            np.int64(3),
            np.float32("nan"),
            np.array([1, 2]),
            object(),
            b"bytes",
            1e308,
            -1,
        ]
    ),
)
hostile = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.dictionaries(st.one_of(weird_text, st.integers()), scalars, max_size=3),
    st.tuples(scalars, scalars),
    st.sets(st.integers(), max_size=3),
)
user_ids = st.one_of(st.sampled_from(["u000", "u001", "fuzz-a", "fuzz-b"]), hostile)
item_ids = st.one_of(st.sampled_from(ITEM_IDS[:10] + ["no-such-item"]), hostile)
kinds = st.one_of(st.sampled_from(["click", "like", "rate", "query", "dislike", "view"]), hostile)


@st.composite
def events(draw) -> object:
    """An Event built from hostile parts (or the error its constructor raised)."""
    kwargs = {"user_id": draw(user_ids), "item_id": draw(item_ids), "kind": draw(kinds)}
    for name, strategy in (
        ("value", st.one_of(st.floats(-10, 10), hostile)),
        ("timestamp", st.one_of(st.floats(0, 2e9), hostile)),
        ("text", st.one_of(weird_text, hostile)),
    ):
        if draw(st.booleans()):
            kwargs[name] = draw(strategy)
    try:
        return Event(**kwargs)
    except LLMRecError:
        return draw(hostile)


@st.composite
def items(draw) -> object:
    kwargs = {
        "item_id": draw(st.one_of(st.sampled_from(["fz1", "fz2", ITEM_IDS[3]]), hostile)),
        "title": draw(st.one_of(st.just("A title"), weird_text, hostile)),
    }
    if draw(st.booleans()):
        kwargs["text"] = draw(st.one_of(weird_text, hostile))
    if draw(st.booleans()):
        kwargs["attributes"] = draw(
            st.one_of(
                st.dictionaries(
                    st.one_of(weird_text, st.integers(), st.none()),
                    st.one_of(scalars, st.lists(scalars, max_size=3)),
                    max_size=3,
                ),
                hostile,
            )
        )
    try:
        return Item(**kwargs)
    except LLMRecError:
        return draw(hostile)


@st.composite
def arguments(draw, valid: dict, strategies: dict) -> dict:
    """``valid`` keyword arguments with one or two of them drawn from ``strategies``
    (a hostile value among sane ones reaches code that a wholly hostile call never does)."""
    out = dict(valid)
    names = draw(st.lists(st.sampled_from(sorted(strategies)), min_size=1, max_size=2, unique=True))
    for name in names:
        out[name] = draw(strategies[name])
    return out


some_events = st.one_of(st.lists(st.one_of(events(), hostile), max_size=4), hostile, events())
some_items = st.one_of(st.lists(st.one_of(items(), hostile), max_size=3), hostile, items())


def snapshot(pipe: Pipeline) -> tuple:
    users = sorted(pipe.profiles)
    return (
        pipe.catalog.version,
        tuple(pipe.catalog.item_ids()),
        tuple(users),
        tuple(pipe.profiles.get(u).n_events for u in users),
        tuple(len(pipe.profiles.get(u).seen) for u in users),
        float(pipe.retriever.popularity.counts.sum()),
        len(pipe.retriever.index),
        None if pipe.event_log is None else pipe.event_log.last_sequence,
        pipe.ranker.weights,
    )


def attempt(pipe: Pipeline | None, method: str, call) -> object:
    """Run ``call``; an LLMRecError must leave ``pipe`` as it was; anything else fails."""
    TRIED[method] += 1
    before = snapshot(pipe) if pipe is not None else None
    started = time.perf_counter()
    try:
        result = call()
    except LLMRecError:
        if pipe is not None:
            assert snapshot(pipe) == before, f"{method} failed half-way"
        result = None
    assert time.perf_counter() - started < SLOW_CALL_S, f"{method} took too long"
    return result


@pytest.fixture(scope="module")
def victim(tmp_path_factory) -> Pipeline:
    pipe = build_pipeline(ITEMS, models=())
    pipe.open_event_log(tmp_path_factory.mktemp("fuzz") / "events.log", fsync="never")
    pipe.add_user("fuzz-a")
    pipe.observe_many([Event("u000", ITEM_IDS[0]), Event("u001", ITEM_IDS[1])])
    yield pipe
    pipe.close()


@pytest.fixture(scope="module")
def saved(victim, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fuzz-save") / "model"
    victim.save_pretrained(path)
    return path


RECOMMEND = arguments(
    {
        "user_id": "u000",
        "k": 5,
        "query": None,
        "exclude_seen": True,
        "filters": None,
        "generate": False,
        "diversity": None,
        "budget_s": None,
    },
    {
        "user_id": user_ids,
        "k": st.one_of(st.integers(1, 400), hostile),
        "query": st.one_of(weird_text, hostile),
        "exclude_seen": hostile,
        "filters": st.one_of(
            st.dictionaries(st.sampled_from(["genres", "year"]), hostile, max_size=2), hostile
        ),
        "generate": st.one_of(st.booleans(), hostile),
        "diversity": st.one_of(st.floats(0, 1), hostile),
        "budget_s": st.one_of(st.floats(0, 1), hostile),
    },
)


@FUZZ
@given(kwargs=RECOMMEND)
def test_recommend(victim, kwargs) -> None:
    user, k = kwargs.pop("user_id"), kwargs.pop("k")
    recs = attempt(victim, "recommend", lambda: victim.recommend(user, k, **kwargs))
    if recs is not None:
        assert len(recs) <= int(k) and all(math.isfinite(r.score) for r in recs)
        assert len({r.item_id for r in recs}) == len(recs)
    attempt(
        victim,
        "recommend_batch",
        lambda: victim.recommend_batch(user if isinstance(user, list) else [user], k, **kwargs),
    )
    kwargs.pop("generate")
    attempt(victim, "recommend_stream", lambda: list(victim.recommend_stream(user, k, **kwargs)))


@FUZZ
@given(event=st.one_of(events(), hostile), batch=some_events)
def test_observe(victim, event, batch) -> None:
    attempt(victim, "observe", lambda: victim.observe(event))
    attempt(victim, "observe_many", lambda: victim.observe_many(batch))


@FUZZ
@given(user=user_ids, preferences=st.one_of(st.none(), weird_text, hostile))
def test_users(victim, user, preferences) -> None:
    attempt(victim, "add_user", lambda: victim.add_user(user, preferences))
    attempt(victim, "profile", lambda: victim.profile(user))
    if not (isinstance(user, str) and user in ("u000", "u001")):  # keep the fixture's users
        attempt(victim, "forget", lambda: victim.forget(user))


@FUZZ
@given(
    new=some_items,
    gone=st.one_of(
        st.lists(st.one_of(st.sampled_from(["fz1", "fz2", "nope"]), hostile), max_size=3), hostile
    ),
)
def test_catalog_changes(victim, new, gone) -> None:
    attempt(victim, "add_items", lambda: victim.add_items(new))
    attempt(victim, "remove_items", lambda: victim.remove_items(gone))


@settings(FUZZ, max_examples=100)
@given(
    kwargs=arguments(
        {
            "events": [Event("u000", ITEM_IDS[2]), Event("u001", ITEM_IDS[3])],
            "train_ranker": True,
            "ranker_users": 10,
            "seed": 0,
        },
        {"events": some_events, "train_ranker": hostile, "ranker_users": hostile, "seed": hostile},
    )
)
def test_fit(victim, kwargs) -> None:
    batch = kwargs.pop("events")
    attempt(victim, "fit", lambda: victim.fit(batch, show_progress=False, **kwargs))


def fuzz_path(base: Path, value: object) -> object:
    """Hostile path values that stay inside ``base`` when they are text."""
    if isinstance(value, str):
        return str(base / value.replace("/", "_").replace("\\", "_").replace("..", "_"))
    return value


@settings(FUZZ, max_examples=150)
@given(name=st.one_of(weird_text, hostile))
def test_save_pretrained(victim, tmp_path_factory, name) -> None:
    base = tmp_path_factory.mktemp("fuzz-saves")
    (base / "foreign").mkdir()
    (base / "foreign" / "precious.txt").write_text("not llmrec")
    (base / "a-file").write_text("x")
    for path in (fuzz_path(base, name), str(base / "foreign"), str(base / "a-file")):
        attempt(victim, "save_pretrained", lambda p=path: victim.save_pretrained(p))
    assert (base / "foreign" / "precious.txt").read_text() == "not llmrec"


@settings(FUZZ, max_examples=200)
@given(
    name=st.one_of(weird_text, hostile),
    kwargs=arguments(
        {"device": "cpu", "llm": "template", "llm_options": None, "pseudonymize_key": None},
        {
            "device": hostile,
            "llm": hostile,
            "llm_options": st.one_of(st.dictionaries(weird_text, scalars, max_size=2), hostile),
            "pseudonymize_key": hostile,
        },
    ),
)
def test_from_pretrained(saved, tmp_path_factory, name, kwargs) -> None:
    base = tmp_path_factory.mktemp("fuzz-load")
    attempt(None, "from_pretrained", lambda: Pipeline.from_pretrained(fuzz_path(base, name)))
    pipe = attempt(None, "from_pretrained", lambda: Pipeline.from_pretrained(saved, **kwargs))
    if pipe is not None:
        attempt(pipe, "recommend", lambda: pipe.recommend("u000", 2, generate=True))


@settings(FUZZ, max_examples=150)
@given(
    kwargs=arguments(
        {"path": "events.log", "fsync": "always", "batch_interval": 0.2, "allow_new": False},
        {
            "path": st.one_of(weird_text, hostile),
            "fsync": hostile,
            "batch_interval": hostile,
            "allow_new": hostile,
        },
    )
)
def test_open_event_log(tmp_path_factory, kwargs) -> None:
    pipe = build_pipeline(ITEMS[:12], models=())
    base = tmp_path_factory.mktemp("fuzz-log")
    kwargs["path"] = fuzz_path(base, kwargs["path"])
    attempt(pipe, "open_event_log", lambda: pipe.open_event_log(**kwargs))
    pipe.close()


@settings(FUZZ, max_examples=300)
@given(
    kwargs=arguments(
        {
            "items": ITEMS[:8],
            "encoder": "hashing",
            "encoder_options": None,
            "index": "auto",
            "llm": "template",
            "device": "cpu",
            "diversity": 0.0,
            "n_candidates": 50,
            "half_life": 5.0,
            "models": (),
            "llm_options": None,
            "pseudonymize_key": None,
        },
        {
            "items": some_items,
            "encoder": st.one_of(
                st.dictionaries(weird_text, scalars, max_size=2),
                st.integers(),
                st.none(),
                st.floats(),
                st.sampled_from(["no-such-encoder", ""]),
            ),
            "encoder_options": st.one_of(
                st.dictionaries(st.sampled_from(["dim", "x", ""]), scalars, max_size=2), hostile
            ),
            "index": hostile,
            "llm": hostile,
            "device": hostile,
            "diversity": hostile,
            "n_candidates": hostile,
            "half_life": hostile,
            "models": st.one_of(
                st.lists(st.one_of(st.sampled_from(["nope"]), hostile), max_size=2), hostile
            ),
            "llm_options": hostile,
            "pseudonymize_key": hostile,
        },
    )
)
def test_from_catalog(kwargs) -> None:
    if isinstance(kwargs["models"], str) and kwargs["models"] in ("auto", "ease", "sequential"):
        kwargs["models"] = ()  # real trainable models are fine but slow to build here
    catalog = kwargs.pop("items")
    pipe = attempt(
        None, "from_catalog", lambda: Pipeline.from_catalog(catalog, show_progress=False, **kwargs)
    )
    if pipe is not None:
        pipe.add_user("x", preferences="space robot")
        attempt(pipe, "recommend", lambda: pipe.recommend("x", 3, generate=True))


@settings(FUZZ, max_examples=150)
@given(
    kwargs=arguments(
        {
            "catalog": "catalog",
            "encoder": "encoder",
            "retriever": "retriever",
            "ranker": "ranker",
            "profiles": "profiles",
            "llm": "template",
            "llm_options": None,
            "device": "cpu",
            "pseudonymize_key": None,
        },
        {
            "catalog": hostile,
            "encoder": hostile,
            "retriever": hostile,
            "ranker": hostile,
            "profiles": hostile,
            "llm": hostile,
            "llm_options": hostile,
            "device": hostile,
            "pseudonymize_key": hostile,
        },
    )
)
def test_constructor(victim, kwargs) -> None:
    for name in ("catalog", "encoder", "retriever", "ranker", "profiles"):
        if isinstance(kwargs[name], str) and kwargs[name] == name:
            kwargs[name] = getattr(victim, name)
    pipe = attempt(None, "Pipeline", lambda: Pipeline(**kwargs))
    if pipe is not None:
        attempt(None, "recommend", lambda: pipe.recommend("u000", 2))


@settings(FUZZ, max_examples=100)
@given(user=user_ids, event=st.one_of(events(), hostile), new=some_items, gone=hostile)
def test_async_variants(victim, user, event, new, gone) -> None:
    async def main() -> None:
        for name, coroutine in (
            ("arecommend", lambda: victim.arecommend(user, 3, generate=False)),
            ("aobserve", lambda: victim.aobserve(event)),
            ("aobserve_many", lambda: victim.aobserve_many([event])),
            ("aadd_items", lambda: victim.aadd_items(new)),
            ("aremove_items", lambda: victim.aremove_items(gone)),
        ):
            TRIED[name] += 1
            before = snapshot(victim)
            try:
                await coroutine()
            except LLMRecError:
                assert snapshot(victim) == before, f"{name} failed half-way"

    asyncio.run(main())


def test_zz_report_inputs_tried() -> None:
    # Runs last in this module: the figure for benchmarks/RESULTS.md.
    print(f"\nfuzz: {sum(TRIED.values())} calls over {len(TRIED)} methods: {dict(TRIED)}")

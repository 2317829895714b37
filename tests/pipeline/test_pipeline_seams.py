"""The pipeline's seams: what ``llm`` may be, the one saved generator shape, one definition
of a positive event, and what the pipeline hands the ranker and the generator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import build_pipeline, make_events, make_items, no_network

from llmrec import ContentGenerator, Event, GeneratedText, Pipeline
from llmrec.errors import ConfigError, InvalidInputError
from llmrec.generation.llms.template import TemplateChat
from llmrec.pipeline._request import RecommendRequest
from llmrec.storage.io import write_manifest

ITEMS = make_items(60)


@pytest.fixture(scope="module")
def small() -> Pipeline:
    """A small fitted pipeline (read-only)."""
    events, _ = make_events(ITEMS, n_users=24, per_user=6)
    return build_pipeline(ITEMS).fit(events, show_progress=False)


# --------------------------------------------------------------------------- llm


def test_a_chat_backend_instance_is_wrapped_over_the_catalog() -> None:
    pipe = Pipeline.from_catalog(
        ITEMS, encoder="hashing", llm=TemplateChat(), device="cpu", models=(), show_progress=False
    )
    assert isinstance(pipe.generator, ContentGenerator)
    assert pipe.generator.catalog is pipe.catalog
    pipe.add_user("u", preferences="space robot alien")
    recs = pipe.recommend("u", 3)
    assert len(recs) == 3 and all(r.text and r.text_source == "template" for r in recs)


class _GenerateOnly:
    """Has a ``generate`` method, but is neither a ContentGenerator nor a ChatBackend."""

    def generate(self, requests):
        return []


@pytest.mark.parametrize("llm", [_GenerateOnly(), 42, None, b"template", "no-such-backend"])
def test_any_other_llm_is_refused_at_construction(llm, small) -> None:
    with pytest.raises(ConfigError, match="llm"):
        Pipeline(
            small.catalog,
            small.encoder,
            small.retriever,
            small.ranker,
            small.profiles,
            llm=llm,
            device="cpu",
        )
    with pytest.raises(ConfigError, match="llm"):
        Pipeline.from_catalog(
            ITEMS, encoder="hashing", llm=llm, device="cpu", models=(), show_progress=False
        )


def test_bad_options_for_a_chat_backend_are_a_config_error() -> None:
    with pytest.raises(ConfigError):
        Pipeline.from_catalog(
            ITEMS,
            encoder="hashing",
            llm=TemplateChat(),
            device="cpu",
            llm_options={"model": "m"},
            show_progress=False,
        )


# --------------------------------------------------------------------------- saved generator


def test_an_openai_generator_survives_save_and_load(small, tmp_path: Path, monkeypatch) -> None:
    no_network(monkeypatch)
    generator = ContentGenerator(
        "openai",
        catalog=small.catalog,
        model="m",
        max_words=30,
        backend_options={"base_url": "http://127.0.0.1:9/v1"},
    )
    pipe = Pipeline(
        small.catalog,
        small.encoder,
        small.retriever,
        small.ranker,
        small.profiles,
        llm=generator,
        device="cpu",
    )
    pipe.save_pretrained(tmp_path / "s")
    saved = json.loads((tmp_path / "s" / "llmrec.json").read_text())["components"]["generator"]
    assert saved == generator.config() and set(saved) == {"backend", "options"}
    loaded = Pipeline.from_pretrained(tmp_path / "s", device="cpu", allow_remote=True)
    assert loaded.generator.backend_name == "openai"
    assert loaded.generator.config() == generator.config()
    # Overriding the backend drops the saved backend's own options (model, base_url, ...).
    template = Pipeline.from_pretrained(tmp_path / "s", device="cpu", llm="template")
    assert template.generator.backend_name == "template" and template.generator.max_words == 30


def test_an_unbuilt_generator_is_saved_in_the_same_shape(small, tmp_path: Path) -> None:
    pipe = Pipeline(
        small.catalog,
        small.encoder,
        small.retriever,
        small.ranker,
        small.profiles,
        llm="template",
        llm_options={"max_words": 25},
        device="cpu",
    )
    pipe.save_pretrained(tmp_path / "s")
    saved = json.loads((tmp_path / "s" / "llmrec.json").read_text())["components"]["generator"]
    assert saved == {"backend": "template", "options": {"max_words": 25}}
    assert Pipeline.from_pretrained(tmp_path / "s", device="cpu").generator.max_words == 25


@pytest.mark.parametrize(
    "old",
    [
        {"llm": "template", "options": {"max_words": 25}},
        {"llm": "default", "config": {"backend": "template", "options": {"max_words": 25}}},
    ],
)
def test_older_generator_shapes_still_load(small, tmp_path: Path, old) -> None:
    small.save_pretrained(tmp_path / "s")
    manifest_file = tmp_path / "s" / "llmrec.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["components"]["generator"] = old
    write_manifest(tmp_path / "s", manifest)  # resealed: an older save, not an edited one
    generator = Pipeline.from_pretrained(tmp_path / "s", device="cpu").generator
    assert generator.backend_name == "template" and generator.max_words == 25


# --------------------------------------------------------------------------- positive events


def _fit_calls(monkeypatch, pipe: Pipeline) -> list[dict]:
    """Record every ``retriever.fit`` call of ``pipe`` (rows and held-out pairs)."""
    calls: list[dict] = []
    fit = pipe.retriever.fit

    def recording(user_rows, *, valid=None, models="all", **options):
        calls.append({"rows": [list(r) for r in user_rows], "valid": valid})
        return fit(user_rows, valid=valid, models=models, **options)

    monkeypatch.setattr(pipe.retriever, "fit", recording)
    return calls


def _with_last_rating(value: float, item_id: str) -> list[Event]:
    """Click histories, then each user's last event: a rating ``value`` of ``item_id``."""
    events, _ = make_events(ITEMS, n_users=24, per_user=6)
    events = [e for e in events if e.item_id != item_id]
    users = sorted({e.user_id for e in events})
    return events + [
        Event(u, item_id, kind="rate", value=value, timestamp=2e6 + n) for n, u in enumerate(users)
    ]


def test_a_one_star_rating_is_never_the_held_out_target_nor_a_training_row(monkeypatch) -> None:
    pipe = build_pipeline(ITEMS, models=())
    calls = _fit_calls(monkeypatch, pipe)
    pipe.fit(_with_last_rating(1, "i059"), show_progress=False)
    row = pipe.catalog.row("i059")
    held_out_pass = [c for c in calls if c["valid"] is not None]
    assert len(held_out_pass) == 1 and len(held_out_pass[0]["valid"]) >= 10
    assert all(target != row for _, target in held_out_pass[0]["valid"])
    assert all(row not in rows for c in calls for rows in c["rows"])


def test_a_two_star_rating_is_not_positive(monkeypatch) -> None:
    rating = Event("u000", "i058", kind="rate", value=2, timestamp=1.0)
    assert rating.weight == 0 and not rating.is_positive
    pipe = build_pipeline(ITEMS, models=())
    calls = _fit_calls(monkeypatch, pipe)
    pipe.fit(_with_last_rating(2, "i058"), show_progress=False)
    row = pipe.catalog.row("i058")
    assert calls and all(row not in rows for c in calls for rows in c["rows"])
    assert all(target != row for c in calls if c["valid"] for _, target in c["valid"])
    assert pipe.retriever.popularity.counts[row] == 0
    pipe.observe(Event("u000", "i058", kind="rate", value=2, timestamp=3e6))
    assert pipe.retriever.popularity.counts[row] == 0
    assert "i058" not in pipe.profile("u000").recent_items()
    assert "i058" in pipe.profile("u000").seen


def test_positive_events_count_towards_popularity_and_forget_takes_them_back() -> None:
    pipe = build_pipeline(ITEMS, models=())
    row = pipe.catalog.row("i010")
    pipe.observe_many(
        [
            Event("a", "i010", kind="rate", value=5, timestamp=1.0),
            Event("a", "i010", kind="rate", value=1, timestamp=2.0),
            Event("b", "i010", kind="click", timestamp=3.0),
        ]
    )
    assert pipe.retriever.popularity.counts[row] == 2
    pipe.forget("a")
    assert pipe.retriever.popularity.counts[row] == 1


# --------------------------------------------------------------------------- contracts


def test_rankers_start_at_the_sources_default_weights(small) -> None:
    fresh = build_pipeline(ITEMS)
    want = {**fresh.retriever.default_weights, "tag_affinity": 0.5}
    assert fresh.ranker.weights == want
    assert set(want) == set(small.ranker.feature_names)


def test_reason_requests_carry_every_signals_relation(small, monkeypatch) -> None:
    seen = []

    def generate(requests, *, budget_s=None, kind="reason"):
        assert kind == "reason"
        seen.extend(requests)
        return [GeneratedText("text", "template") for _ in requests]

    monkeypatch.setattr(small.generator, "generate", generate)
    recs = small.recommend("u001", 3)
    assert len(seen) == 3 and [r.text for r in recs] == ["text"] * 3
    for request in seen:
        assert dict(request.relations) == {
            **small.retriever.relations,
            "tag_affinity": "shared_tags",
        }
        assert set(request.signals) <= set(request.relations)


# --------------------------------------------------------------------------- requests


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"k": True}, InvalidInputError),
        ({"k": 0}, InvalidInputError),
        ({"exclude_seen": 1}, ConfigError),
        ({"generate": "yes"}, ConfigError),
        ({"diversity": True}, InvalidInputError),
        ({"budget_s": -1}, ConfigError),
        ({"budget_s": True}, ConfigError),
        ({"budget_s": float("nan")}, ConfigError),
        ({"filters": {"genres": [["unhashable"]]}}, InvalidInputError),
        ({"query": "\ud800"}, InvalidInputError),
    ],
)
def test_request_arguments_are_checked_once_up_front(small, kwargs, error) -> None:
    with pytest.raises(error):
        RecommendRequest.make(**kwargs)
    with pytest.raises(error):  # before any ranking, whether or not text is wanted
        small.recommend("u001", **{"k": 3, "generate": False, **kwargs})
    if "generate" not in kwargs:  # recommend_stream always generates
        with pytest.raises(error):
            small.recommend_stream("u001", **{"k": 3, **kwargs})


def test_a_request_keeps_its_checked_values() -> None:
    request = RecommendRequest.make(
        5, query="funny, mail me at eve@example.com", filters={"genres": "comedy"}, budget_s=2
    )
    assert request.k == 5 and request.budget_s == 2.0 and request.diversity is None
    assert "eve@example.com" not in request.query and request.query.startswith("funny")
    assert request.predicate is not None and request.exclude_seen and request.generate

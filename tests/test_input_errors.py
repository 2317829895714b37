"""Mistakes a new user makes are refused when the pipeline is made, with the fix named.

Each case here used to be accepted by ``from_catalog`` and fail only at the first request,
or fail with a bare type error or a misleading message.
"""

from __future__ import annotations

import logging
import warnings

import pytest
from conftest import build_pipeline, make_items

import llmrec
from llmrec import ContentGenerator, Event, Item, Pipeline
from llmrec.catalog import Catalog
from llmrec.errors import ConfigError, InvalidInputError, LLMRecError, PersistenceError


@pytest.fixture(scope="module")
def small_items() -> list[Item]:
    return make_items(12)


# --------------------------------------------------------------------------- llm
def test_unknown_llm_name_points_to_the_openai_backend(small_items) -> None:
    with pytest.raises(ConfigError) as info:
        build_pipeline(small_items, llm="gpt-4")
    message = str(info.value)
    assert "'gpt-4'" in message and "'default'" in message
    for name in llmrec.available_backends("llms"):
        assert repr(name) in message
    assert "llm='openai'" in message
    assert "{'model': 'gpt-4', 'backend_options': {'base_url'" in message


def test_the_generator_refuses_an_unknown_name_with_the_same_hint() -> None:
    with pytest.raises(ConfigError, match="llm='openai'"):
        ContentGenerator("gpt-4", catalog=Catalog())


def test_openai_without_base_url_fails_at_from_catalog(small_items, monkeypatch) -> None:
    monkeypatch.delenv("LLMREC_OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError) as info:
        build_pipeline(small_items, llm="openai", llm_options={"model": "gpt-4"})
    assert "base_url" in str(info.value) and "LLMREC_OPENAI_BASE_URL" in str(info.value)
    assert "backend_options" in str(info.value)


def test_openai_with_a_base_url_or_its_variable_passes(monkeypatch) -> None:
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("the check touched the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.delenv("LLMREC_OPENAI_BASE_URL", raising=False)
    options = {"model": "gpt-4", "backend_options": {"base_url": "http://127.0.0.1:9/v1"}}
    ContentGenerator.check_config("openai", **options)
    monkeypatch.setenv("LLMREC_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    ContentGenerator.check_config("openai", model="gpt-4")


def test_a_backend_option_at_the_top_level_is_pointed_to_backend_options(small_items) -> None:
    options = {"model": "gpt-4", "base_url": "http://127.0.0.1:9/v1"}
    with pytest.raises(ConfigError) as info:
        build_pipeline(small_items, llm="openai", llm_options=options)
    assert "'base_url'" in str(info.value)
    assert "backend_options={'base_url': ...}" in str(info.value)


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"max_words": 2}, "max_words"),
        ({"budget_s": -1}, "budget_s"),
        ({"backend_options": {"no_such_option": 1}}, "no_such_option"),
    ],
)
def test_bad_generator_options_fail_at_from_catalog(small_items, options, needle) -> None:
    with pytest.raises(ConfigError, match=needle):
        build_pipeline(small_items, llm="transformers", llm_options=options)


def test_a_hub_model_offline_and_not_cached_fails_at_from_catalog(small_items, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    options = {"model": "llmrec-tests/no-such-model"}
    with pytest.raises(ConfigError) as info:
        build_pipeline(small_items, llm="transformers", llm_options=options)
    message = str(info.value)
    assert "'llmrec-tests/no-such-model'" in message and "HF_HUB_OFFLINE" in message
    assert "local cache" in message
    with pytest.raises(ConfigError, match="HF_HUB_OFFLINE"):
        ContentGenerator.check_config("default", **options)


def test_a_cached_hub_model_or_hub_access_passes_the_check(monkeypatch) -> None:
    import socket

    import huggingface_hub

    def refuse(*args, **kwargs):
        raise AssertionError("the check touched the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(
        huggingface_hub, "try_to_load_from_cache", lambda *a, **k: "/cache/config.json"
    )
    ContentGenerator.check_config("transformers", model="llmrec-tests/no-such-model")
    monkeypatch.delattr(huggingface_hub, "try_to_load_from_cache")  # online: not even asked
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    ContentGenerator.check_config("transformers", model="llmrec-tests/no-such-model")


def test_a_missing_local_model_path_offline_is_refused(small_items, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="neither a local path nor a Hugging Face hub id"):
        build_pipeline(small_items, llm="transformers", llm_options={"model": "/no/such.gguf"})


# --------------------------------------------------------------------------- device, encoder
@pytest.mark.parametrize(("device", "meant"), [("gpu", "'cuda'"), ("GPU:1", "'cuda:1'")])
def test_device_gpu_names_cuda(small_items, device, meant) -> None:
    with pytest.raises(ConfigError) as info:
        build_pipeline(small_items, device=device)
    message = str(info.value)
    assert f"use {meant} (or 'auto')" in message
    assert "Expected one of" not in message and "xla" not in message  # no torch device list


@pytest.mark.parametrize("encoder", ["minilm", 42])
def test_encoder_errors_list_default(small_items, encoder) -> None:
    with pytest.raises(ConfigError) as info:
        build_pipeline(small_items, encoder=encoder)
    message = str(info.value)
    assert "'default'" in message
    for name in llmrec.available_backends("encoders"):
        assert repr(name) in message


def test_max_history_is_kept_per_user_and_checked_first(small_items) -> None:
    pipe = build_pipeline(small_items, max_history=2)
    items = [i.item_id for i in small_items[:3]]
    pipe.observe_many([Event(user_id="u", item_id=i, kind="purchase") for i in items])
    assert [e.item_id for e in pipe.profile("u").history] == items[1:]
    for bad in (0, "500", 2.5):
        with pytest.raises(ConfigError, match="max_history"):
            build_pipeline(small_items, max_history=bad)


# --------------------------------------------------------------------------- from_pretrained
def test_from_pretrained_on_a_file_says_it_is_not_a_save_directory(tmp_path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text("item_id,title\n1,One\n", encoding="utf-8")
    with pytest.raises(PersistenceError) as info:
        Pipeline.from_pretrained(path)
    message = str(info.value)
    assert "is a file, not a save directory" in message
    assert "llmrec.json" in message and "save_pretrained" in message
    assert "read_items" in message
    with pytest.raises(PersistenceError, match="does not exist"):
        Pipeline.from_pretrained(tmp_path / "missing")


# --------------------------------------------------------------------------- items
def test_item_with_other_field_names_names_the_fields() -> None:
    with pytest.raises(InvalidInputError) as info:
        Item(id="1", name="One")  # type: ignore[call-arg]
    message = str(info.value)
    assert "id= -> use item_id=" in message and "name= -> use title=" in message
    assert isinstance(info.value, TypeError)  # still what the dataclass raised before


def test_item_with_an_attribute_keyword_points_to_attributes() -> None:
    with pytest.raises(InvalidInputError, match=r"attributes=\{\.\.\.\}"):
        Item("1", "One", year=1999)  # type: ignore[call-arg]


def test_the_wrapped_constructor_keeps_the_dataclass() -> None:
    item = Item("1", "One", attributes={"year": 1999})
    import dataclasses
    import pickle

    assert dataclasses.replace(item, title="Two").title == "Two"
    assert pickle.loads(pickle.dumps(item)) == item
    assert [f.name for f in dataclasses.fields(Item)] == ["item_id", "title", "text", "attributes"]


@pytest.mark.parametrize("where", ["from_catalog", "add_items"])
def test_dicts_instead_of_items_name_the_loaders(small_items, where) -> None:
    records = [{"item_id": "x1", "title": "X"}]
    if where == "from_catalog":
        with pytest.raises(InvalidInputError) as info:
            build_pipeline(records)
    else:
        pipe = build_pipeline(small_items)
        with pytest.raises(InvalidInputError) as info:
            pipe.add_items(records)
        assert "x1" not in pipe.catalog
    message = str(info.value)
    assert "items[0] is a dict" in message
    assert "llmrec.Item.from_dict(d)" in message and "llmrec.from_pandas(df)" in message


def test_a_data_frame_instead_of_items_names_from_pandas(small_items) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"item_id": ["a"], "title": ["A"]})
    with pytest.raises(InvalidInputError, match=r"llmrec\.from_pandas\(df\)"):
        build_pipeline(frame)
    with pytest.raises(InvalidInputError, match="read_items"):
        build_pipeline("items.csv")


def test_item_from_dict_maps_keys_and_keeps_the_rest_as_attributes() -> None:
    item = Item.from_dict(
        {"item_id": 7, "title": "Seven", "text": "a thriller", "year": 1995, "none": None}
    )
    assert item == Item("7", "Seven", "a thriller", {"year": 1995})
    mapped = Item.from_dict(
        {"sku": "s1", "name": "Lamp", "about": "bright", "attributes": {"price": 9.5}, "w": 2},
        id_key="sku",
        title_key="name",
        text_key="about",
    )
    assert mapped == Item("s1", "Lamp", "bright", {"price": 9.5, "w": 2})
    with pytest.raises(InvalidInputError) as info:
        Item.from_dict({"id": "1", "name": "One"})
    assert "'item_id' and 'title'" in str(info.value) and "id_key=" in str(info.value)
    with pytest.raises(InvalidInputError, match="mapping"):
        Item.from_dict(["1", "One"])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- ratings
def test_a_rating_outside_the_scale_warns_naming_the_scale(small_items, caplog) -> None:
    pipe = build_pipeline(small_items)
    item = small_items[0].item_id
    with caplog.at_level(logging.WARNING), pytest.warns(UserWarning, match=r"1\.\.5") as record:
        pipe.observe(Event("u1", item, kind="rate", value=10, timestamp=1.0))
    assert len(record) == 1 and "10" in str(record[0].message)
    assert record[0].filename == __file__  # points at the caller's line
    assert any("rating scale 1..5" in r.getMessage() for r in caplog.records)
    assert len(pipe.profile("u1").history) == 1  # accepted, as before
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pipe.observe(Event("u1", item, kind="rate", value=5, timestamp=2.0))
        pipe.observe(Event("u1", item, kind="rate", value=1, timestamp=3.0))


def test_one_warning_for_many_ratings_outside_the_scale(small_items) -> None:
    pipe = build_pipeline(small_items, models=())
    events = [
        Event(f"u{n}", item.item_id, kind="rate", value=8.0 + n % 3, timestamp=float(n))
        for n, item in enumerate(small_items)
    ]
    with pytest.warns(UserWarning) as record:
        pipe.fit(events, show_progress=False)
    messages = [str(w.message) for w in record if "rating scale" in str(w.message)]
    assert len(messages) == 1 and messages[0].startswith(f"{len(events)} rating(s)")


def test_rating_kind_named_rating_points_to_rate() -> None:
    with pytest.raises(LLMRecError, match="kind='rate'"):
        Event("u1", "i1", kind="rating", value=4)


# --------------------------------------------------------------------------- files
def test_build_names_the_events_line_of_an_unknown_item_and_can_skip_it(
    tmp_path, capsys, caplog
) -> None:
    from llmrec.apps.cli import main

    (tmp_path / "items.csv").write_text("item_id,title\na,Alpha\nb,Beta\n", encoding="utf-8")
    events = tmp_path / "events.csv"
    events.write_text("user_id,item_id\nu1,a\nu1,zzz\nu2,b\n", encoding="utf-8")
    command = ["build", str(tmp_path / "items.csv"), "--events", str(events), "-o"]
    command += [str(tmp_path / "pipe"), "--encoder", "hashing", "--llm", "template"]
    command += ["--models", "none", "--quiet", "--device", "cpu"]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert f"{events}:3: unknown item id 'zzz'" in err and "skip_unknown" in err
    with caplog.at_level(logging.WARNING):
        assert main([*command, "--skip-unknown"]) == 0
    assert any("skipped 1 event(s)" in r.getMessage() for r in caplog.records)
    pipe = Pipeline.from_pretrained(tmp_path / "pipe", device="cpu")
    assert [e.item_id for e in pipe.profile("u1").history] == ["a"]

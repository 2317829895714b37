"""Validation of the frozen value types: Item and Event."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmrec.errors import InvalidEventError, InvalidInputError
from llmrec.types import (
    EVENT_WEIGHTS,
    MAX_ID_LENGTH,
    MAX_TEXT_LENGTH,
    Event,
    Explanation,
    GeneratedText,
    Item,
    Recommendation,
)

# --------------------------------------------------------------------------- Item


def test_valid_item_keeps_fields_and_copies_attributes() -> None:
    attrs = {"genres": ["comedy"], "year": 1999}
    item = Item("i1", "Title", "text", attrs)
    attrs["year"] = 2000
    assert item.attributes["year"] == 1999
    assert item.to_dict() == {
        "item_id": "i1",
        "title": "Title",
        "text": "text",
        "attributes": {"genres": ["comedy"], "year": 1999},
    }
    assert Item(**item.to_dict()) == item


def test_item_is_frozen() -> None:
    item = Item("i1", "Title")
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.title = "Other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("item_id", "fragment"),
    [
        ("", "''"),
        ("x" * (MAX_ID_LENGTH + 1), "xxxx"),
        ("bad\nid", "bad\\nid"),
        ("tab\tid", "tab\\tid"),
        ("nul\x00id", "nul\\x00id"),
    ],
)
def test_item_rejects_bad_ids_with_the_value_in_the_message(item_id: str, fragment: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        Item(item_id, "Title")
    assert fragment in str(info.value)
    assert not isinstance(info.value, InvalidEventError)


def test_item_id_at_the_length_limit_is_fine() -> None:
    assert Item("x" * MAX_ID_LENGTH, "T").item_id == "x" * MAX_ID_LENGTH


@pytest.mark.parametrize("item_id", [1, None, b"bytes", 3.5, ["a"]])
def test_item_rejects_non_str_ids(item_id) -> None:
    with pytest.raises(InvalidInputError) as info:
        Item(item_id, "Title")  # type: ignore[arg-type]
    assert type(item_id).__name__ in str(info.value)
    assert repr(item_id)[:20] in str(info.value)


@pytest.mark.parametrize("title", ["", "   ", "\n\t"])
def test_item_rejects_empty_titles(title: str) -> None:
    with pytest.raises(InvalidInputError, match="'i1'.*empty title"):
        Item("i1", title)


@pytest.mark.parametrize("title", [None, 5, b"x"])
def test_item_rejects_non_str_titles(title) -> None:
    with pytest.raises(InvalidInputError, match=type(title).__name__):
        Item("i1", title)  # type: ignore[arg-type]


def test_item_rejects_huge_text_and_title() -> None:
    huge = "a" * (MAX_TEXT_LENGTH + 1)
    with pytest.raises(InvalidInputError, match=f"{MAX_TEXT_LENGTH + 1:,}"):
        Item("i1", "T", huge)
    with pytest.raises(InvalidInputError, match=f"{MAX_TEXT_LENGTH + 1:,}"):
        Item("i1", huge)
    assert len(Item("i1", "T", "a" * MAX_TEXT_LENGTH).text) == MAX_TEXT_LENGTH


@pytest.mark.parametrize("text", [None, 3, ["a"]])
def test_item_rejects_non_str_text(text) -> None:
    with pytest.raises(InvalidInputError, match=type(text).__name__):
        Item("i1", "T", text)  # type: ignore[arg-type]


@pytest.mark.parametrize("attributes", [None, ["genres"], "genres", 3])
def test_item_rejects_non_mapping_attributes(attributes) -> None:
    with pytest.raises(InvalidInputError, match=type(attributes).__name__):
        Item("i1", "T", "", attributes)  # type: ignore[arg-type]


def test_item_tags_merge_genres_tags_categories_deduplicated() -> None:
    item = Item(
        "i1",
        "T",
        attributes={"genres": ["a", "b"], "tags": "c", "categories": ("b", "d", " "), "year": 1},
    )
    assert item.tags == ("a", "b", "c", "d")
    assert Item("i2", "T").tags == ()


# --------------------------------------------------------------------------- Event


def test_event_defaults() -> None:
    event = Event("u1", "i1")
    assert event.kind == "click"
    assert event.value is None
    assert math.isfinite(event.timestamp) and event.timestamp > 1.6e9


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"user_id": ""}, "''"),
        ({"user_id": "u\n1"}, "u\\n1"),
        ({"user_id": "u" * (MAX_ID_LENGTH + 1)}, "uuuu"),
        ({"user_id": 7}, "int 7"),
        ({"item_id": None}, "None"),
        ({"item_id": "i\x07"}, "i\\x07"),
        ({"item_id": 12}, "int 12"),
        ({"kind": "purchased"}, "'purchased'"),
        ({"kind": "rate"}, "rate Event needs a value"),
        ({"value": float("nan")}, "nan"),
        ({"value": float("inf")}, "inf"),
        ({"value": "5"}, "'5'"),
        ({"value": True}, "True"),
        ({"timestamp": float("nan")}, "nan"),
        ({"timestamp": float("-inf")}, "-inf"),
        ({"timestamp": "yesterday"}, "'yesterday'"),
        ({"timestamp": None}, "None"),
        ({"kind": "query", "item_id": None}, "query Event needs non-empty text"),
        ({"kind": "query", "item_id": None, "text": "   "}, "query Event needs non-empty text"),
        (
            {"kind": "query", "item_id": None, "text": "x" * (MAX_TEXT_LENGTH + 1)},
            f"{MAX_TEXT_LENGTH + 1:,}",
        ),
        ({"kind": "query", "item_id": "", "text": "ok"}, "''"),
        ({"text": 5}, "int"),
    ],
)
def test_invalid_events_raise_invalid_event_error(kwargs: dict, fragment: str) -> None:
    base = {"user_id": "u1", "item_id": "i1", "kind": "click", "timestamp": 1.0}
    base.update(kwargs)
    with pytest.raises(InvalidEventError) as info:
        Event(**base)
    assert fragment in str(info.value)
    assert isinstance(info.value, InvalidInputError)
    assert isinstance(info.value, ValueError)


def test_query_event_without_item_is_valid() -> None:
    event = Event("u1", kind="query", text="space adventures", timestamp=1.0)
    assert event.item_id is None and event.weight == 0.0


@pytest.mark.parametrize("kind", sorted(set(EVENT_WEIGHTS) - {"rate", "query"}))
def test_event_weight_follows_the_table(kind: str) -> None:
    assert Event("u1", "i1", kind=kind).weight == EVENT_WEIGHTS[kind]


def test_event_weight_signs() -> None:
    assert Event("u1", "i1", kind="dislike").weight < 0
    assert Event("u1", "i1", kind="skip").weight < 0
    assert (
        Event("u1", "i1", kind="purchase").weight
        > Event("u1", "i1", kind="like").weight
        > Event("u1", "i1", kind="click").weight
        > Event("u1", "i1", kind="view").weight
        > 0
    )


@pytest.mark.parametrize(
    ("value", "weight"), [(1, -0.5), (2, 0.0), (3, 0.5), (4, 1.0), (5, 1.5), (3.5, 0.75)]
)
def test_rate_weight_is_linear_in_the_rating(value: float, weight: float) -> None:
    assert Event("u1", "i1", kind="rate", value=value).weight == pytest.approx(weight)


@given(st.floats(1, 5), st.floats(1, 5))
def test_rate_weight_is_monotonic(a: float, b: float) -> None:
    wa = Event("u", "i", kind="rate", value=a, timestamp=0.0).weight
    wb = Event("u", "i", kind="rate", value=b, timestamp=0.0).weight
    assert (a < b) <= (wa < wb)
    assert (a == b) <= (wa == wb)


# A printable id: letters, digits, punctuation and non-ASCII letters, no control chars.
ids = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Cf", "Co", "Cn", "Zs")),
    min_size=1,
    max_size=MAX_ID_LENGTH,
)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@st.composite
def valid_events(draw) -> Event:
    kind = draw(st.sampled_from(sorted(EVENT_WEIGHTS)))
    user = draw(ids)
    timestamp = draw(finite | st.integers(-(10**12), 10**12))
    if kind == "query":
        text = draw(st.text(min_size=1, max_size=200).filter(lambda s: s.strip()))
        item = draw(st.none() | ids)
        value = draw(st.none() | finite)
    else:
        item = draw(ids)
        text = draw(st.none() | st.text(max_size=200))
        value = draw(finite) if kind == "rate" else draw(st.none() | finite)
    return Event(user, item, kind=kind, value=value, timestamp=timestamp, text=text)


@given(valid_events())
def test_valid_events_round_trip_through_to_dict(event: Event) -> None:
    data = event.to_dict()
    assert set(data) == {"user_id", "item_id", "kind", "value", "timestamp", "text"}
    again = Event(**data)
    assert again == event
    assert again.to_dict() == data
    assert math.isfinite(again.weight)


@given(ids)
def test_printable_ids_are_accepted(user_id: str) -> None:
    assert Event(user_id, user_id, timestamp=0.0).user_id == user_id
    assert Item(user_id, "T").item_id == user_id


@given(st.text(min_size=1, max_size=20).filter(lambda s: not s.isprintable()))
def test_non_printable_ids_are_rejected(user_id: str) -> None:
    with pytest.raises(InvalidEventError):
        Event(user_id, "i1", timestamp=0.0)
    with pytest.raises(InvalidInputError):
        Item(user_id, "T")


# --------------------------------------------------------------------------- results


def test_explanation_top_signal_is_the_largest_positive() -> None:
    assert Explanation({"a": 0.5, "b": 2.0, "c": -3.0}).top_signal == "b"
    assert Explanation({"a": -0.5, "b": 0.0}).top_signal is None
    assert Explanation({}).top_signal is None


def test_recommendation_text_properties() -> None:
    rec = Recommendation("i1", 0.5, 1, Explanation({}))
    assert rec.text is None and rec.text_source is None
    rec = Recommendation("i1", 0.5, 1, Explanation({}), GeneratedText("hi", "template", "x"))
    assert rec.text == "hi" and rec.text_source == "template"


# --------------------------------------------------------------------------- ISO timestamps
@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2024-03-01T12:00:00Z", 1709294400.0),
        ("2024-03-01T12:00:00z", 1709294400.0),
        ("2024-03-01T14:00:00+02:00", 1709294400.0),
        ("2024-03-01 12:00:00", 1709294400.0),  # no offset: UTC
        ("2024-03-01T12:00:00.500Z", 1709294400.5),
        ("2024-03-01", 1709251200.0),
        (" 2024-03-01T12:00:00Z ", 1709294400.0),
    ],
)
def test_event_reads_iso_8601_timestamps(text: str, seconds: float) -> None:
    event = Event("u1", "i1", timestamp=text)  # type: ignore[arg-type]
    assert event.timestamp == seconds and type(event.timestamp) is float
    assert Event(**event.to_dict()) == event  # stored as seconds, so it round-trips


@pytest.mark.parametrize("text", ["", "yesterday", "2024-13-01", "1709294400"])
def test_event_refuses_other_timestamp_text(text: str) -> None:
    with pytest.raises(InvalidEventError, match="ISO-8601"):
        Event("u1", "i1", timestamp=text)  # type: ignore[arg-type]


def test_rating_scale_is_the_scale_weights_are_read_on() -> None:
    from llmrec.types import RATING_SCALE

    low, high = RATING_SCALE
    mid = (low + high) / 2
    assert Event("u", "i", kind="rate", value=mid).weight == 0.5  # neutral
    assert Event("u", "i", kind="rate", value=high).weight == 1.5

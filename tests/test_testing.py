"""The conformance kit itself: its doubles conform, every check fails on a deliberately
broken backend, and the built-in chat backends conform (the model-backed ones are slow)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from llmrec import ItemEncoder
from llmrec.encoding.hashing import HashingEncoder
from llmrec.errors import ConfigError, GenerationError, InvalidInputError
from llmrec.generation.llms.template import TemplateChat
from llmrec.retrieval import PopularitySource, RetrievalContext
from llmrec.retrieval.indexes import ExactIndex
from llmrec.retrieval.models import EASESource
from llmrec.testing import (
    FunctionChat,
    FunctionEncoder,
    check_candidate_source,
    check_chat_backend,
    check_encoder_backend,
    check_index_backend,
)


def letter_counts(text: str) -> np.ndarray:
    """A module-level text -> vector function, so a FunctionEncoder can name it."""
    vector = np.ones(16)
    for char in text.lower():
        vector[ord(char) % 16] += 1.0
    return vector


def last_message_reversed(conversation: list[dict]) -> str:
    return conversation[-1]["content"][::-1]


# --------------------------------------------------------------------------- doubles


def test_function_encoder_conforms_and_feeds_an_item_encoder() -> None:
    backend = FunctionEncoder(letter_counts, 16)
    check_encoder_backend(backend)
    assert backend.config()["fn"].endswith(":letter_counts")
    vectors = ItemEncoder(backend, show_progress=False).encode_texts(["ab", "ba", "zz"])
    np.testing.assert_allclose(vectors[0], vectors[1])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_function_encoder_refuses_what_it_cannot_do() -> None:
    with pytest.raises(ConfigError, match="module-level"):
        FunctionEncoder(lambda text: np.ones(4), 4).config()
    with pytest.raises(ConfigError, match="module:function"):
        FunctionEncoder("no_such_module_xyz:fn", 4)
    with pytest.raises(InvalidInputError, match=r"texts\[1\]"):
        FunctionEncoder(lambda text: np.zeros(4) if text == "zero" else np.ones(4), 4).encode(
            ["fine", "zero"]
        )
    with pytest.raises(InvalidInputError, match="shape"):
        FunctionEncoder(lambda text: np.ones(3), 4).encode(["wrong dim"])


def test_function_chat_conforms_and_answers_by_index() -> None:
    chat = FunctionChat(last_message_reversed)
    check_chat_backend(chat)
    convs = [[{"role": "user", "content": "abc"}], [{"role": "user", "content": "xyz"}]]
    assert chat.generate(convs) == ["cba", "zyx"]
    assert list(chat.stream(convs)) == [(0, "cba"), (1, "zyx")]
    with pytest.raises(GenerationError, match="not str"):
        FunctionChat(lambda conversation: 3).generate(convs)


def test_template_chat_conforms() -> None:
    check_chat_backend(TemplateChat())


# --------------------------------------------------------------------------- broken encoders


class UnnormalizedEncoder(HashingEncoder):
    def encode(self, texts, *, batch_size=64, show_progress=False):
        return 2.0 * super().encode(texts)


class StrAcceptingEncoder(HashingEncoder):
    def encode(self, texts, *, batch_size=64, show_progress=False):
        return super().encode([texts] if isinstance(texts, str) else texts)


class ForgetfulConfigEncoder(HashingEncoder):
    def config(self):
        return {}  # rebuilds with the default dim, not this one


class Float64Encoder(HashingEncoder):
    def encode(self, texts, *, batch_size=64, show_progress=False):
        return super().encode(texts).astype(np.float64)


@pytest.mark.parametrize(
    ("backend", "rule"),
    [
        (UnnormalizedEncoder(32), "unit length"),
        (StrAcceptingEncoder(32), "single str is refused"),
        (ForgetfulConfigEncoder(32), "rebuilds the same name and dim"),
        (Float64Encoder(32), "returns float32"),
    ],
)
def test_encoder_check_fails_on_broken_encoders(backend, rule) -> None:
    with pytest.raises(AssertionError, match=rule):
        check_encoder_backend(backend)


# --------------------------------------------------------------------------- broken indexes


class RemoveIgnoringIndex(ExactIndex):
    def remove(self, labels):
        pass


class AmnesicIndex(ExactIndex):
    @classmethod
    def load(cls, path, config, *, device="cpu"):
        return cls(int(config["dim"]), device=device)


class UnsortedIndex(ExactIndex):
    def search(self, queries, k):
        labels, scores = super().search(queries, k)
        return labels[:, ::-1].copy(), scores[:, ::-1].copy()


@pytest.mark.parametrize(
    ("cls", "rule"),
    [
        (RemoveIgnoringIndex, "remove takes labels out of len"),
        (AmnesicIndex, "load restores len"),
        (UnsortedIndex, "results come best first"),
    ],
)
def test_index_check_fails_on_broken_indexes(cls, rule) -> None:
    with pytest.raises(AssertionError, match=rule):
        check_index_backend(lambda dim: cls(dim))


# --------------------------------------------------------------------------- broken chats


class ShuffledChat(FunctionChat):
    """Streams each answer under the wrong index."""

    def _answers(self, conversations) -> Iterator[tuple[int, str]]:
        n = len(conversations)
        for index, text in super()._answers(conversations):
            yield (index + 1) % n, text


class LazyCheckingChat(FunctionChat):
    """Checks conversations only once the stream is iterated."""

    def stream(self, conversations, *, max_new_tokens=48):
        yield from super().stream(conversations, max_new_tokens=max_new_tokens)


class DroppingChat(FunctionChat):
    def _answers(self, conversations):
        yield from list(super()._answers(conversations))[:-1]


@pytest.mark.parametrize(
    ("chat", "rule"),
    [
        (ShuffledChat(last_message_reversed), "answers the i-th conversation"),
        (LazyCheckingChat(last_message_reversed), "at the call"),
        (DroppingChat(last_message_reversed), "every conversation exactly once"),
    ],
)
def test_chat_check_fails_on_broken_chats(chat, rule) -> None:
    with pytest.raises(AssertionError, match=rule):
        check_chat_backend(chat)


# --------------------------------------------------------------------------- broken sources


def _popularity_ctx(history, exclude) -> RetrievalContext:
    rows = np.asarray(history, dtype=np.int64)
    return RetrievalContext(
        None,
        None,
        rows,
        np.ones(len(rows), np.float32),
        np.asarray(exclude, dtype=np.int64),
        n_rows=10,
        profile_rows=rows,
    )


class ExcludeIgnoringPopularity(PopularitySource):
    def propose(self, ctx, n):
        ctx = RetrievalContext(
            None,
            None,
            ctx.history_rows,
            ctx.history_weights,
            np.zeros(0, np.int64),
            n_rows=ctx.n_rows,
        )
        return super().propose(ctx, n)


class RemoveIgnoringEASE(EASESource):
    def remove_rows(self, rows):
        pass


class AmnesicEASE(EASESource):
    @classmethod
    def load(cls, path, config, *, device="cpu"):
        return cls(l2=float(config["l2"]))


def _popularity(cls=PopularitySource, **attributes) -> PopularitySource:
    source = cls()
    for name, value in attributes.items():
        setattr(source, name, value)
    source.resize(10)
    for row, times in ((0, 5), (3, 2), (7, 1)):
        for _ in range(times):
            source.add(row)
    return source


def test_popularity_fixture_passes_the_source_check() -> None:
    check_candidate_source(_popularity(), _popularity_ctx)


@pytest.mark.parametrize(
    ("source", "rule"),
    [
        (_popularity(ExcludeIgnoringPopularity), "never returns ctx.exclude_rows"),
        (_popularity(relation="liked"), "relation is one of"),
        (_popularity(default_weight="high"), "default_weight is a finite number"),
    ],
)
def test_source_check_fails_on_broken_sources(source, rule) -> None:
    with pytest.raises(AssertionError, match=rule):
        check_candidate_source(source, _popularity_ctx)


@pytest.mark.parametrize(
    ("source", "rule"),
    [
        (RemoveIgnoringEASE(l2=10.0), "remove_rows stops a row being proposed"),
        (AmnesicEASE(l2=10.0), "save then load gives the same proposals"),
    ],
)
def test_source_check_fails_on_broken_trainable_sources(source, rule) -> None:
    with pytest.raises(AssertionError, match=rule):
        check_candidate_source(source)


def test_a_plain_source_needs_a_context_factory() -> None:
    with pytest.raises(ConfigError, match="ctx_factory"):
        check_candidate_source(_popularity())


# --------------------------------------------------------------------------- real models


def _embedded_llm() -> None:
    from llmrec.errors import BackendUnavailableError
    from llmrec.generation.llms.base import default_llm_path

    try:
        default_llm_path()  # found without importing its package (which needs ``llm``)
    except BackendUnavailableError as exc:
        pytest.skip(str(exc))


@pytest.mark.slow
def test_embedded_transformers_chat_conforms() -> None:
    _embedded_llm()
    from llmrec.generation.llms.transformers import TransformersChat

    check_chat_backend(TransformersChat(device="cpu"))


@pytest.mark.slow
def test_embedded_llamacpp_chat_conforms() -> None:
    _embedded_llm()
    pytest.importorskip("llama_cpp")
    from llmrec.generation.llms.llamacpp import LlamaCppChat

    check_chat_backend(LlamaCppChat(device="cpu", n_threads=1))

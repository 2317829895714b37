"""Conformance checks of the backend seams (encoders, vector indexes, chat models) and
the :class:`FunctionEncoder` and :class:`FunctionChat` doubles; see :mod:`llmrec.testing`."""

from __future__ import annotations

import importlib
import json
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from llmrec._validate import check_int
from llmrec.device import DeviceLike, resolve_device
from llmrec.encoding.base import check_texts
from llmrec.errors import ConfigError, GenerationError, InvalidInputError, LLMRecError
from llmrec.generation.llms.base import ChatMessage, check_conversations, check_max_new_tokens
from llmrec.registry import accepts_keyword

__all__ = [
    "FunctionChat",
    "FunctionEncoder",
    "check_chat_backend",
    "check_encoder_backend",
    "check_index_backend",
]

_TEXTS = [
    "a quiet film about the sea",
    "Space robots fight aliens!",
    "",
    "ünïcödé – 日本語 ✓",
    "a quiet film about the sea",
]
_CONVERSATIONS = [
    [{"role": "user", "content": "Name a film about the sea."}],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Why do people like space films?"},
    ],
    [{"role": "user", "content": "Say hello"}, {"role": "assistant", "content": "Hello"}],
]
_BAD_CONVERSATIONS: list[Any] = [
    "hello",
    ["hello"],
    [[]],
    [[{"role": "robot", "content": "x"}]],
    [[{"role": "user"}]],
]


# ---------------------------------------------------------------------------- helpers
def _require(ok: Any, subject: str, rule: str, detail: str = "") -> None:
    """Raise :class:`AssertionError` naming ``rule`` unless ``ok``."""
    if not ok:
        raise AssertionError(
            f"{subject} breaks the rule: {rule}" + (f" ({detail})" if detail else "")
        )


def _require_refusal(call: Callable[[], Any], subject: str, rule: str) -> None:
    """``call()`` must raise an :class:`~llmrec.LLMRecError` subclass."""
    try:
        call()
    except LLMRecError:
        return
    except Exception as exc:  # the rule is about which error: report the wrong one
        raise AssertionError(
            f"{subject} breaks the rule: {rule} (raised "
            f"{type(exc).__name__}: {exc}, not an LLMRecError)"
        ) from exc
    raise AssertionError(f"{subject} breaks the rule: {rule} (nothing was raised)")


def _require_json(config: Any, subject: str) -> None:
    try:
        ok = isinstance(config, dict) and bool(json.dumps(config))
    except (TypeError, ValueError):
        ok = False
    _require(ok, subject, "its config is a JSON-serializable dict", f"got {config!r:.80}")


def _require_name(backend: Any, subject: str) -> None:
    name = getattr(backend, "name", None)
    _require(isinstance(name, str) and name, subject, "name is a non-empty str", f"got {name!r}")


def _unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


# ---------------------------------------------------------------------------- encoders
def check_encoder_backend(backend: Any) -> None:
    """Check an :class:`~llmrec.encoding.EncoderBackend`.

    Rules: ``name`` is a non-empty str, ``dim`` a positive int and ``device`` a
    :class:`torch.device`; ``encode`` returns a float32 ``(n, dim)`` array of unit rows,
    the same for the same input (and for the same text twice in one call) whatever the
    ``batch_size``; ``[]`` gives ``(0, dim)``; a single str or a non-str entry raises an
    :class:`~llmrec.LLMRecError`; ``config()`` is JSON-serializable and
    ``type(backend)(**config)`` (on the same device) rebuilds an encoder with the same
    name, dim and vectors.

    Raises:
        AssertionError: naming the first rule broken.
    """
    subject = f"encoder backend {getattr(backend, 'name', backend)!r}"
    _require_name(backend, subject)
    dim = getattr(backend, "dim", None)
    _require(
        isinstance(dim, int) and not isinstance(dim, bool) and dim > 0,
        subject,
        "dim is a positive int",
        f"got {dim!r}",
    )
    _require(
        isinstance(getattr(backend, "device", None), torch.device),
        subject,
        "device is a torch.device",
        f"got {getattr(backend, 'device', None)!r}",
    )
    out = _check_encoded(backend.encode(_TEXTS), len(_TEXTS), dim, subject)
    _require(
        np.allclose(out[0], out[-1], atol=1e-5),
        subject,
        "the same text encodes to the same vector within one call",
    )
    _require(
        np.allclose(backend.encode(_TEXTS), out, atol=1e-5),
        subject,
        "encoding the same texts again gives the same vectors",
    )
    small = _check_encoded(backend.encode(_TEXTS, batch_size=2), len(_TEXTS), dim, subject)
    _require(
        np.min(np.sum(small * out, axis=1)) >= 0.999,
        subject,
        "batch_size changes the batching, not the vectors",
    )
    _check_encoded(backend.encode([]), 0, dim, subject)
    _require_refusal(
        lambda: backend.encode("a single str"),
        subject,
        "a single str is refused (texts is a sequence of str)",
    )
    _require_refusal(lambda: backend.encode(["fine", 3]), subject, "a non-str entry is refused")
    config = backend.config()
    _require_json(config, subject)
    cls = type(backend)
    device = (
        {"device": backend.device}
        if "device" not in config and accepts_keyword(cls, "device")
        else {}
    )
    rebuilt = cls(**config, **device)
    _require(
        rebuilt.name == backend.name and rebuilt.dim == dim,
        subject,
        "type(backend)(**config) rebuilds the same name and dim",
    )
    _require(
        np.allclose(rebuilt.encode(_TEXTS), out, atol=1e-5),
        subject,
        "type(backend)(**config) rebuilds an encoder giving the same vectors",
    )


def _check_encoded(out: Any, n: int, dim: int, subject: str) -> np.ndarray:
    _require(
        isinstance(out, np.ndarray),
        subject,
        "encode returns a numpy array",
        f"got {type(out).__name__}",
    )
    _require(out.dtype == np.float32, subject, "encode returns float32", f"got {out.dtype}")
    _require(
        out.shape == (n, dim),
        subject,
        "encode returns shape (len(texts), dim)",
        f"got {out.shape} for {n} texts",
    )
    _require(np.isfinite(out).all(), subject, "encoded vectors are finite")
    if n:
        norms = np.linalg.norm(out, axis=1)
        _require(
            np.allclose(norms, 1.0, atol=1e-4),
            subject,
            "encoded rows have unit length",
            f"norms {norms.min():.4f}..{norms.max():.4f}",
        )
    return out


class FunctionEncoder:
    """An encoder backend from a function of one text (a test double); vectors are
    L2-normalized, and one of the wrong shape, non-finite or zero raises
    :class:`~llmrec.InvalidInputError`.

    Args:
        fn: ``text -> vector of length dim``, or its import path ``"module:function"``
            (``config()`` names it so: only a module-level function can be rebuilt from
            a config, and rebuilding imports its module).
        dim: Vector dimension.
        name: The backend name.
        device: Accepted for the encoder interface; vectors are computed on the CPU.
    """

    def __init__(
        self,
        fn: Callable[[str], Any] | str,
        dim: int,
        *,
        name: str = "function",
        device: DeviceLike = "cpu",
    ) -> None:
        if isinstance(fn, str):
            module, _, attr = fn.partition(":")
            try:
                fn = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError, ValueError) as exc:
                raise ConfigError(
                    f"fn must name a function as 'module:function', got {fn!r}: {exc}"
                ) from None
        if not callable(fn):
            raise ConfigError(f"fn must be callable, got {fn!r:.80}")
        self.fn = fn
        self.dim = check_int(dim, "dim", low=1)
        self.name = name
        self.device = resolve_device(device)

    def config(self) -> dict[str, Any]:
        """``{"fn": "module:function", "dim": ..., "name": ...}``.

        Raises:
            ConfigError: the function has no import path (a lambda or a nested function).
        """
        module, qualname = (
            getattr(self.fn, "__module__", None),
            getattr(self.fn, "__qualname__", ""),
        )
        if not module or "<" in qualname or "." in qualname:
            raise ConfigError(
                f"FunctionEncoder over {self.fn!r:.80} has no config: only a "
                "module-level function can be named by its import path"
            )
        return {"fn": f"{module}:{qualname}", "dim": self.dim, "name": self.name}

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        texts = check_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for n, text in enumerate(texts):
            vector = np.asarray(self.fn(text), dtype=np.float32)
            norm = float(np.linalg.norm(vector)) if vector.shape == (self.dim,) else 0.0
            if not np.isfinite(norm) or norm == 0.0:
                raise InvalidInputError(
                    f"the function's vector for texts[{n}] must be a finite, "
                    f"non-zero vector of shape ({self.dim},), got "
                    f"shape {vector.shape}"
                )
            out[n] = vector / norm
        return out


# ---------------------------------------------------------------------------- indexes
def check_index_backend(factory: Callable[[int], Any], *, dim: int = 8) -> None:
    """Check an :class:`~llmrec.retrieval.IndexBackend` made by ``factory(dim)``.

    Rules: ``name`` is a non-empty str and ``dim`` the one asked for; ``len`` counts the
    labels held; ``search`` returns ``(labels, scores)`` of shape ``(n, k)``, best first,
    with label -1 in missing slots; the top-1 of an inserted vector is its own label;
    scores are inner products; removed labels are never returned (removing an absent
    label changes nothing); upserting a held label replaces its vector; a removed label
    can be added again; bad input raises an :class:`~llmrec.LLMRecError` and changes
    nothing; ``save`` returns a JSON config and ``type(backend).load`` gives equal results.

    Raises:
        AssertionError: naming the first rule broken.
    """
    backend = factory(dim)
    subject = f"index backend {getattr(backend, 'name', backend)!r}"
    _require_name(backend, subject)
    _require(
        backend.dim == dim,
        subject,
        "dim is the dim it was built with",
        f"got {backend.dim!r} for {dim}",
    )
    _require(len(backend) == 0, subject, "a new index is empty")
    labels, _ = backend.search(_unit_vectors(2, dim, 1), 3)
    _require(
        np.asarray(labels).shape == (2, 3) and (np.asarray(labels) == -1).all(),
        subject,
        "an empty index returns label -1 in every slot",
    )
    vectors = _unit_vectors(40, dim, 0)
    ids = 3 * np.arange(40, dtype=np.int64) + 2
    backend.upsert(ids, vectors)
    _require(len(backend) == 40, subject, "len counts the labels held", f"got {len(backend)}")
    _check_search(backend, vectors, ids, subject)
    _check_changes(backend, vectors, ids, subject)
    _check_index_round_trip(backend, subject)


def _check_search(backend: Any, vectors: np.ndarray, ids: np.ndarray, subject: str) -> None:
    labels, scores = backend.search(vectors, 1)
    _require(
        np.array_equal(np.asarray(labels)[:, 0], ids),
        subject,
        "the top-1 of an inserted vector is its own label",
    )
    _require(
        np.allclose(scores, 1.0, atol=1e-4), subject, "the score of a unit vector with itself is 1"
    )
    queries = _unit_vectors(5, backend.dim, 2)
    labels, scores = (np.asarray(a) for a in backend.search(queries, 10))
    _require(labels.shape == scores.shape == (5, 10), subject, "search returns shape (n, k)")
    position = {int(label): n for n, label in enumerate(ids)}
    for row in range(len(queries)):
        expected = vectors[[position[int(label)] for label in labels[row]]] @ queries[row]
        _require(
            np.allclose(scores[row], expected, atol=1e-4),
            subject,
            "scores are inner products of query and item",
        )
        _require((np.diff(scores[row]) <= 1e-6).all(), subject, "results come best first")
        _require(len(set(labels[row].tolist())) == 10, subject, "a label is returned once")
    labels, _ = backend.search(vectors[:1], 45)
    labels = np.asarray(labels)[0]
    _require(
        (labels[40:] == -1).all() and set(labels[:40].tolist()) == set(ids.tolist()),
        subject,
        "k beyond len returns every label, then -1",
    )


def _check_changes(backend: Any, vectors: np.ndarray, ids: np.ndarray, subject: str) -> None:
    backend.remove(ids[:5])
    _require(
        len(backend) == 35,
        subject,
        "remove takes labels out of len",
        f"len {len(backend)} after removing 5 of 40",
    )
    labels, _ = backend.search(vectors, 40)
    _require(not np.isin(labels, ids[:5]).any(), subject, "removed labels are never returned")
    backend.remove(np.array([10**6]))
    _require(len(backend) == 35, subject, "removing an absent label changes nothing")
    fresh = _unit_vectors(1, backend.dim, 3)
    backend.upsert(ids[10:11], fresh)
    labels, scores = backend.search(fresh, 1)
    _require(
        len(backend) == 35
        and int(np.asarray(labels)[0, 0]) == ids[10]
        and abs(float(np.asarray(scores)[0, 0]) - 1.0) < 1e-4,
        subject,
        "upserting a held label replaces its vector",
    )
    backend.upsert(ids[:1], vectors[:1])
    labels, _ = backend.search(vectors[:1], 1)
    _require(
        len(backend) == 36 and int(np.asarray(labels)[0, 0]) == ids[0],
        subject,
        "a removed label can be added again",
    )
    bad = vectors[:1].copy()
    bad[0, 0] = np.nan
    for rule, call in (
        ("NaN vectors are refused", lambda: backend.upsert(np.array([999]), bad)),
        (
            "vectors of another dim are refused",
            lambda: backend.upsert(np.array([999]), np.ones((1, backend.dim + 1))),
        ),
        ("negative labels are refused", lambda: backend.upsert(np.array([-1]), vectors[:1])),
        ("k < 1 is refused", lambda: backend.search(vectors[:1], 0)),
    ):
        _require_refusal(call, subject, rule)
    _require(len(backend) == 36, subject, "a refused call changes nothing")


def _check_index_round_trip(backend: Any, subject: str) -> None:
    queries = _unit_vectors(6, backend.dim, 4)
    before = backend.search(queries, 10)
    with tempfile.TemporaryDirectory() as tmp:
        config = backend.save(Path(tmp) / "index")
        _require_json(config, subject)
        loaded = type(backend).load(Path(tmp) / "index", config, device="cpu")
        after = loaded.search(queries, 10)
    _require(len(loaded) == len(backend), subject, "load restores len")
    _require(
        np.array_equal(before[0], after[0]) and np.allclose(before[1], after[1], atol=1e-5),
        subject,
        "save then load gives the same search results",
    )


# ---------------------------------------------------------------------------- chat
def check_chat_backend(backend: Any, *, deterministic: bool = True) -> None:
    """Check a :class:`~llmrec.generation.llms.base.ChatBackend`.

    Rules: ``name`` is a non-empty str; ``config()`` is JSON-serializable; ``generate``
    returns one str per conversation; ``stream`` yields ``(index, str)`` once for every
    index; with ``deterministic`` (greedy backends) the i-th answer is the answer to the
    i-th conversation asked alone, and ``stream`` agrees with ``generate``; no
    conversations give no answers; malformed conversations and a bad ``max_new_tokens``
    raise an :class:`~llmrec.LLMRecError` at the call (``stream`` before the first
    ``next``).

    Raises:
        AssertionError: naming the first rule broken.
    """
    subject = f"chat backend {getattr(backend, 'name', backend)!r}"
    _require_name(backend, subject)
    _require_json(backend.config(), subject)
    answers = backend.generate(_CONVERSATIONS, max_new_tokens=8)
    _require(
        isinstance(answers, list)
        and len(answers) == len(_CONVERSATIONS)
        and all(isinstance(a, str) for a in answers),
        subject,
        "generate returns a list with one str per conversation",
        f"got {answers!r:.120}",
    )
    pairs = list(backend.stream(_CONVERSATIONS, max_new_tokens=8))
    _require(
        all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[1], str) for p in pairs),
        subject,
        "stream yields (index, str) pairs",
        f"got {pairs!r:.120}",
    )
    _require(
        Counter(i for i, _ in pairs) == Counter(range(len(_CONVERSATIONS))),
        subject,
        "stream answers every conversation exactly once",
        f"indices {[i for i, _ in pairs]}",
    )
    if deterministic:
        alone = [backend.generate([c], max_new_tokens=8)[0] for c in _CONVERSATIONS]
        _require(
            answers == alone,
            subject,
            "the i-th answer answers the i-th conversation (as when asked alone)",
        )
        _require(
            dict(pairs) == dict(enumerate(answers)),
            subject,
            "stream gives each index the answer generate gives it",
        )
    _require(backend.generate([], max_new_tokens=8) == [], subject, "no conversations, no answers")
    _require(
        list(backend.stream([], max_new_tokens=8)) == [],
        subject,
        "no conversations, nothing streamed",
    )
    for bad in _BAD_CONVERSATIONS:
        _require_refusal(
            lambda bad=bad: backend.generate(bad, max_new_tokens=8),
            subject,
            f"generate refuses the malformed conversations {bad!r}",
        )
        _require_refusal(
            lambda bad=bad: backend.stream(bad, max_new_tokens=8),
            subject,
            f"stream refuses the malformed conversations {bad!r} at the call",
        )
    _require_refusal(
        lambda: backend.generate(_CONVERSATIONS, max_new_tokens=0),
        subject,
        "max_new_tokens=0 is refused",
    )


class FunctionChat:
    """A chat backend answering each conversation with ``fn(conversation)`` (a test double).

    Conversations and ``max_new_tokens`` are checked like every backend's, at the call.

    Args:
        fn: ``list of {"role", "content"} messages -> answer text``.
        name: The backend name.
        device: Accepted for the chat interface; unused.
    """

    def __init__(
        self, fn: Callable[[list[dict]], str], *, name: str = "function", device: DeviceLike = None
    ) -> None:
        del device
        if not callable(fn):
            raise ConfigError(f"fn must be callable, got {fn!r:.80}")
        self.fn = fn
        self.name = name

    def config(self) -> dict[str, Any]:
        return {"name": self.name}

    def generate(
        self, conversations: Sequence[Sequence[ChatMessage]], *, max_new_tokens: int = 48
    ) -> list[str]:
        """Answer each conversation; the i-th answer belongs to the i-th conversation."""
        out = [""] * len(check_conversations(conversations))
        for index, text in self.stream(conversations, max_new_tokens=max_new_tokens):
            out[index] = text
        return out

    def stream(
        self, conversations: Sequence[Sequence[ChatMessage]], *, max_new_tokens: int = 48
    ) -> Iterator[tuple[int, str]]:
        """Yield ``(index, answer)`` for every conversation, in input order."""
        checked = check_conversations(conversations)
        check_max_new_tokens(max_new_tokens)
        return self._answers(checked)

    def _answers(self, conversations: list[list[dict]]) -> Iterator[tuple[int, str]]:
        for index, conversation in enumerate(conversations):
            text = self.fn(conversation)
            if not isinstance(text, str):
                raise GenerationError(
                    f"the FunctionChat function returned {type(text).__name__}, not str"
                )
            yield index, text

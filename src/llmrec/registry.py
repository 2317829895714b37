"""Backend registries: names map to lazily imported classes and the extra providing them.

Persisted manifests store registered *names*, never class paths, so loading a save never
imports arbitrary code. Third parties add backends through the entry-point groups
``llmrec.encoders``, ``llmrec.indexes``, ``llmrec.llms`` and ``llmrec.models`` (trainable
candidate sources), or with :func:`register_backend`; :mod:`llmrec.testing` checks a
backend against its contract.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from llmrec.errors import BackendUnavailableError, ConfigError

__all__ = ["KINDS", "accepts_keyword", "available_backends", "get_backend", "register_backend"]

logger = logging.getLogger(__name__)

KINDS = ("encoders", "indexes", "llms", "models")


@dataclass(frozen=True)
class _Entry:
    target: str | type
    extra: str | None


_REGISTRY: dict[str, dict[str, _Entry]] = {
    "encoders": {
        "transformers": _Entry("llmrec.encoding.transformers:TransformersEncoder", None),
        "hashing": _Entry("llmrec.encoding.hashing:HashingEncoder", None),
    },
    "indexes": {
        "hnsw": _Entry("llmrec.retrieval.indexes:HNSWIndex", None),
        "exact": _Entry("llmrec.retrieval.indexes:ExactIndex", None),
    },
    "llms": {
        "transformers": _Entry("llmrec.generation.llms.transformers:TransformersChat", None),
        "template": _Entry("llmrec.generation.llms.template:TemplateChat", None),
        "llamacpp": _Entry("llmrec.generation.llms.llamacpp:LlamaCppChat", "llamacpp"),
        "openai": _Entry("llmrec.generation.llms.openai:OpenAIChat", None),
    },
    "models": {
        "ease": _Entry("llmrec.retrieval.models.ease:EASESource", None),
        "sequential": _Entry("llmrec.retrieval.models.sequential:SequentialSource", None),
    },
}
_ENTRY_POINTS_LOADED: set[str] = set()
_SINGULAR = {"encoders": "encoder", "indexes": "index", "llms": "llm", "models": "model"}


def _check_kind(kind: str) -> dict[str, _Entry]:
    if kind not in _REGISTRY:
        raise ConfigError(f"unknown backend kind {kind!r}; choose from {list(KINDS)}")
    if kind not in _ENTRY_POINTS_LOADED:
        _ENTRY_POINTS_LOADED.add(kind)
        for ep in entry_points(group=f"llmrec.{kind}"):
            _REGISTRY[kind].setdefault(ep.name, _Entry(ep.value, None))
    return _REGISTRY[kind]


def register_backend(kind: str, name: str, target: str | type, extra: str | None = None) -> None:
    """Register ``target`` (a class or ``"module:Class"``) under ``name``.

    Args:
        kind: ``"encoders"``, ``"indexes"``, ``"llms"`` or ``"models"``.
        name: The name users pass and manifests store.
        target: The backend class, or its dotted path for lazy import.
        extra: The pip extra that installs its dependencies, for the error hint.
    """
    entries = _check_kind(kind)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"backend name must be a non-empty str, got {name!r}")
    entries[name] = _Entry(target, extra)


def available_backends(kind: str) -> list[str]:
    """Registered backend names of ``kind``, sorted."""
    return sorted(_check_kind(kind))


def get_backend(kind: str, name: str) -> Any:
    """Return the backend class registered as ``name``.

    Raises:
        ConfigError: ``name`` is not registered.
        BackendUnavailableError: its library is not installed (the message says what to
            pip install).
    """
    entries = _check_kind(kind)
    if name not in entries:
        raise ConfigError(
            f"unknown {_SINGULAR[kind]} backend {name!r}; registered: {sorted(entries)}"
        )
    entry = entries[name]
    if not isinstance(entry.target, str):
        return entry.target
    module_name, _, attr = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f"pip install 'llmrec[{entry.extra}]'" if entry.extra else f"pip install {exc.name}"
        raise BackendUnavailableError(
            f"backend {name!r} ({kind}) needs a library that is not installed "
            f"({exc.name}); install it with: {hint}"
        ) from exc
    return getattr(module, attr)


def accepts_keyword(cls: Any, keyword: str) -> bool:
    """Whether constructing ``cls`` accepts ``keyword`` (named, or through ``**kwargs``);
    used to hand shared settings such as ``device`` only to backends that take them."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False
    return keyword in params or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
    )

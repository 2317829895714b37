"""Module paths of llmrec 0.1 that moved in 0.2: each old module is a thin alias that
warns once and then *is* the new module (``sys.modules`` maps the old name to it)."""

from __future__ import annotations

import importlib
import sys
import warnings

__all__ = ["MOVED", "REMOVED", "alias", "removed_name", "warn_moved"]

#: Old module path -> new module path. Removed in llmrec 0.3.
MOVED: dict[str, str] = {
    "llmrec.backends.encoders": "llmrec.encoding.transformers",
    "llmrec.backends.indexes": "llmrec.retrieval.indexes",
    "llmrec.backends.llamacpp": "llmrec.generation.llms.llamacpp",
    "llmrec.backends.llms": "llmrec.generation.llms.transformers",
    "llmrec.backends.remote": "llmrec.generation.llms.openai",
    "llmrec.cli": "llmrec.apps.cli",
    "llmrec.distributed": "llmrec.apps.ray",
    "llmrec.encoder": "llmrec.encoding",
    "llmrec.eventlog": "llmrec.storage.eventlog",
    "llmrec.generator": "llmrec.generation",
    "llmrec.io": "llmrec.storage.io",
    "llmrec.models.cf": "llmrec.retrieval.models.ease",
    "llmrec.models.sequential": "llmrec.retrieval.models.sequential",
    "llmrec.ranker": "llmrec.ranking",
    "llmrec.report": "llmrec.evaluation.report",
    "llmrec.retriever": "llmrec.retrieval",
    "llmrec.server": "llmrec.apps.server",
}


def warn_moved(old: str, stacklevel: int = 3) -> None:
    """The DeprecationWarning of an old module path, pointing at the importing line."""
    warnings.warn(
        f"{old} moved to {MOVED[old]}; the old path is removed in llmrec 0.3",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def alias(old: str) -> None:
    """Make the module being imported as ``old`` an alias of its new module, warning once.

    A module whose names went to several new modules re-exports them itself instead
    (``llmrec/backends/llms.py``, ``llmrec/backends/encoders.py``)."""
    warn_moved(old, stacklevel=4)
    sys.modules[old] = importlib.import_module(MOVED[old])


# Names of llmrec 0.1 that nothing used; served with a warning until llmrec 0.3.
from collections.abc import Mapping  # noqa: E402
from dataclasses import dataclass  # noqa: E402

from llmrec.errors import LLMRecError  # noqa: E402


@dataclass(frozen=True)
class Candidate:
    """Deprecated and unused: candidates are rows with per-source scores inside the retriever."""

    item_id: str
    source_scores: Mapping[str, float]


class NotFittedError(LLMRecError, ValueError, AttributeError):
    """Deprecated and never raised: an unfitted pipeline recommends from its defaults."""


REMOVED = {"Candidate": Candidate, "NotFittedError": NotFittedError}


def removed_name(module: str, name: str) -> object:
    """The deprecated ``name`` of ``module``, with a warning; AttributeError for others."""
    if name not in REMOVED:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    warnings.warn(
        f"{module}.{name} is unused and removed in llmrec 0.3", DeprecationWarning, stacklevel=3
    )
    return REMOVED[name]

"""Deprecated: the trainable sources moved to :mod:`llmrec.retrieval.models`."""

import warnings
from typing import Any

warnings.warn(
    "llmrec.models moved to llmrec.retrieval.models; the old path is removed in llmrec 0.3",
    DeprecationWarning,
    stacklevel=2,
)


def __getattr__(name: str) -> Any:
    import llmrec.retrieval.models

    return getattr(llmrec.retrieval.models, name)

"""The pipeline: the object applications use (:class:`Pipeline`)."""

from __future__ import annotations

from llmrec.pipeline._build import AUTO_MODELS
from llmrec.pipeline._changes import MAX_EVENT_WEIGHT
from llmrec.pipeline._request import Filters
from llmrec.pipeline._scoring import TAG_FEATURE
from llmrec.pipeline.pipeline import Pipeline

__all__ = [
    "AUTO_MODELS",
    "Filters",
    "MAX_EVENT_WEIGHT",
    "Pipeline",
    "TAG_FEATURE",
]

"""The pipeline: the object applications use (:class:`Pipeline`)."""

from __future__ import annotations

from llmrec.pipeline._request import Filters
from llmrec.pipeline._scoring import TAG_FEATURE
from llmrec.pipeline.pipeline import Pipeline

__all__ = ["TAG_FEATURE", "Filters", "Pipeline"]

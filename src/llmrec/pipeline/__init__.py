"""The pipeline: the object applications use (:class:`Pipeline`)."""

from __future__ import annotations

from llmrec.pipeline.pipeline import Filters, Pipeline

__all__ = ["Filters", "Pipeline"]

"""Datasets: MovieLens readers and fetch, and readers for a catalog and events of one's own."""

from __future__ import annotations

from llmrec.datasets.movielens import *  # noqa: F403
from llmrec.datasets.movielens import __all__ as _movielens_all

__all__ = sorted(_movielens_all)

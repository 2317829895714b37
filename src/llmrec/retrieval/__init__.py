"""Retrieval: candidate sources propose items, every source scores every candidate.

:class:`Retriever` holds the item vectors, the vector index (:mod:`.indexes`), the built-in
sources (:mod:`.sources`) and the trainable ones (:mod:`.models`); the contracts sources
implement (:class:`CandidateSource`, :class:`TrainableSource`) are in :mod:`.base`, and
:func:`llmrec.testing.check_candidate_source` checks a source against them.
"""

from __future__ import annotations

from llmrec.retrieval.base import CandidateSource, RetrievalContext, TrainableSource
from llmrec.retrieval.indexes import IndexBackend
from llmrec.retrieval.retriever import AUTO_HNSW_THRESHOLD, Retriever, make_index
from llmrec.retrieval.sources import CooccurrenceSource, IndexSource, PopularitySource

__all__ = [
    "AUTO_HNSW_THRESHOLD",
    "CandidateSource",
    "CooccurrenceSource",
    "IndexBackend",
    "IndexSource",
    "PopularitySource",
    "RetrievalContext",
    "Retriever",
    "TrainableSource",
    "make_index",
]

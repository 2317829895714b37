"""Datasets: MovieLens readers and fetch, and readers for a catalog and events of one's own.

Modules: :mod:`.dataset` (the :class:`Dataset` container, the canonical event order),
:mod:`.movielens` (the MovieLens layouts), :mod:`.fetch` (the cache and the ML-100K
download) and :mod:`.files` (JSON lines / CSV files of one's own).
"""

from __future__ import annotations

from llmrec.datasets.dataset import Dataset, dataset_stats, event_sort_key, sort_events, tie_key
from llmrec.datasets.fetch import (
    ML100K_INTER_SHA256,
    ML100K_ROWS,
    ML100K_URL,
    RECBOLE_REQUIREMENT,
    fetch_movielens_100k,
    load_movielens,
)
from llmrec.datasets.files import EVENT_FIELDS, ITEM_FIELDS, read_events, read_items
from llmrec.datasets.movielens import (
    GROUPLENS_GENRES,
    detect_format,
    read_grouplens,
    read_movielens,
    read_movielens_csv,
    read_recbole,
)
from llmrec.storage.io import default_cache_dir

__all__ = [
    "Dataset",
    "EVENT_FIELDS",
    "GROUPLENS_GENRES",
    "ITEM_FIELDS",
    "ML100K_INTER_SHA256",
    "ML100K_ROWS",
    "ML100K_URL",
    "RECBOLE_REQUIREMENT",
    "dataset_stats",
    "default_cache_dir",
    "detect_format",
    "event_sort_key",
    "fetch_movielens_100k",
    "load_movielens",
    "read_events",
    "read_grouplens",
    "read_items",
    "read_movielens",
    "read_movielens_csv",
    "read_recbole",
    "sort_events",
    "tie_key",
]

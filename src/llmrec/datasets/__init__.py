"""Datasets: MovieLens readers and fetch, and readers for a catalog and events of one's own.

Modules: :mod:`.dataset` (the :class:`Dataset` container, the canonical event order),
:mod:`.movielens` (the MovieLens layouts), :mod:`.fetch` (the cache and the ML-100K and
ml-latest-small downloads), :mod:`.details` (merging an enrichment file into a catalog)
:mod:`.files` (JSON lines / CSV files of one's own) and :mod:`.frames` (pandas or polars
data frames).
"""

from __future__ import annotations

from llmrec.datasets.dataset import (
    Dataset,
    core_filter,
    dataset_stats,
    event_sort_key,
    sort_events,
    tie_key,
)
from llmrec.datasets.details import MOVIE_DETAIL_LABELS, merge_details
from llmrec.datasets.fetch import (
    ML100K_INTER_SHA256,
    ML100K_ROWS,
    ML100K_URL,
    ML_LATEST_SMALL_SHA256,
    ML_LATEST_SMALL_URL,
    RECBOLE_REQUIREMENT,
    fetch_movielens_100k,
    fetch_movielens_latest_small,
    load_movielens,
)
from llmrec.datasets.files import EVENT_FIELDS, ITEM_FIELDS, read_events, read_items
from llmrec.datasets.frames import events_from_pandas, from_pandas
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
    "ML_LATEST_SMALL_SHA256",
    "ML_LATEST_SMALL_URL",
    "MOVIE_DETAIL_LABELS",
    "RECBOLE_REQUIREMENT",
    "core_filter",
    "dataset_stats",
    "default_cache_dir",
    "detect_format",
    "event_sort_key",
    "events_from_pandas",
    "fetch_movielens_100k",
    "from_pandas",
    "fetch_movielens_latest_small",
    "load_movielens",
    "merge_details",
    "read_events",
    "read_grouplens",
    "read_items",
    "read_movielens",
    "read_movielens_csv",
    "read_recbole",
    "sort_events",
    "tie_key",
]

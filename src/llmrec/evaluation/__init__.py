"""Evaluation: leave-one-out next-item evaluation and its report.

Modules: :mod:`.split` (the split), :mod:`.metrics` (cleaning and scoring ranked lists),
:mod:`.driver` (asking a recommender for every user; the predictions file) and
:mod:`.report` (plots and JSON, extra ``report``; imported on its own).

The protocol (the one the project's benchmarks use on MovieLens-100K):

* **Positives.** Every event with an item is one positive interaction; ratings and event
  kinds are ignored. A repeated ``(user, item)`` pair keeps its first occurrence.
* **Order.** Each user's events are sorted by ``(int(timestamp), tie_key(user, item))``
  where :func:`~llmrec.datasets.tie_key` is the SHA-256 hex digest of ``"user\\titem"``.
  Equal timestamps are common on MovieLens, so the tie-break is part of the protocol; a
  hash tells a model nothing about which of two same-second items comes last.
* **Split.** A user with ``n >= 3`` events gives the last one to ``test``, the one before
  to ``valid`` and the first ``n - 2`` to ``train``; ``n == 2`` gives train + test;
  ``n == 1`` gives train only.
* **Candidates.** Full ranking over every distinct item in the events. For ``valid`` the
  user's train items are excluded; for ``test`` the train items and the valid item. A model
  may read the train items as history for ``valid`` and train + valid for ``test``.
* **Scoring.** Each ranked list is cleaned in order -- unknown ids, excluded ids and
  repeats are dropped (and counted) -- and cut at the largest K. With ``r`` the 1-based
  position of the held-out item: Recall@K = HR@K = ``1[r <= K]``, NDCG@K =
  ``1/log2(r + 1)``, MRR@K = ``1/r`` (0 beyond K). Each metric is the mean over *all*
  users with a held-out item in the split; a user without a list scores 0.
* **Subsets.** ``"no-ties"`` keeps the users whose valid and test events have different
  integer timestamps, whose test item does not depend on the tie-break. ``"rare-items"``
  keeps the users whose held-out item has fewer than :data:`RARE_ITEM_THRESHOLD` users in
  the events a model may learn from for that split (the long tail, where text matters).
* **Fingerprint.** SHA-256 over ``"user|train,items|valid|test\\n"`` lines in ascending
  user order; on ML-100K it is :data:`ML100K_SPLIT_FINGERPRINT`.

A predictions file is JSON lines ``{"user_id": "196", "items": ["50", ...]}``, best first.
"""

from __future__ import annotations

from llmrec.evaluation.driver import (
    FAST_EPOCHS,
    RecommendFn,
    estimate_fit_seconds,
    evaluate,
    limit_epochs,
    read_predictions,
    write_predictions,
)
from llmrec.evaluation.metrics import (
    DEFAULT_KS,
    DIVERSITY_K,
    RANK_METRICS,
    EvaluationResult,
    clean_ranking,
    evaluate_predictions,
    rank_metrics,
)
from llmrec.evaluation.split import (
    ML100K_SPLIT_FINGERPRINT,
    RARE_ITEM_THRESHOLD,
    SPLITS,
    SUBSETS,
    LeaveOneOutSplit,
    leave_one_out,
)

__all__ = [
    "DEFAULT_KS",
    "DIVERSITY_K",
    "EvaluationResult",
    "FAST_EPOCHS",
    "LeaveOneOutSplit",
    "ML100K_SPLIT_FINGERPRINT",
    "RANK_METRICS",
    "RARE_ITEM_THRESHOLD",
    "RecommendFn",
    "SPLITS",
    "SUBSETS",
    "clean_ranking",
    "estimate_fit_seconds",
    "evaluate",
    "evaluate_predictions",
    "leave_one_out",
    "limit_epochs",
    "rank_metrics",
    "read_predictions",
    "write_predictions",
]

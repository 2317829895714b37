"""Leave-one-out next-item evaluation: the split, the metrics and a generic driver.

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

import contextlib
import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from llmrec.datasets import Dataset, event_sort_key, sort_events
from llmrec.errors import ConfigError, InvalidInputError
from llmrec.types import Event

__all__ = [
    "DEFAULT_KS",
    "ML100K_SPLIT_FINGERPRINT",
    "RARE_ITEM_THRESHOLD",
    "SPLITS",
    "SUBSETS",
    "EvaluationResult",
    "LeaveOneOutSplit",
    "clean_ranking",
    "evaluate",
    "evaluate_predictions",
    "leave_one_out",
    "rank_metrics",
    "read_predictions",
    "write_predictions",
]

SPLITS = ("valid", "test")
SUBSETS = ("all", "no-ties", "rare-items")
#: An item with fewer training users than this is "rare" (subset ``"rare-items"``).
RARE_ITEM_THRESHOLD = 5
DEFAULT_KS = (10, 20)
RANK_METRICS = ("recall", "ndcg", "mrr")
#: Split fingerprint of ML-100K (recbole 1.2.1 ``ml-100k.inter``) under this protocol.
ML100K_SPLIT_FINGERPRINT = "71411dd74c5e2a6a538875ac195c7976417d648d9ab086b11131e8751b42fec4"
#: Length of the top of each list that intra-list diversity looks at.
DIVERSITY_K = 10

#: ``recommender(user_id, history, exclude, k) -> item ids, best first``.
RecommendFn = Callable[[str, list[str], set[str], int], Sequence[Any]]


def _ordered_ids(ids: Iterable[str]) -> list[str]:
    """Ascending numeric order when every id is ASCII digits, else string order."""
    ids = list(ids)
    if all(i.isascii() and i.isdigit() for i in ids):
        return sorted(ids, key=lambda i: (int(i), i))
    return sorted(ids)


def _check_split_name(split_name: str) -> str:
    if split_name not in SPLITS:
        raise InvalidInputError(f"split_name must be one of {SPLITS}, got {split_name!r}")
    return split_name


def _check_ks(ks: Iterable[int]) -> tuple[int, ...]:
    ks = tuple(ks)
    if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k <= 0 for k in ks):
        raise InvalidInputError(f"ks must be positive ints, got {ks!r}")
    return tuple(sorted(set(ks)))


# ---------------------------------------------------------------------------- split
@dataclass(repr=False)
class LeaveOneOutSplit:
    """A leave-one-out split; build it with :func:`leave_one_out`.

    Attributes:
        train: Each user's train items, chronological.
        valid: Each user's validation item (users with at least 3 events).
        test: Each user's test item (users with at least 2 events).
        items: The candidate universe: every distinct item of the events, ascending.
        valid_timestamps: Integer timestamp of each valid event.
        test_timestamps: Integer timestamp of each test event.
        user_events: Each user's de-duplicated events in protocol order (the original
            :class:`~llmrec.types.Event` objects): train, then valid, then test.
    """

    train: dict[str, list[str]]
    valid: dict[str, str]
    test: dict[str, str]
    items: list[str]
    valid_timestamps: dict[str, int] = field(default_factory=dict)
    test_timestamps: dict[str, int] = field(default_factory=dict)
    user_events: dict[str, list[Event]] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"LeaveOneOutSplit(users={len(self.train):,}, items={len(self.items):,}, "
            f"train={sum(map(len, self.train.values())):,}, valid={len(self.valid):,}, "
            f"test={len(self.test):,})"
        )

    @property
    def users(self) -> list[str]:
        """Every user, ascending (numeric when all ids are digits)."""
        return _ordered_ids(self.train)

    def subset_users(self, subset: str = "all", split_name: str = "test") -> set[str]:
        """Users scored under ``subset`` (``"all"``, ``"no-ties"`` or ``"rare-items"``)
        when evaluating ``split_name``."""
        if subset == "all":
            return set(self.train)
        if subset == "no-ties":
            return {
                u for u, ts in self.test_timestamps.items()
                if u in self.valid_timestamps and self.valid_timestamps[u] != ts
            }  # fmt: skip
        if subset == "rare-items":
            counts = self.item_counts(split_name)
            held_out = self.test if _check_split_name(split_name) == "test" else self.valid
            return {u for u, item in held_out.items()
                    if counts.get(item, 0) < RARE_ITEM_THRESHOLD}
        raise InvalidInputError(f"subset must be one of {SUBSETS}, got {subset!r}")

    def item_counts(self, split_name: str = "test") -> dict[str, int]:
        """Distinct users per item in the events a model may learn from for ``split_name``."""
        counts: dict[str, int] = {}
        for user in self.train:
            for item in self.history(user, split_name):
                counts[item] = counts.get(item, 0) + 1
        return counts

    def targets(self, split_name: str = "test", subset: str = "all") -> dict[str, str]:
        """Held-out item of each scored user of ``split_name``, in ascending user order."""
        held_out = self.test if _check_split_name(split_name) == "test" else self.valid
        keep = self.subset_users(subset, split_name)
        return {u: held_out[u] for u in _ordered_ids(held_out) if u in keep}

    def history(self, user_id: str, split_name: str = "test") -> list[str]:
        """Chronological items a model may read before predicting ``split_name``."""
        items = list(self.train.get(user_id, ()))
        if _check_split_name(split_name) == "test" and user_id in self.valid:
            items.append(self.valid[user_id])
        return items

    def excluded(self, user_id: str, split_name: str = "test") -> set[str]:
        """Items that may not be recommended to ``user_id`` when scoring ``split_name``."""
        return set(self.history(user_id, split_name))

    def train_events(self) -> list[Event]:
        """Events of the train part, in canonical chronological order."""
        return self.events_for("valid")

    def events_for(self, split_name: str = "test") -> list[Event]:
        """Events a model may learn from before predicting ``split_name``, chronological.

        ``"valid"``: the train events. ``"test"``: the train and valid events.
        """
        _check_split_name(split_name)
        out = []
        for user, events in self.user_events.items():
            n_seen = len(self.train.get(user, ()))
            if split_name == "test" and user in self.valid:
                n_seen += 1
            out.extend(events[:n_seen])
        return sort_events(out)

    def fingerprint(self) -> str:
        """SHA-256 over ``"user|train items comma-joined|valid|test\\n"``, users ascending."""
        digest = hashlib.sha256()
        for u in self.users:
            line = f"{u}|{','.join(self.train[u])}|{self.valid.get(u, '')}|{self.test.get(u, '')}\n"
            digest.update(line.encode())
        return digest.hexdigest()


def leave_one_out(events: Iterable[Event] | Dataset) -> LeaveOneOutSplit:
    """Split events per user into train / valid / test (see the module docstring).

    Args:
        events: Events (or a :class:`~llmrec.datasets.Dataset`); events without an item
            (queries) are ignored.

    Raises:
        InvalidInputError: There are no events with an item.
    """
    if isinstance(events, Dataset):
        events = events.events
    per_user: dict[str, list[Event]] = {}
    items: set[str] = set()
    for event in events:
        if not isinstance(event, Event):
            raise InvalidInputError(f"expected Event objects, got {type(event).__name__}")
        if event.item_id is None:
            continue
        per_user.setdefault(event.user_id, []).append(event)
        items.add(event.item_id)
    if not per_user:
        raise InvalidInputError("leave_one_out needs at least one event with an item")

    split = LeaveOneOutSplit(train={}, valid={}, test={}, items=_ordered_ids(items))
    for user in _ordered_ids(per_user):
        seen: set[str] = set()
        chronological = []
        for event in sorted(per_user[user], key=event_sort_key):
            if event.item_id not in seen:  # a repeated (user, item) keeps its first event
                seen.add(event.item_id)  # type: ignore[arg-type]
                chronological.append(event)
        seq = [e.item_id for e in chronological]
        n = len(seq)
        if n >= 3:
            split.train[user], split.valid[user], split.test[user] = seq[:-2], seq[-2], seq[-1]
            split.valid_timestamps[user] = int(chronological[-2].timestamp)
            split.test_timestamps[user] = int(chronological[-1].timestamp)
        elif n == 2:
            split.train[user], split.test[user] = seq[:1], seq[1]
            split.test_timestamps[user] = int(chronological[-1].timestamp)
        else:
            split.train[user] = seq
        split.user_events[user] = chronological
    return split


# ---------------------------------------------------------------------------- metrics
def rank_metrics(
    ranked: Sequence[str], target: str, ks: Sequence[int] = DEFAULT_KS
) -> dict[str, float]:
    """Recall@K (= HR@K), NDCG@K and MRR@K of one ranked list with one relevant item.

    ``ranked`` is used as given (clean it first with :func:`clean_ranking`); the target's
    first position counts.

    Returns:
        ``{"recall@10": ..., "recall@20": ..., "ndcg@10": ..., ..., "mrr@20": ...}``.
    """
    ks = _check_ks(ks)
    try:
        rank = list(ranked).index(target) + 1
    except ValueError:
        rank = None
    return _metrics_at(rank, ks)


def _metrics_at(rank: int | None, ks: tuple[int, ...]) -> dict[str, float]:
    out = {f"{m}@{k}": 0.0 for m in RANK_METRICS for k in ks}
    if rank is not None:
        for k in ks:
            if rank <= k:
                out[f"recall@{k}"] = 1.0
                out[f"ndcg@{k}"] = 1.0 / math.log2(rank + 1)
                out[f"mrr@{k}"] = 1.0 / rank
    return out


def clean_ranking(
    ranked: Iterable[Any],
    excluded: set[str],
    known: set[str] | frozenset[str],
    limit: int,
    counts: dict[str, int] | None = None,
) -> list[str]:
    """Drop unknown, excluded and repeated ids (in that order of checks), keep order, cut.

    Args:
        ranked: Item ids, best first.
        excluded: Ids the user may not be recommended.
        known: The candidate universe.
        limit: Stop after this many kept ids.
        counts: Optional counters ``removed_unknown`` / ``removed_excluded`` /
            ``removed_duplicate``, incremented for the ids dropped before the cut.
    """
    seen: set[str] = set()
    clean: list[str] = []
    for raw in ranked:
        item = raw if isinstance(raw, str) else str(raw)
        if item not in known:
            reason = "removed_unknown"
        elif item in excluded:
            reason = "removed_excluded"
        elif item in seen:
            reason = "removed_duplicate"
        else:
            seen.add(item)
            clean.append(item)
            if len(clean) >= limit:
                break
            continue
        if counts is not None:
            counts[reason] = counts.get(reason, 0) + 1
    return clean


@dataclass
class EvaluationResult:
    """Scores of one evaluation run.

    Attributes:
        metrics: ``recall@K``, ``ndcg@K``, ``mrr@K``, ``coverage@K`` and, when item vectors
            were given, ``intra_list_diversity``.
        stats: Counts of what cleaning removed, missing users, short lists, ...
        n_users: Users averaged over.
        split_name: ``"valid"`` or ``"test"``.
        subset: ``"all"`` or ``"no-ties"``.
        ranks: Per user, the 1-based rank of the held-out item in the cleaned list
            (``None`` when absent or the user had no list).
    """

    metrics: dict[str, float]
    stats: dict[str, Any]
    n_users: int
    split_name: str = "test"
    subset: str = "all"
    ranks: dict[str, int | None] = field(default_factory=dict, repr=False)

    def __getitem__(self, key: str) -> float:
        return self.metrics[key]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the per-user ranks)."""
        return {
            "split": self.split_name,
            "subset": self.subset,
            "n_users": self.n_users,
            "metrics": dict(self.metrics),
            "stats": dict(self.stats),
        }

    def format_table(self, digits: int = 4) -> str:
        """The metrics as a small text table: one row per metric, one column per K."""
        rows: dict[str, dict[int, float]] = {}
        single: dict[str, float] = {}
        for key, value in self.metrics.items():
            name, sep, k = key.partition("@")
            if sep and k.isdigit():
                rows.setdefault(name, {})[int(k)] = value
            else:
                single[key] = value
        ks = sorted({k for row in rows.values() for k in row})
        width = max([len(n) for n in [*rows, *single]] + [6])
        lines = [f"{self.split_name} ({self.subset}, {self.n_users:,} users)"]
        if rows:
            header = "".join(f"{'@' + str(k):>{digits + 5}}" for k in ks)
            lines.append(f"{'metric':<{width}}{header}")
            for name, row in rows.items():
                cells = "".join(
                    f"{row[k]:>{digits + 5}.{digits}f}" if k in row else " " * (digits + 5)
                    for k in ks
                )
                lines.append(f"{name:<{width}}{cells}")
        for name, value in single.items():
            lines.append(f"{name:<{width}}{value:>{digits + 5}.{digits}f}")
        return "\n".join(lines)


def _intra_list_diversity(
    lists: Iterable[list[str]], item_vectors: Mapping[str, np.ndarray]
) -> tuple[float, int]:
    """Mean over lists of the mean pairwise ``1 - cosine`` of each list's top items."""
    total, n_lists = 0.0, 0
    for items in lists:
        vectors = [
            np.asarray(item_vectors[i], dtype=np.float64).ravel()
            for i in items[:DIVERSITY_K]
            if i in item_vectors
        ]
        if len(vectors) < 2:
            continue
        matrix = np.stack(vectors)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix = matrix / np.where(norms > 0, norms, 1.0)
        cosine = matrix @ matrix.T
        upper = np.triu_indices(len(vectors), k=1)
        total += float(np.mean(1.0 - cosine[upper]))
        n_lists += 1
    return (total / n_lists if n_lists else 0.0), n_lists


def evaluate_predictions(
    split: LeaveOneOutSplit,
    predictions: Mapping[str, Sequence[Any]],
    split_name: str = "test",
    ks: Sequence[int] = DEFAULT_KS,
    subset: str = "all",
    *,
    item_vectors: Mapping[str, np.ndarray] | None = None,
    strict: bool = False,
) -> EvaluationResult:
    """Score ranked lists under the leave-one-out protocol (see the module docstring).

    Args:
        split: The split the predictions were made for.
        predictions: ``{user_id: [item_id, ...]}``, best first.
        split_name: ``"valid"`` or ``"test"``.
        ks: Cut-offs.
        subset: ``"all"`` users with a held-out item, or ``"no-ties"``.
        item_vectors: Item vectors; when given, ``intra_list_diversity`` (mean pairwise
            ``1 - cosine`` within each cleaned top-10) is reported too.
        strict: Raise instead of counting missing users, removed ids and short lists.

    Raises:
        InvalidInputError: Bad ``split_name``, ``subset`` or ``ks``; no user to score; a
            protocol violation under ``strict``.
    """
    ks = _check_ks(ks)
    targets = split.targets(split_name, subset)
    if not targets:
        raise InvalidInputError(
            f"no user has a held-out item in split {split_name!r} (subset {subset!r})"
        )
    known = frozenset(split.items)
    kmax = max(ks)
    sums = {f"{m}@{k}": 0.0 for m in RANK_METRICS for k in ks}
    stats: dict[str, Any] = {
        "subset": subset, "users": len(targets), "missing_users": 0, "removed_excluded": 0,
        "removed_unknown": 0, "removed_duplicate": 0, "short_lists": 0,
    }  # fmt: skip
    recommended: dict[int, set[str]] = {k: set() for k in ks}
    ranks: dict[str, int | None] = {}
    cleaned_lists: list[list[str]] = []
    for user, target in targets.items():
        ranked = predictions.get(user)
        if ranked is None:
            stats["missing_users"] += 1
            ranks[user] = None
            continue
        clean = clean_ranking(ranked, split.excluded(user, split_name), known, kmax, stats)
        if len(clean) < kmax:
            stats["short_lists"] += 1
        cleaned_lists.append(clean)
        for k in ks:
            recommended[k].update(clean[:k])
        rank = clean.index(target) + 1 if target in clean else None
        ranks[user] = rank
        for key, value in _metrics_at(rank, ks).items():
            sums[key] += value
    violations = {
        k: stats[k]
        for k in (
            "missing_users",
            "removed_excluded",
            "removed_unknown",
            "removed_duplicate",
            "short_lists",
        )
        if stats[k]
    }
    if strict and violations:
        raise InvalidInputError(f"predictions violate the protocol: {violations}")
    n = len(targets)
    metrics = {key: value / n for key, value in sums.items()}
    for k in ks:
        metrics[f"coverage@{k}"] = len(recommended[k]) / len(split.items)
    if item_vectors is not None:
        metrics["intra_list_diversity"], stats["diversity_users"] = _intra_list_diversity(
            cleaned_lists, item_vectors
        )
    return EvaluationResult(
        metrics=metrics, stats=stats, n_users=n, split_name=split_name, subset=subset, ranks=ranks
    )


# ---------------------------------------------------------------------------- files
def write_predictions(
    path: str | os.PathLike[str], predictions: Mapping[str, Sequence[Any]]
) -> None:
    """Write ``{user_id: [item_id, ...]}`` as JSON lines, atomically."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for user, items in predictions.items():
                record = {"user_id": str(user), "items": [str(i) for i in items]}
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_predictions(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Read a JSON lines predictions file into ``{user_id: [item_id, ...]}``.

    Raises:
        InvalidInputError: A line is not a ``{"user_id", "items"}`` object, or a user
            appears twice (the message names the file and line).
    """
    predictions: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                user, items = record["user_id"], record["items"]
                if not isinstance(items, list):
                    raise TypeError("items must be a list")
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidInputError(
                    f"{path}:{number}: not a predictions record ({exc})"
                ) from None
            user = str(user)
            if user in predictions:
                raise InvalidInputError(f"{path}:{number}: user {user!r} appears twice")
            predictions[user] = [str(i) for i in items]
    return predictions


# ---------------------------------------------------------------------------- driver
def _as_ids(result: Any, user: str) -> list[str]:
    if result is None or isinstance(result, (str, bytes)):
        raise InvalidInputError(
            f"recommender returned {result!r:.80} for user {user!r}; expected a list of item ids"
        )
    return [r.item_id if hasattr(r, "item_id") else str(r) for r in result]


def _is_pipeline(recommender: Any) -> bool:
    from llmrec.pipeline import Pipeline

    return isinstance(recommender, Pipeline)


class _PipelineRecommender:
    """Adapts a Pipeline to ``recommend_history_batch`` (its profiles hold the history)."""

    def __init__(self, pipeline: Any, split: LeaveOneOutSplit, split_name: str, fit: bool,
                 seed: int | None, show_progress: bool) -> None:
        if not isinstance(fit, bool):
            raise InvalidInputError(f"fit must be a bool, got {fit!r}")
        if fit:
            events = [Event(user_id=e.user_id, item_id=e.item_id, kind="click",
                            timestamp=e.timestamp) for e in split.events_for(split_name)]
            pipeline.fit(events, seed=seed, show_progress=show_progress)
        self.pipeline = pipeline

    def recommend_history_batch(self, user_ids: list[str], histories: list[list[str]],
                                excludes: list[set[str]], k: int) -> list[list[str]]:
        known = [u for u in user_ids if u in self.pipeline.profiles]
        lists = dict(zip(known, self.pipeline.recommend_batch(known, k, generate=False)))
        return [[r.item_id for r in lists.get(u, ())] for u in user_ids]


def evaluate(
    recommender: RecommendFn | Any,
    dataset_or_split: Dataset | LeaveOneOutSplit | Sequence[Event],
    split_name: str = "test",
    k: int = 20,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    subset: str = "all",
    batch_size: int = 256,
    show_progress: bool = True,
    item_vectors: Mapping[str, np.ndarray] | None = None,
    fit: bool = True,
    seed: int | None = None,
) -> tuple[EvaluationResult, dict[str, list[str]]]:
    """Ask a recommender for every scored user of a split and score the lists.

    The recommender is one of:

    * a :class:`~llmrec.Pipeline`: unless ``fit=False`` it is first fitted (in place) on
      :meth:`LeaveOneOutSplit.events_for` the split, every event entering as a click as
      the protocol treats all interactions as positives; each user's list then comes from
      ``recommend_batch(..., generate=False)`` with seen items excluded;
    * an object with ``recommend_history_batch(user_ids, histories, excludes, k)``
      returning one list per user (called with up to ``batch_size`` users at a time);
    * an object with ``recommend_history(user_id, history, exclude, k)``;
    * a callable ``recommender(user_id, history, exclude, k)``.

    ``history`` is the user's chronological item list the split allows
    (:meth:`LeaveOneOutSplit.history`), ``exclude`` the set of items that will not count
    (:meth:`LeaveOneOutSplit.excluded`), and the answer is ``k`` item ids best first
    (objects with an ``item_id`` attribute, such as Recommendations, are accepted). The
    recommender must be fitted on :meth:`LeaveOneOutSplit.events_for` of the same split
    beforehand; apart from a Pipeline with ``fit=True``, this function trains nothing.

    Example::

        data = llmrec.datasets.load_movielens("ml-100k")
        pipe = llmrec.Pipeline.from_catalog(data.items, llm="template")
        result, _ = evaluate(pipe, data)
        print(result.format_table())

    Args:
        recommender: See above.
        dataset_or_split: A split, or a dataset / events to split with
            :func:`leave_one_out`.
        split_name: ``"valid"`` or ``"test"``.
        k: Items asked per user; at least ``max(ks)``.
        ks: Metric cut-offs.
        subset: Users to score: ``"all"`` or ``"no-ties"``.
        batch_size: Users per call of ``recommend_history_batch``.
        show_progress: Show a tqdm bar.
        item_vectors: Optional item vectors for ``intra_list_diversity``.
        fit: For a Pipeline: fit it on the split's events first.
        seed: For a Pipeline with ``fit=True``: the seed passed to ``Pipeline.fit``.

    Returns:
        ``(result, predictions)`` with predictions ``{user_id: [item_id, ...]}``.

    Raises:
        ConfigError: ``recommender`` is none of the above.
        InvalidInputError: Bad ``k``, ``ks``, ``batch_size``, split name or subset, or a
            recommender answer that is not a list.
    """
    ks = _check_ks(ks)
    if isinstance(k, bool) or not isinstance(k, int) or k < max(ks):
        raise InvalidInputError(f"k must be an int >= max(ks) = {max(ks)}, got {k!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise InvalidInputError(f"batch_size must be a positive int, got {batch_size!r}")
    split = (
        dataset_or_split
        if isinstance(dataset_or_split, LeaveOneOutSplit)
        else leave_one_out(dataset_or_split)
    )
    users = list(split.targets(split_name, subset))
    if _is_pipeline(recommender):
        recommender = _PipelineRecommender(recommender, split, split_name, fit, seed,
                                           show_progress)

    batch_fn = getattr(recommender, "recommend_history_batch", None)
    single_fn = getattr(recommender, "recommend_history", None)
    if single_fn is None and callable(recommender):
        single_fn = recommender
    if batch_fn is None and single_fn is None:
        raise ConfigError(
            f"recommender {type(recommender).__name__} is not callable and has no "
            "recommend_history / recommend_history_batch method"
        )

    predictions: dict[str, list[str]] = {}
    start = time.perf_counter()
    with tqdm(
        total=len(users), desc=f"evaluate {split_name}", unit="user", disable=not show_progress
    ) as bar:
        if batch_fn is not None:
            for offset in range(0, len(users), batch_size):
                chunk = users[offset : offset + batch_size]
                answers = batch_fn(
                    chunk,
                    [split.history(u, split_name) for u in chunk],
                    [split.excluded(u, split_name) for u in chunk],
                    k,
                )
                answers = list(answers)
                if len(answers) != len(chunk):
                    raise InvalidInputError(
                        f"recommend_history_batch returned {len(answers)} lists for "
                        f"{len(chunk)} users"
                    )
                for user, answer in zip(chunk, answers, strict=True):
                    predictions[user] = _as_ids(answer, user)
                bar.update(len(chunk))
        else:
            for user in users:
                answer = single_fn(
                    user,
                    split.history(user, split_name),  # type: ignore[misc]
                    split.excluded(user, split_name),
                    k,
                )
                predictions[user] = _as_ids(answer, user)
                bar.update(1)
    seconds = time.perf_counter() - start
    result = evaluate_predictions(
        split, predictions, split_name, ks, subset, item_vectors=item_vectors
    )
    result.stats["predict_seconds"] = seconds
    result.stats["users_per_second"] = len(users) / seconds if seconds > 0 else float("inf")
    return result, predictions

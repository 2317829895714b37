"""Scoring ranked lists: cleaning, Recall / NDCG / MRR at K, coverage and diversity.

See :mod:`llmrec.evaluation` for the protocol's scoring rules.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmrec._validate import check_int, check_sequence
from llmrec.errors import InvalidInputError
from llmrec.evaluation.split import LeaveOneOutSplit

__all__ = [
    "DEFAULT_KS",
    "EvaluationResult",
    "check_ks",
    "clean_ranking",
    "evaluate_predictions",
    "rank_metrics",
]

DEFAULT_KS = (10, 20)
RANK_METRICS = ("recall", "ndcg", "mrr")
#: Length of the top of each list that intra-list diversity looks at.
DIVERSITY_K = 10
#: The counters of what cleaning removed or found missing (protocol violations).
VIOLATIONS = (
    "missing_users",
    "removed_excluded",
    "removed_unknown",
    "removed_duplicate",
    "short_lists",
)


def check_ks(ks: Iterable[int]) -> tuple[int, ...]:
    """Metric cut-offs as a sorted tuple of distinct positive ints."""
    values = check_sequence(ks, "ks")
    if not values:
        raise InvalidInputError(f"ks must be positive ints, got {ks!r}")
    return tuple(sorted({check_int(k, "ks", low=1, error=InvalidInputError) for k in values}))


def rank_metrics(
    ranked: Sequence[str], target: str, ks: Sequence[int] = DEFAULT_KS
) -> dict[str, float]:
    """Recall@K (= HR@K), NDCG@K and MRR@K of one ranked list with one relevant item.

    ``ranked`` is used as given (clean it first with :func:`clean_ranking`); the target's
    first position counts.

    Returns:
        ``{"recall@10": ..., "recall@20": ..., "ndcg@10": ..., ..., "mrr@20": ...}``.
    """
    ks = check_ks(ks)
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


def _clean_lists(
    split: LeaveOneOutSplit,
    predictions: Mapping[str, Sequence[Any]],
    targets: Mapping[str, str],
    split_name: str,
    kmax: int,
    stats: dict[str, Any],
) -> dict[str, list[str]]:
    """Each scored user's cleaned list (users without one are counted as missing)."""
    known = frozenset(split.items)
    cleaned: dict[str, list[str]] = {}
    for user in targets:
        ranked = predictions.get(user)
        if ranked is None:
            stats["missing_users"] += 1
            continue
        clean = clean_ranking(ranked, split.excluded(user, split_name), known, kmax, stats)
        if len(clean) < kmax:
            stats["short_lists"] += 1
        cleaned[user] = clean
    return cleaned


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
    """Score ranked lists under the leave-one-out protocol (see :mod:`llmrec.evaluation`).

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
    ks = check_ks(ks)
    targets = split.targets(split_name, subset)
    if not targets:
        raise InvalidInputError(
            f"no user has a held-out item in split {split_name!r} (subset {subset!r})"
        )
    stats: dict[str, Any] = {
        "subset": subset,
        "users": len(targets),
        **dict.fromkeys(VIOLATIONS, 0),
    }
    cleaned = _clean_lists(split, predictions, targets, split_name, max(ks), stats)
    violations = {k: stats[k] for k in VIOLATIONS if stats[k]}
    if strict and violations:
        raise InvalidInputError(f"predictions violate the protocol: {violations}")
    sums = {f"{m}@{k}": 0.0 for m in RANK_METRICS for k in ks}
    ranks: dict[str, int | None] = {}
    for user, target in targets.items():
        clean = cleaned.get(user)
        ranks[user] = clean.index(target) + 1 if clean is not None and target in clean else None
        if clean is not None:
            for key, value in _metrics_at(ranks[user], ks).items():
                sums[key] += value
    n = len(targets)
    metrics = {key: value / n for key, value in sums.items()}
    for k in ks:
        recommended = {item for clean in cleaned.values() for item in clean[:k]}
        metrics[f"coverage@{k}"] = len(recommended) / len(split.items)
    if item_vectors is not None:
        metrics["intra_list_diversity"], stats["diversity_users"] = _intra_list_diversity(
            cleaned.values(), item_vectors
        )
    return EvaluationResult(
        metrics=metrics, stats=stats, n_users=n, split_name=split_name, subset=subset, ranks=ranks
    )

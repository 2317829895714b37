"""Evaluation reports: metrics as JSON plus plots per model, per user-activity bucket and
of request latency (``llmrec evaluate --report DIR``).

Plots need matplotlib (``pip install 'llmrec[report]'``); without it the JSON is still
written and a warning says why no PNG was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llmrec._validate import check_int
from llmrec.errors import InvalidInputError
from llmrec.evaluation import EvaluationResult, LeaveOneOutSplit, evaluate_predictions
from llmrec.storage.io import write_json

__all__ = ["ACTIVITY_BUCKETS", "activity_buckets", "popularity_predictions", "write_report"]

logger = logging.getLogger(__name__)

#: Upper bounds (inclusive) of the user-activity buckets, in history items.
ACTIVITY_BUCKETS = (10, 25, 50, 100, 200)


def _bucket_label(n: int) -> str:
    low = 1
    for high in ACTIVITY_BUCKETS:
        if n <= high:
            return f"{low}-{high}"
        low = high + 1
    return f">{ACTIVITY_BUCKETS[-1]}"


def activity_buckets(split: LeaveOneOutSplit, split_name: str = "test") -> dict[str, set[str]]:
    """Users with a held-out item grouped by how many history items they have."""
    out: dict[str, set[str]] = {}
    for user in split.targets(split_name):
        out.setdefault(_bucket_label(len(split.history(user, split_name))), set()).add(user)
    order = [_bucket_label(b) for b in ACTIVITY_BUCKETS] + [f">{ACTIVITY_BUCKETS[-1]}"]
    return {label: out[label] for label in order if label in out}


def popularity_predictions(
    split: LeaveOneOutSplit, split_name: str = "test", k: int = 20
) -> dict[str, list[str]]:
    """The most popular unseen items per user: the baseline every report shows."""
    counts = split.item_counts(split_name)
    ranked = sorted(counts, key=lambda i: (-counts[i], i))
    out = {}
    for user in split.targets(split_name):
        seen = split.excluded(user, split_name)
        out[user] = [i for i in ranked[: k + len(seen)] if i not in seen][:k]
    return out


def _bucket_metrics(
    result: EvaluationResult, buckets: Mapping[str, set[str]], k: int = 10
) -> dict[str, dict[str, float]]:
    out = {}
    for label, users in buckets.items():
        ranks = [result.ranks.get(u) for u in users]
        out[label] = {
            "users": len(users),
            f"recall@{k}": float(np.mean([r is not None and r <= k for r in ranks])),
            f"ndcg@{k}": float(
                np.mean([1 / np.log2(r + 1) if r is not None and r <= k else 0.0 for r in ranks])
            ),
        }
    return out


def _latencies(pipeline: Any, users: Sequence[str], n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    users = [u for u in users if u in pipeline.profiles]
    if not users:
        return np.zeros(0)
    sample = [users[i] for i in rng.choice(len(users), min(n, len(users)), replace=False)]
    out = []
    for user in sample:
        started = time.perf_counter()
        pipeline.recommend(user, 10, generate=False)
        out.append(time.perf_counter() - started)
    return np.asarray(out) * 1000.0


def write_report(
    out_dir: str | Path,
    pipeline: Any,
    split: LeaveOneOutSplit,
    result: EvaluationResult,
    predictions: Mapping[str, Sequence[str]],
    *,
    split_name: str = "test",
    latency_users: int = 200,
    seed: int = 0,
) -> list[Path]:
    """Write ``metrics.json`` and, with matplotlib, ``models.png``, ``activity.png`` and
    ``latency.png`` into ``out_dir``; returns the files written.

    Args:
        out_dir: Target directory (created).
        pipeline: The fitted pipeline that produced ``predictions`` (timed for latency).
        split: The split evaluated.
        result: :func:`~llmrec.evaluation.evaluate`'s result for the pipeline.
        predictions: Its predictions.
        split_name: ``"valid"`` or ``"test"``.
        latency_users: Users sampled to time ``recommend(k=10, generate=False)``.
        seed: Seed of that sample.
    """
    latency_users = check_int(latency_users, "latency_users", low=0, error=InvalidInputError)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    baseline = evaluate_predictions(split, popularity_predictions(split, split_name), split_name)
    rare = evaluate_predictions(split, predictions, split_name, subset="rare-items")
    buckets = activity_buckets(split, split_name)
    by_bucket = {
        "llmrec": _bucket_metrics(result, buckets),
        "popularity": _bucket_metrics(baseline, buckets),
    }
    latency = _latencies(pipeline, list(split.targets(split_name)), latency_users, seed)
    summary = {
        "split": split_name,
        "models": {"llmrec": result.to_dict(), "popularity": baseline.to_dict()},
        "rare_items": rare.to_dict(),
        "activity_buckets": by_bucket,
        "latency_ms": {
            "n": int(len(latency)),
            **(
                {f"p{q}": float(np.percentile(latency, q)) for q in (50, 90, 99)}
                if len(latency)
                else {}
            ),
        },
    }
    write_json(out / "metrics.json", summary)
    files = [out / "metrics.json"]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning(
            "matplotlib is not installed: wrote metrics.json only "
            "(pip install 'llmrec[report]' for the plots)"
        )
        return files

    files.append(_plot_models(plt, out, split_name, result, baseline))
    files.append(_plot_activity(plt, out, by_bucket))
    if len(latency):
        files.append(_plot_latency(plt, out, latency))
    return files


def _plot_models(
    plt: Any, out: Path, split_name: str, result: EvaluationResult, baseline: EvaluationResult
) -> Path:
    metrics = ["recall@10", "ndcg@10", "mrr@10", "recall@20", "ndcg@20"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    x = np.arange(len(metrics))
    for n, (name, res) in enumerate((("llmrec", result), ("popularity", baseline))):
        ax.bar(x + (n - 0.5) * 0.38, [res.metrics[m] for m in metrics], 0.38, label=name)
    ax.set_xticks(x, metrics)
    ax.set_ylabel("score")
    ax.set_title(f"{split_name} split, {result.n_users:,} users")
    ax.legend()
    fig.tight_layout()
    return _save(fig, out / "models.png", plt)


def _plot_activity(plt: Any, out: Path, by_bucket: Mapping[str, Any]) -> Path:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    labels = list(by_bucket["llmrec"])
    x = np.arange(len(labels))
    for n, name in enumerate(("llmrec", "popularity")):
        ax.bar(
            x + (n - 0.5) * 0.38, [by_bucket[name][b]["ndcg@10"] for b in labels], 0.38, label=name
        )
    ax.set_xticks(x, [f"{b}\n({by_bucket['llmrec'][b]['users']} users)" for b in labels])
    ax.set_xlabel("history items per user")
    ax.set_ylabel("NDCG@10")
    ax.legend()
    fig.tight_layout()
    return _save(fig, out / "activity.png", plt)


def _plot_latency(plt: Any, out: Path, latency: np.ndarray) -> Path:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(latency, bins=30)
    ax.axvline(np.percentile(latency, 99), color="k", linestyle="--", label="p99")
    ax.set_xlabel("recommend(k=10) latency, ms")
    ax.set_ylabel("requests")
    ax.legend()
    fig.tight_layout()
    return _save(fig, out / "latency.png", plt)


def _save(fig: Any, path: Path, plt: Any) -> Path:
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

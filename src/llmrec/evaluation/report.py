"""Evaluation reports: metrics as JSON plus plots per model, per user-activity bucket and
of request latency (``llmrec evaluate --report DIR``).

Every file names what was measured: ``metrics.json`` holds the dataset, the llmrec
version, the pipeline's configuration, the seed and the split fingerprint
(:meth:`~llmrec.evaluation.LeaveOneOutSplit.fingerprint`), and each plot's title repeats
the dataset, configuration and fingerprint, so a plot copied elsewhere still says where it
came from. Plots need matplotlib (``pip install 'llmrec[report]'``); without it the JSON is
still written and a warning says why no PNG was.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llmrec import __version__
from llmrec._validate import check_int
from llmrec.errors import InvalidInputError
from llmrec.evaluation import EvaluationResult, LeaveOneOutSplit, evaluate_predictions
from llmrec.storage.io import write_json

__all__ = [
    "ACTIVITY_BUCKETS",
    "activity_buckets",
    "pipeline_configuration",
    "popularity_predictions",
    "write_report",
]

logger = logging.getLogger(__name__)

#: Upper bounds (inclusive) of the user-activity buckets, in history items.
ACTIVITY_BUCKETS = (10, 25, 50, 100, 200)
#: Metrics drawn in ``models.png``.
PLOTTED_METRICS = ("recall@10", "ndcg@10", "mrr@10", "recall@20", "ndcg@20", "mrr@20")
#: Latency percentiles recorded and marked on ``latency.png``.
LATENCY_PERCENTILES = (50, 90, 99)
#: Characters of the split fingerprint shown in plot titles (the JSON keeps all 64).
SHORT_FINGERPRINT = 12


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


def pipeline_configuration(pipeline: Any) -> dict[str, Any]:
    """What a report says about the pipeline evaluated: encoder, index, device, and each
    trainable model with its epochs where it has them."""
    models: dict[str, Any] = {}
    for name, model in pipeline.retriever.models.items():
        epochs = getattr(model, "epochs", None)
        models[name] = {"epochs": epochs} if isinstance(epochs, int) else {}
    return {
        "encoder": pipeline.encoder.backend.name,
        "index": pipeline.retriever.index.name,
        "device": str(pipeline.device),
        "models": models,
    }


def _configuration_label(configuration: Mapping[str, Any]) -> str:
    """``encoder=..., models=ease+sequential(30 ep)`` and any extra scalar settings."""
    models = configuration.get("models") or {}
    names = [
        f"{name}({spec['epochs']} ep)" if isinstance(spec, Mapping) and "epochs" in spec else name
        for name, spec in models.items()
    ]
    parts = [f"encoder={configuration.get('encoder')}", f"models={'+'.join(names) or 'none'}"]
    parts += [
        f"{key}={value}"
        for key, value in configuration.items()
        if key not in ("encoder", "models", "index", "device")
        and isinstance(value, (str, int, float, bool))
    ]
    return ", ".join(parts)


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
    dataset: str | None = None,
    configuration: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write ``metrics.json`` and, with matplotlib, ``models.png``, ``activity.png`` and
    ``latency.png`` into ``out_dir``; returns the files written.

    ``metrics.json`` (mode 0644) records ``dataset``, ``llmrec_version``,
    ``configuration`` (:func:`pipeline_configuration` plus the given settings), ``seed``
    and ``split_fingerprint`` next to the metrics; the plot titles repeat the dataset, the
    configuration and the fingerprint's first 12 characters. The latency is of
    ``recommend(k=10, generate=False)``: no text is generated, and the JSON
    (``latency_ms.generated_text``) and the plot say so.

    Args:
        out_dir: Target directory (created).
        pipeline: The fitted pipeline that produced ``predictions`` (timed for latency).
        split: The split evaluated.
        result: :func:`~llmrec.evaluation.evaluate`'s result for the pipeline.
        predictions: Its predictions.
        split_name: ``"valid"`` or ``"test"``.
        latency_users: Users sampled to time ``recommend(k=10, generate=False)``.
        seed: Seed of that sample, and the seed the pipeline was fitted with.
        dataset: The dataset's name (for example ``"ml-100k"``).
        configuration: Settings to record beyond :func:`pipeline_configuration` (for
            example ``{"fast": True}``); they override its keys.
    """
    latency_users = check_int(latency_users, "latency_users", low=0, error=InvalidInputError)
    seed = check_int(seed, "seed", error=InvalidInputError)
    config = {**pipeline_configuration(pipeline), **dict(configuration or {})}
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
    fingerprint = split.fingerprint()
    summary = {
        "dataset": dataset,
        "llmrec_version": __version__,
        "configuration": config,
        "seed": seed,
        "split_fingerprint": fingerprint,
        "split": split_name,
        "models": {"llmrec": result.to_dict(), "popularity": baseline.to_dict()},
        "rare_items": rare.to_dict(),
        "activity_buckets": by_bucket,
        "latency_ms": {
            "n": int(len(latency)),
            "generated_text": False,
            **(
                {f"p{q}": float(np.percentile(latency, q)) for q in LATENCY_PERCENTILES}
                if len(latency)
                else {}
            ),
        },
    }
    write_json(out / "metrics.json", summary)
    # A report is for sharing: readable by others (the atomic write creates files 0600).
    os.chmod(out / "metrics.json", 0o644)
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

    caption = (
        f"{dataset or 'dataset'} ({split_name} split), {_configuration_label(config)}, "
        f"split {fingerprint[:SHORT_FINGERPRINT]}"
    )
    files.append(_plot_models(plt, out, caption, result, baseline))
    files.append(_plot_activity(plt, out, caption, by_bucket))
    if len(latency):
        files.append(_plot_latency(plt, out, caption, latency))
    return files


def _titled(plt: Any, caption: str, title: str) -> tuple[Any, Any]:
    """A figure whose title is ``title`` above the report's caption (dataset, configuration,
    split fingerprint)."""
    fig, ax = plt.subplots(figsize=(8, 4))
    fig.suptitle(caption, fontsize=8)
    ax.set_title(title, fontsize=10)
    return fig, ax


def _plot_models(
    plt: Any, out: Path, caption: str, result: EvaluationResult, baseline: EvaluationResult
) -> Path:
    fig, ax = _titled(plt, caption, f"pipeline against popularity, {result.n_users:,} users")
    x = np.arange(len(PLOTTED_METRICS))
    for n, (name, res) in enumerate((("llmrec", result), ("popularity", baseline))):
        ax.bar(x + (n - 0.5) * 0.38, [res.metrics[m] for m in PLOTTED_METRICS], 0.38, label=name)
    ax.set_xticks(x, PLOTTED_METRICS)
    ax.set_ylabel("score")
    ax.legend()
    fig.tight_layout()
    return _save(fig, out / "models.png", plt)


def _plot_activity(plt: Any, out: Path, caption: str, by_bucket: Mapping[str, Any]) -> Path:
    fig, ax = _titled(plt, caption, "NDCG@10 by user activity")
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


def _plot_latency(plt: Any, out: Path, caption: str, latency: np.ndarray) -> Path:
    fig, ax = _titled(
        plt, caption, f"recommend(k=10) latency, {len(latency)} requests, no text generated"
    )
    # Log-spaced bins on a log axis: one slow outlier must not crush the bulk into one bar.
    low, high = max(float(latency.min()), 1e-3), max(float(latency.max()), 1e-3)
    ax.hist(latency, bins=np.geomspace(low, high * 1.0001 if high > low else low * 2, 30))
    ax.set_xscale("log")
    for q, style in zip(LATENCY_PERCENTILES, (":", "--", "-")):
        value = float(np.percentile(latency, q))
        ax.axvline(value, color="k", linestyle=style, label=f"p{q} {value:.1f} ms")
    ax.set_xlabel("latency, ms (log scale; generate=False)")
    ax.set_ylabel("requests")
    ax.legend()
    fig.tight_layout()
    return _save(fig, out / "latency.png", plt)


def _save(fig: Any, path: Path, plt: Any) -> Path:
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

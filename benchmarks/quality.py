"""Recommendation quality on MovieLens: leave-one-out next-item, full ranking.

For each seed and split, a pipeline is fitted on exactly the events the split allows
(train for ``valid``; train + valid for ``test``), asked for 20 items per user (seen items
excluded) and scored with :mod:`llmrec.evaluation`. Predictions are written in the
reference scorer's JSON-lines format to ``benchmarks/out/<dataset>-<split>-seed<N>.jsonl``.

Every row is a positive: ratings are ignored, so events enter as clicks.

    python benchmarks/quality.py --dataset ml-100k --seeds 3
    python benchmarks/quality.py --dataset ml-100k --details ../shared/data/ml-100k-details.jsonl
    python benchmarks/quality.py --dataset ml-latest-small --data ../shared/data/ml-latest-small

``--data`` reads a local copy instead of the cache (which is fetched when absent);
ml-latest-small is iteratively 5-core filtered by default (``--min-interactions``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import machine_info, print_table, write_json  # noqa: E402

import llmrec  # noqa: E402
from llmrec.datasets import load_movielens  # noqa: E402
from llmrec.evaluation import (  # noqa: E402
    evaluate,
    evaluate_predictions,
    leave_one_out,
    write_predictions,
)

# Peer results on ML-100K under the same protocol (hash tie-break, 2-core CPU), measured
# with RecBole 1.2.1 / implicit / scikit-learn: R@10, NDCG@10, MRR@10, R@20, NDCG@20.
PEERS = {
    "Pop": (0.0764, 0.0388, 0.0276, 0.1177, 0.0491),
    "ItemKNN (k=100)": (0.1113, 0.0590, 0.0432, 0.1845, 0.0771),
    "BPR": (0.1294, 0.0706, 0.0529, 0.2121, 0.0914),
    "implicit ALS": (0.1251, 0.0618, 0.0427, 0.2068, 0.0823),
    "TF-IDF title+genres": (0.0318, 0.0130, 0.0075, 0.0541, 0.0185),
}
COLUMNS = ("recall@10", "ndcg@10", "mrr@10", "recall@20", "ndcg@20")


def run_once(data, split, split_name: str, seed: int, args) -> tuple[dict, dict]:
    events = [
        llmrec.Event(user_id=e.user_id, item_id=e.item_id, kind="click", timestamp=e.timestamp)
        for e in split.events_for(split_name)
    ]
    started = time.perf_counter()
    pipe = llmrec.Pipeline.from_catalog(
        data.items,
        encoder=args.encoder,
        llm="template",
        device=args.device,
        show_progress=False,
        models=(),
    )
    for name in args.models:
        options = {}
        if name == "sequential":
            options = {
                "show_progress": False,
                "device": args.device,
                "text_init": not args.no_text_init,
                **json.loads(args.sequential),
            }
        pipe.retriever.add_model(name, **options)
    pipe.fit(events, seed=seed, show_progress=False, train_ranker=not args.no_learned_fusion)
    fit_s = time.perf_counter() - started

    def recommend(user_id, history, exclude, k):
        return pipe.recommend(user_id, k=k, generate=False)

    started = time.perf_counter()
    result, predictions = evaluate(recommend, split, split_name, k=20, show_progress=False)
    eval_s = time.perf_counter() - started
    out = {k: result.metrics[k] for k in COLUMNS}
    out["coverage@10"] = result.metrics.get("coverage@10", float("nan"))
    # The same lists scored on subsets of users (no second round of recommending).
    for subset in ("no-ties", "rare-items"):
        sub = evaluate_predictions(split, predictions, split_name, subset=subset)
        out[f"{subset} users"] = sub.n_users
        for key in ("recall@10", "ndcg@10", "recall@20"):
            out[f"{subset} {key}"] = sub.metrics[key]
    out["fit_s"], out["eval_s"] = fit_s, eval_s
    out["ranker_weights"] = pipe.ranker.weights
    return out, predictions


def popularity_row(split, split_name: str) -> dict:
    """The same-run popularity baseline: every user gets the items with the most users
    in the events a model may learn from, seen items excluded (ties by item id)."""
    counts = split.item_counts(split_name)
    order = sorted(counts, key=lambda i: (-counts[i], i))
    predictions = {}
    for user in split.targets(split_name):
        seen = split.excluded(user, split_name)
        predictions[user] = [i for i in order[: 20 + len(seen)] if i not in seen][:20]
    result = evaluate_predictions(split, predictions, split_name)
    out = {k: result.metrics[k] for k in COLUMNS}
    no_ties = evaluate_predictions(split, predictions, split_name, subset="no-ties")
    out["no-ties ndcg@10"] = no_ties.metrics["ndcg@10"]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--split", choices=("test", "valid", "both"), default="both")
    parser.add_argument("--encoder", default="default", help="encoder backend name")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--models",
        default="ease,sequential",
        help="trainable candidate sources, comma-separated ('' for none)",
    )
    parser.add_argument(
        "--sequential",
        default="{}",
        metavar="JSON",
        help="SequentialSource options, e.g. '{\"max_len\": 200}'",
    )
    parser.add_argument(
        "--no-text-init",
        action="store_true",
        help="ablation: sequential item table not initialized from text",
    )
    parser.add_argument(
        "--no-learned-fusion",
        action="store_true",
        help="ablation: keep the ranker's default weights",
    )
    parser.add_argument(
        "--data",
        metavar="DIR",
        default=None,
        help="read the dataset from this directory instead of the cache",
    )
    parser.add_argument(
        "--details",
        metavar="PATH",
        default=None,
        help="enrichment JSON lines keyed by item id merged into the items",
    )
    parser.add_argument(
        "--min-interactions",
        type=int,
        default=None,
        help="iterative k-core filter (default 5 for ml-latest-small, else 0)",
    )
    parser.add_argument("--tag", default="", help="suffix for output file names")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "out"))
    args = parser.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    if args.min_interactions is None:
        args.min_interactions = 5 if args.dataset == "ml-latest-small" else 0
    data = load_movielens(
        args.dataset, path=args.data, details=args.details, min_interactions=args.min_interactions
    )
    print(
        f"{data!r} (details: {args.details or 'none'}, min_interactions: {args.min_interactions})"
    )
    split = leave_one_out(data)
    splits = ("valid", "test") if args.split == "both" else (args.split,)
    runs: dict[str, list[dict]] = {s: [] for s in splits}
    for seed in range(args.seeds):
        for split_name in splits:
            metrics, predictions = run_once(data, split, split_name, seed, args)
            path = out_dir / f"{args.dataset}-{split_name}-seed{seed}{args.tag}.jsonl"
            write_predictions(path, predictions)
            runs[split_name].append(metrics)
            print(
                f"seed {seed} {split_name}: "
                + "  ".join(f"{k}={metrics[k]:.4f}" for k in COLUMNS)
                + f"  (fit {metrics['fit_s']:.1f}s, eval {metrics['eval_s']:.1f}s) -> {path}"
            )

    rows = []
    summary = {}
    for split_name, metrics in runs.items():
        mean = {k: statistics.fmean(m[k] for m in metrics) for k in COLUMNS}
        std = {k: statistics.pstdev(m[k] for m in metrics) for k in COLUMNS}
        summary[split_name] = {"mean": mean, "std": std, "runs": metrics}
        rows.append(
            [f"llmrec ({split_name}, {len(metrics)} seed{'s' * (len(metrics) > 1)})"]
            + [f"{mean[k]:.4f}±{std[k]:.4f}" for k in COLUMNS]
        )
    for split_name in runs:
        pop = popularity_row(split, split_name)
        summary[split_name]["popularity"] = pop
        rows.append([f"Pop, this run ({split_name})"] + [f"{pop[k]:.4f}" for k in COLUMNS])
    if args.dataset == "ml-100k":
        rows += [
            [f"{name} (test)"] + [f"{v:.4f}" for v in values] for name, values in PEERS.items()
        ]
        if "test" in summary:
            best = max(v[1] for v in PEERS.values())
            ratio = summary["test"]["mean"]["ndcg@10"] / best
            summary["test"]["ndcg@10_vs_best_peer"] = ratio
    print_table(["model"] + list(COLUMNS), rows)
    subset_rows = []
    for split_name, metrics in runs.items():
        for subset in ("no-ties", "rare-items"):
            keys = [f"{subset} {k}" for k in ("recall@10", "ndcg@10", "recall@20")]
            means = {k: statistics.fmean(m[k] for m in metrics) for k in keys}
            stds = {k: statistics.pstdev(m[k] for m in metrics) for k in keys}
            summary[split_name][subset] = {
                "users": metrics[0][f"{subset} users"],
                "mean": means,
                "std": stds,
            }
            subset_rows.append(
                [f"{split_name} {subset} ({metrics[0][f'{subset} users']} users)"]
                + [f"{means[k]:.4f}±{stds[k]:.4f}" for k in keys]
            )
    print_table(["subset", "recall@10", "ndcg@10", "recall@20"], subset_rows)
    if "test" in summary and "ndcg@10_vs_best_peer" in summary["test"]:
        print(f"NDCG@10 / best peer NDCG@10 = {summary['test']['ndcg@10_vs_best_peer']:.3f}")
    result = {
        "benchmark": "quality",
        "dataset": args.dataset,
        "machine": machine_info(),
        "encoder": args.encoder,
        "models": args.models,
        "details": args.details,
        "sequential": json.loads(args.sequential),
        "min_interactions": args.min_interactions,
        "text_init": not args.no_text_init,
        "learned_fusion": not args.no_learned_fusion,
        "summary": summary,
        "peers": {k: dict(zip(COLUMNS, v)) for k, v in PEERS.items()},
    }
    write_json(out_dir, f"quality-{args.dataset}{args.tag}", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

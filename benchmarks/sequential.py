"""The sequential source alone, under the leave-one-out protocol: which settings make it
fit a dataset?

Each configuration is a set of :class:`llmrec.retrieval.models.SequentialSource` options
over the library's defaults. It trains on every user's train items, stops early on the
validation items (NDCG@10, full ranking), and is scored on the test items with the
train and validation items as history (all users, and the no-ties subset), full ranking,
seen items excluded -- the RecBole SASRec protocol of ``BENCHMARKS.md``. The item table
is initialized from the default encoder's title + genres vectors unless a configuration
says ``"text_init": false``.

    python benchmarks/sequential.py
    python benchmarks/sequential.py --configs '{"epochs": 100}' '{"max_len": 200}'
    python benchmarks/sequential.py --dataset ml-latest-small --data DIR --seeds 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import add_out_argument, machine_info, machine_line, print_table, write_json  # noqa: E402

import llmrec  # noqa: E402
from llmrec.datasets import load_movielens  # noqa: E402
from llmrec.evaluation import leave_one_out  # noqa: E402
from llmrec.retrieval.models import SequentialSource  # noqa: E402

COLUMNS = ("ndcg@10", "recall@10", "ndcg@20", "recall@20", "no-ties ndcg@10")


def ranks(source: SequentialSource, histories: list[list[int]], targets: list[int]) -> np.ndarray:
    """0-based rank of each target among all rows, the history's rows excluded (ties
    count against the target)."""
    out = np.empty(len(targets), dtype=np.int64)
    for start in range(0, len(targets), 512):
        logits = source.logits(histories[start : start + 512])
        for n, scores in enumerate(logits):
            scores[histories[start + n]] = -np.inf
            out[start + n] = int((scores >= scores[targets[start + n]]).sum()) - 1
    return out


def metrics(rank: np.ndarray) -> dict[str, float]:
    gain = np.where(rank < 10, 1.0 / np.log2(rank + 2), 0.0)
    gain20 = np.where(rank < 20, 1.0 / np.log2(rank + 2), 0.0)
    return {
        "ndcg@10": float(gain.mean()),
        "recall@10": float((rank < 10).mean()),
        "ndcg@20": float(gain20.mean()),
        "recall@20": float((rank < 20).mean()),
    }


def run(split, vectors, row_of, options: dict, seed: int, device: str) -> dict:
    users = split.users
    train = [[row_of[i] for i in split.train[u]] for u in users]
    valid = [(train[n], row_of[split.valid[u]]) for n, u in enumerate(users) if u in split.valid]
    test_users = list(split.targets("test"))
    no_ties = split.subset_users("no-ties", "test")
    histories = [[row_of[i] for i in split.history(u, "test")] for u in test_users]
    targets = [row_of[split.test[u]] for u in test_users]
    started = time.perf_counter()
    source = SequentialSource(**{"seed": seed, "device": device, **options, "show_progress": False})
    source.fit(train, vectors, valid=valid)
    fit_s = time.perf_counter() - started
    rank = ranks(source, histories, targets)
    out = metrics(rank)
    mask = np.array([u in no_ties for u in test_users])
    out["no-ties ndcg@10"] = metrics(rank[mask])["ndcg@10"]
    out.update(
        best_epoch=source.best_epoch,
        epochs_run=len(source.history),
        fit_s=fit_s,
        valid_ndcg=max((r.get("ndcg@10", 0.0) for r in source.history), default=0.0),
    )
    out["curve"] = [round(r.get("ndcg@10", 0.0), 4) for r in source.history]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--data", metavar="DIR", default=None, help="dataset directory")
    parser.add_argument(
        "--min-interactions",
        type=int,
        default=None,
        help="iterative k-core filter (default 5 for ml-latest-small, else 0)",
    )
    parser.add_argument(
        "--configs",
        nargs="*",
        default=["{}"],
        metavar="JSON",
        help="SequentialSource options over the defaults, one row each ('{}': the defaults)",
    )
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tag", default="")
    add_out_argument(parser)
    args = parser.parse_args(argv)
    if args.min_interactions is None:
        args.min_interactions = 5 if args.dataset == "ml-latest-small" else 0
    configs = [json.loads(c) for c in args.configs]
    info = machine_info()
    print(machine_line(info))
    data = load_movielens(args.dataset, path=args.data, min_interactions=args.min_interactions)
    split = leave_one_out(data)
    lengths = np.array([len(split.history(u, "test")) for u in split.users])
    print(
        f"{split}; history length mean {lengths.mean():.0f}, median {np.median(lengths):.0f}, "
        f"90th percentile {np.percentile(lengths, 90):.0f}",
        flush=True,
    )
    item_ids = [item.item_id for item in data.items]
    row_of = {item_id: n for n, item_id in enumerate(item_ids)}
    encoder = llmrec.ItemEncoder("default", device=args.device, show_progress=False)
    vectors = encoder.encode_items(data.items)

    rows, results = [], []
    for options in configs:
        runs = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            result = run(split, vectors, row_of, options, seed, args.device)
            print(
                f"{json.dumps(options)} seed {seed}: "
                + "  ".join(f"{c}={result[c]:.4f}" for c in COLUMNS)
                + f"  best epoch {result['best_epoch']}/{result['epochs_run']}"
                f"  {result['fit_s']:.0f}s\n  validation NDCG@10 by epoch: {result['curve']}",
                flush=True,
            )
            runs.append(result)
        mean = {c: float(np.mean([r[c] for r in runs])) for c in runs[0] if c != "curve"}
        std = {c: float(np.std([r[c] for r in runs])) for c in COLUMNS}
        results.append({"options": options, "runs": runs, "mean": mean, "std": std})
        rows.append(
            [json.dumps(options) if options else "defaults"]
            + [f"{mean[c]:.4f} ± {std[c]:.4f}" if args.seeds > 1 else mean[c] for c in COLUMNS]
            + [f"{mean['best_epoch']:.0f}/{mean['epochs_run']:.0f}", f"{mean['fit_s']:.0f}"]
        )
    print_table(
        ["configuration", *COLUMNS, "best/run epochs", "fit s"],
        rows,
        title=f"Sequential source alone, {args.dataset}, test, {args.seeds} seed(s)",
    )
    print(machine_line(info))
    write_json(
        args.out,
        f"sequential-{args.dataset}{args.tag}",
        {
            "benchmark": "sequential",
            "dataset": args.dataset,
            "min_interactions": args.min_interactions,
            "machine": info,
            "seeds": args.seeds,
            "split_fingerprint": split.fingerprint(),
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

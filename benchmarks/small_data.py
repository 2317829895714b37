"""Fusion on small data: does the fitted ranker hold where there is little to fit on?

Two small datasets, each scored leave-one-out (next item, full ranking, seen items
excluded) with NDCG@10:

* ML-100K subsampled to ``--users`` users (drawn with a seed, ``--draws`` draws), each
  keeping their last ``--events`` events;
* the 40-product outdoor shop with 20 customers of the test suite (``tests/shop.py``).

For each: the ranker as :meth:`llmrec.Pipeline.fit` trains it ("fitted"), the sources'
default weights ("default"), and every source ranking alone (the best one is reported).
The fitted ranker should be at least the better of the other two on every draw. Each
row also gives the 95% paired bootstrap interval over users of fitted minus the better of
the two, and the users each has a hit in the top 10 for: on 50 users a few hits decide.

    python benchmarks/small_data.py                 # MiniLM encoder
    python benchmarks/small_data.py --encoder hashing
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, os.pardir, "tests"))  # the shop test data

from _common import add_out_argument, machine_info, print_table, write_json  # noqa: E402
from shop import fusion_ndcg, shop_events, shop_items  # noqa: E402

import llmrec  # noqa: E402
from llmrec.datasets import load_movielens  # noqa: E402


def subsample(events, n_users: int, n_events: int, seed: int) -> list:
    """``n_users`` users drawn with ``seed``, each with their last ``n_events`` events."""
    by_user: dict[str, list] = {}
    for event in sorted(events, key=lambda e: e.timestamp):
        by_user.setdefault(event.user_id, []).append(event)
    users = sorted(by_user)
    drawn = np.random.default_rng(seed).choice(len(users), n_users, replace=False)
    return [e for i in sorted(drawn) for e in by_user[users[i]][-n_events:]]


def encode(items, args) -> np.ndarray:
    """The catalog's item vectors, made once per dataset and shared by every pipeline."""
    return (
        llmrec.Pipeline.from_catalog(
            items, encoder=args.encoder, llm="template", device=args.device, show_progress=False
        )
        .retriever.item_vectors[: len(items)]
        .copy()
    )


def run(name: str, items, vectors, events, args, seed: int) -> dict:
    """One row: NDCG@10 of fitted, default and each single source on ``events``."""

    def make():
        return llmrec.Pipeline.from_catalog(
            items,
            encoder=args.encoder,
            llm="template",
            device=args.device,
            show_progress=False,
            item_vectors=vectors,
        )

    started = time.perf_counter()
    per_user: dict[str, list[float]] = {}
    ndcg = fusion_ndcg(make, events, seed=seed, per_user=per_user)
    for key, value in ndcg.items():  # the per-user scores are the reported means
        assert abs(float(np.mean(per_user[key])) - value) < 1e-9, key
    singles = {k: v for k, v in ndcg.items() if k not in ("fitted", "default")}
    best = max(singles, key=singles.get)
    rival = "default" if ndcg["default"] >= singles[best] else best
    low, high = paired_interval(per_user["fitted"], per_user[rival], seed)
    row = {
        "dataset": name,
        "seed": seed,
        "users": len({e.user_id for e in events}),
        "events": len(events),
        "fitted": ndcg["fitted"],
        "default": ndcg["default"],
        "best_single": best,
        "best_single_ndcg": singles[best],
        "singles": singles,
        "holds": ndcg["fitted"] >= max(ndcg["default"], singles[best]) - 1e-12,
        "rival": rival,
        "difference_ci95": [low, high],
        "hits": {k: int(sum(v > 0 for v in per_user[k])) for k in ("fitted", rival)},
        "seconds": time.perf_counter() - started,
    }
    print(
        f"{name} seed {seed}: fitted {row['fitted']:.4f}  default {row['default']:.4f}  "
        f"best single {best} {singles[best]:.4f}  ({row['seconds']:.0f}s)",
        flush=True,
    )
    return row


def paired_interval(a, b, seed: int, resamples: int = 2000) -> tuple[float, float]:
    """95% paired bootstrap interval over users of ``mean(a) - mean(b)``: where it holds
    0, the two rankers are not told apart on these users."""
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (resamples, len(diff)))].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="default", help="encoder backend name")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument(
        "--data",
        metavar="DIR",
        default=None,
        help="read ML-100K from this directory instead of the cache",
    )
    add_out_argument(parser)
    args = parser.parse_args(argv)
    logging.getLogger("llmrec").setLevel(logging.ERROR)  # the skipped-model warnings

    data = load_movielens("ml-100k", path=args.data)
    items = list(data.items)
    vectors = encode(items, args)
    rows = []
    for seed in range(args.draws):
        events = subsample(data.events, args.users, args.events, seed)
        rows.append(run("ml-100k", items, vectors, events, args, seed))
    shop = shop_items()
    rows.append(run("shop", shop, encode(shop, args), shop_events(0)[0], args, 0))

    table = [
        [
            r["dataset"],
            r["seed"],
            r["users"],
            r["events"],
            r["fitted"],
            r["default"],
            f"{r['best_single']} {r['best_single_ndcg']:.4f}",
            "yes" if r["holds"] else "NO",
            f"{r['difference_ci95'][0]:+.4f} to {r['difference_ci95'][1]:+.4f}",
            f"{r['hits']['fitted']} vs {r['hits'][r['rival']]}",
        ]
        for r in rows
    ]
    print_table(
        ["data", "draw", "users", "events", "fitted", "default", "best single", "holds",
         "fitted - better other, 95% CI", "hits@10"],  # fmt: skip
        table,
        title=f"NDCG@10 on small data (encoder {args.encoder})",
    )
    write_json(
        args.out,
        f"small_data-{args.encoder}",
        {
            "benchmark": "small_data",
            "machine": machine_info(),
            "encoder": args.encoder,
            "users": args.users,
            "events_per_user": args.events,
            "rows": rows,
            "holds_on_every_draw": all(r["holds"] for r in rows),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

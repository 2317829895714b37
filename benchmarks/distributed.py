"""Catalog encoding with Ray Data: ``llmrec.apps.ray.encode_catalog`` with 1 and 2
workers against the plain single-process ``ItemEncoder``, same texts, same run.

Items: the 1,682 ML-100K movies, each repeated ``--copies`` times with a seeded
description of 8-40 words drawn from the catalog's own title words (so every text is
unique and texts vary in length), ``--n`` items in all (default 8,000). Encoder: the
embedded all-MiniLM-L6-v2 (dtype ``auto``).

Variants, each timed end to end (what a user waits for: for Ray, starting the encoder
actors and loading the model in each, moving texts and vectors through the object store):

* ``ItemEncoder`` in this process (torch's default threads; ``cache_size=0``) -- baseline;
* the same with 1 torch thread (what one Ray worker with 1 CPU runs);
* ``encode_catalog``, 1 worker x 1 CPU;
* ``encode_catalog``, 2 workers x 1 CPU each -- the 1 -> 2 worker speed-up;
* ``encode_catalog``, 1 worker x ``--cores`` CPUs (the same CPUs as 2 x 1, in one actor).

Variants run in turn, round after round (``--reps``); each one's best round is reported.
Ray is started once, before timing (its start-up is reported separately).

    python benchmarks/distributed.py --n 6000        # ~15 min on 2 busy cores
    python benchmarks/distributed.py --n 20000 --reps 3
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    add_out_argument,
    machine_info,
    machine_line,
    print_table,
    write_json,
)

from llmrec.types import Item  # noqa: E402


def augmented_items(n: int, data: str | None, seed: int = 0) -> list[Item]:
    """``n`` unique items: ML-100K movies repeated, each copy with its own description."""
    from llmrec.datasets import load_movielens

    movies = (
        load_movielens("ml-100k", path=data, fetch=False)
        if data
        else load_movielens("ml-100k", fetch=False)
    ).items
    rng = random.Random(seed)
    words = sorted({w.strip("(),.:!?'\"").lower() for m in movies for w in m.title.split()} - {""})
    out: list[Item] = []
    copy = 0
    while len(out) < n:
        for movie in movies:
            if len(out) >= n:
                break
            text = " ".join(rng.choice(words) for _ in range(rng.randint(8, 40)))
            out.append(
                Item(
                    f"{movie.item_id}-{copy}",
                    movie.title,
                    f"Edition {copy}: {text}.",
                    dict(movie.attributes),
                )
            )
        copy += 1
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8000, help="items to encode")
    parser.add_argument("--data", default=None, help="a MovieLens folder (default: the cache)")
    parser.add_argument("--reps", type=int, default=2, help="timed rounds per variant")
    parser.add_argument("--batch-size", type=int, default=256, help="texts per map_batches call")
    parser.add_argument(
        "--cores",
        type=int,
        default=os.cpu_count() or 2,
        help="CPUs given to the local Ray instance",
    )
    add_out_argument(parser)
    args = parser.parse_args(argv)

    import ray
    import torch

    from llmrec.apps.ray import encode_catalog
    from llmrec.encoding import ItemEncoder

    items = augmented_items(args.n, args.data)
    print(machine_line())
    load_before = os.getloadavg()
    print(f"{len(items)} items; load average {load_before[0]:.2f} on {os.cpu_count()} cores")

    started = time.perf_counter()
    ray.init(num_cpus=args.cores, include_dashboard=False, log_to_driver=False)
    ray_start_s = time.perf_counter() - started
    print(f"Ray started in {ray_start_s:.1f}s with {args.cores} CPUs")

    local = ItemEncoder("default", device="cpu", cache_size=0, show_progress=False)
    local.encode_items(items[:256])  # warm-up: oneDNN kernels, allocator

    def one_thread() -> np.ndarray:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return local.encode_items(items)
        finally:
            torch.set_num_threads(threads)

    def ray_variant(workers: int, cpus: float) -> Callable[[], np.ndarray]:
        return lambda: encode_catalog(
            items,
            num_workers=workers,
            cpus_per_worker=cpus,
            batch_size=args.batch_size,
            device="cpu",
            show_progress=False,
        )

    variants: list[tuple[str, Callable[[], np.ndarray]]] = [
        ("ItemEncoder, this process (baseline)", lambda: local.encode_items(items)),
        ("ItemEncoder, this process, 1 torch thread", one_thread),
        ("encode_catalog, 1 worker x 1 CPU", ray_variant(1, 1)),
        ("encode_catalog, 2 workers x 1 CPU", ray_variant(2, 1)),
        (f"encode_catalog, 1 worker x {args.cores} CPUs", ray_variant(1, args.cores)),
    ]
    ray_variant(1, 1)()  # warm-up: Ray Data's first run imports and schedules more
    times: dict[str, list[float]] = {name: [] for name, _ in variants}
    vectors: dict[str, np.ndarray] = {}
    for rep in range(args.reps):
        for name, run in variants:
            t0 = time.perf_counter()
            vectors[name] = run()
            times[name].append(time.perf_counter() - t0)
        print(
            f"round {rep + 1}/{args.reps}: "
            + ", ".join(f"{times[name][-1]:.1f}s" for name, _ in variants),
            flush=True,
        )
    load_after = os.getloadavg()
    ray.shutdown()

    base_name = variants[0][0]
    one_name = variants[2][0]
    base = vectors[base_name]
    rows, results = [], []
    for name, _ in variants:
        best = min(times[name])
        cos = (vectors[name] * base).sum(axis=1)
        rows.append(
            [
                name,
                best,
                len(items) / best,
                f"{min(times[base_name]) / best:.2f}x",
                f"{min(times[one_name]) / best:.2f}x" if name != base_name else "-",
                f"{cos.min():.6f}",
            ]
        )
        results.append(
            {
                "variant": name,
                "seconds": times[name],
                "best_s": best,
                "items_per_s": len(items) / best,
                "vs_baseline": min(times[base_name]) / best,
                "vs_one_worker": min(times[one_name]) / best,
                "cosine_vs_baseline_min": float(cos.min()),
                "max_abs_diff_vs_baseline": float(np.abs(vectors[name] - base).max()),
            }
        )
    print_table(
        [
            "variant",
            "seconds (best)",
            "items/s",
            "vs baseline",
            "vs 1 worker",
            "min cos vs baseline",
        ],
        rows,
        title=f"Encoding {len(items)} items with all-MiniLM-L6-v2 on CPU "
        f"(best of {args.reps} rounds, end to end)",
    )
    print(
        f"\nload average before/after: {load_before[0]:.2f} / {load_after[0]:.2f} "
        f"on {os.cpu_count()} cores"
    )
    write_json(
        args.out,
        "distributed",
        {
            "benchmark": "distributed",
            "machine": machine_info(),
            "n": len(items),
            "reps": args.reps,
            "batch_size": args.batch_size,
            "ray_cpus": args.cores,
            "ray_version": ray.__version__,
            "ray_start_s": ray_start_s,
            "load_average_before_after": [load_before, load_after],
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

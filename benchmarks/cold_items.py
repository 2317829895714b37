"""Cold items on MovieLens: does fine-tuning the encoder on interactions help recommend
items nobody has interacted with yet?

A seeded 20% of the items are held out with every training interaction on them (they
are cold: only their text is known). The test users are those whose leave-one-out test
item is a held-out one; each gets a full ranking over all items (their train and valid
items excluded, as in :mod:`llmrec.evaluation`), scored with the library's metrics.
Rows:

* popularity over the remaining interactions (a cold item has none: the floor);
* content kNN on the frozen encoder over title + genres + year: an item's score is the
  mean of its ``--neighbors`` highest cosines to the user's (non-held-out) history items;
* the same on title + genres + year + details (``--details PATH``: description,
  director, writer, cast);
* the same on the encoder fine-tuned by ``Pipeline.fit(..., finetune_encoder=...)`` on
  the remaining interactions (with details when given).

A last column ranks, for every user, only the held-out items by the same scores, and
counts the share of the user's held-out items in the top 20: every cold interaction
counts there, not just the test users' one.

The headline is the fine-tuned row's NDCG@10 over the frozen title + genres row's, with
paired bootstrap intervals over the test users (a few hundred per draw, so the intervals
are wide: ``--seeds N`` pools N held-out draws, each with its own fine-tuning).

    python benchmarks/cold_items.py
    python benchmarks/cold_items.py --details ../shared/data/ml-100k-details.jsonl
    python benchmarks/cold_items.py --details PATH --seeds 3 --finetune '{"max_seconds": 120}'
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
from llmrec.evaluation import clean_ranking, leave_one_out, rank_metrics  # noqa: E402

KS = (10, 20)
COLUMNS = ("ndcg@10", "recall@10", "ndcg@20", "recall@20")
#: Every user's held-out items ranked among the held-out items (:func:`held_out_recall`).
DENSE = "held-out recall@20"
#: The issue's target: fine-tuned with details over frozen title + genres, NDCG@10.
TARGET = 1.5


def cold_setup(split, fraction: float, seed: int):
    """``(held, targets, train_events, histories)``: the held-out item ids, test user ->
    held-out test item, the fit events without any held-out item, and each test user's
    history without held-out items."""
    rng = np.random.default_rng(seed)
    ids = sorted(split.items)
    held = set(rng.choice(ids, int(round(fraction * len(ids))), replace=False).tolist())
    targets = {u: t for u, t in split.targets("test").items() if t in held}
    train_events = [
        llmrec.Event(user_id=e.user_id, item_id=e.item_id, kind="click", timestamp=e.timestamp)
        for e in split.events_for("test")
        if e.item_id not in held
    ]
    histories = {u: [i for i in split.history(u, "test") if i not in held] for u in targets}
    return held, targets, train_events, histories


def knn_scores(vectors: np.ndarray, history_rows: list[int], neighbors: int) -> np.ndarray:
    """Each item's mean of its ``neighbors`` highest cosines to the history items."""
    if not history_rows:
        return np.zeros(len(vectors), dtype=np.float32)
    sims = vectors @ vectors[history_rows].T
    k = min(neighbors, sims.shape[1])
    return np.sort(np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:], axis=1).mean(1)


def scorer(matrix, counts, histories, row_of, neighbors):
    """User -> scores of every item: popularity ``counts`` when ``matrix`` is ``None``,
    else kNN over the rows of ``matrix``."""

    def scores_of(user: str) -> np.ndarray:
        if matrix is None:
            return counts
        return knn_scores(matrix, [row_of[i] for i in histories[user]], neighbors)

    return scores_of


def held_out_recall(split, held, row_of, matrix, counts, neighbors, k: int = 20) -> list[float]:
    """Per user with held-out items: the share of them (at most ``k``) in the top ``k``
    when only the held-out items are ranked, from the user's other items. Every
    held-out interaction of every user counts, so this is far less noisy than the few
    hundred test users' metrics."""
    held_rows = np.array(sorted(row_of[i] for i in held))
    # Ties (popularity gives every cold item 0) are broken at random, not by item id,
    # which on MovieLens follows popularity.
    tie_break = np.random.default_rng(0).permutation(len(held_rows))
    targets = split.targets("test")
    out = []
    for user in split.users:
        items = split.history(user, "test") + ([targets[user]] if user in targets else [])
        liked = {row_of[i] for i in items if i in held}
        history = [row_of[i] for i in items if i not in held]
        if not liked or not history:
            continue
        scores = counts if matrix is None else knn_scores(matrix, history, neighbors)
        top = held_rows[np.lexsort((tie_break, -scores[held_rows]))[:k]]
        out.append(len(liked.intersection(top.tolist())) / min(k, len(liked)))
    return out


def score(split, targets, item_ids, scores_of) -> dict[str, list[float]]:
    """Per metric, each test user's value (users in ``targets`` order)."""
    known = frozenset(split.items)
    out: dict[str, list[float]] = {c: [] for c in COLUMNS}
    for user, target in targets.items():
        scores = scores_of(user)
        order = np.argsort(-scores, kind="stable")
        excluded = split.excluded(user, "test")
        ranked = clean_ranking((item_ids[i] for i in order), excluded, known, max(KS))
        metrics = rank_metrics(ranked, target, KS)
        for c in COLUMNS:
            out[c].append(metrics[c])
    return out


def bootstrap(num: list[float], den: list[float], seed: int, n: int = 2000) -> dict:
    """95% paired-bootstrap intervals over users of ``mean(num) / mean(den)`` (resamples
    whose denominator is 0 left out) and of ``mean(num) - mean(den)``."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(num), np.asarray(den)
    idx = rng.integers(0, len(a), (n, len(a)))
    means_a, means_b = a[idx].mean(1), b[idx].mean(1)
    ratios = means_a[means_b > 0] / means_b[means_b > 0]
    return {
        "ratio_ci95": [float(np.quantile(ratios, q)) for q in (0.025, 0.975)],
        "difference_ci95": [float(np.quantile(means_a - means_b, q)) for q in (0.025, 0.975)],
    }


def frozen_vectors(items, device: str) -> tuple[np.ndarray, float]:
    """The frozen default encoder's vectors of ``items`` and the seconds they took."""
    started = time.perf_counter()
    encoder = llmrec.ItemEncoder("default", device=device, show_progress=False)
    return encoder.encode_items(items), time.perf_counter() - started


def finetuned_vectors(items, frozen, train_events, args, seed):
    """Item vectors after ``Pipeline.fit(..., finetune_encoder=...)`` on ``train_events``
    (starting from the frozen vectors), the fit's seconds and the fine-tuning report."""
    started = time.perf_counter()
    pipe = llmrec.Pipeline.from_catalog(
        items,
        encoder="default",
        llm="template",
        models=(),
        device=args.device,
        show_progress=False,
        item_vectors=frozen,
    )
    options = json.loads(args.finetune) or True
    pipe.fit(
        train_events, finetune_encoder=options, train_ranker=False, seed=seed, show_progress=False
    )
    vectors = pipe.retriever.item_vectors[pipe.catalog.rows([i.item_id for i in items])]
    return vectors, time.perf_counter() - started, pipe.encoder.finetune_report_


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
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
    parser.add_argument("--holdout", type=float, default=0.2, help="share of items held out")
    parser.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="held-out draws (seeds 0..N-1), each with its own fine-tuning; "
        "users of all draws are pooled",
    )
    parser.add_argument(
        "--neighbors",
        type=int,
        default=10,
        help="history items each candidate's kNN score averages",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--finetune",
        default="{}",
        metavar="JSON",
        help="ContrastiveFinetuner options, e.g. '{\"max_seconds\": 120}'",
    )
    parser.add_argument("--tag", default="", help="suffix for the JSON file name")
    add_out_argument(parser)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    info = machine_info()
    print(machine_line(info))

    plain = load_movielens(args.dataset, path=args.data)
    split = leave_one_out(plain)
    item_ids = [item.item_id for item in plain.items]
    row_of = {item_id: n for n, item_id in enumerate(item_ids)}
    base = "frozen kNN, title+genres"
    frozen = {base: frozen_vectors(plain.items, args.device)}
    tuned_items, tuned = plain.items, "fine-tuned kNN, title+genres"
    if args.details:
        rich = load_movielens(args.dataset, path=args.data, details=args.details)
        assert [i.item_id for i in rich.items] == item_ids
        frozen["frozen kNN, with details"] = frozen_vectors(rich.items, args.device)
        tuned_items, tuned = rich.items, "fine-tuned kNN, with details"
    tuned_from = frozen[list(frozen)[-1]][0]

    names = ["popularity", *frozen, tuned]
    per_user = {n: {c: [] for c in (*COLUMNS, DENSE)} for n in names}
    seconds = {n: frozen[n][1] if n in frozen else 0.0 for n in names}
    draws = []
    for seed in range(args.seeds):
        held, targets, train_events, histories = cold_setup(split, args.holdout, seed)
        print(
            f"seed {seed}: {len(held)} items held out, {len(train_events)} fit events, "
            f"{len(targets)} test users whose test item is held out",
            flush=True,
        )
        counts = np.zeros(len(item_ids))
        for event in train_events:
            counts[row_of[event.item_id]] += 1
        vectors, fit_s, report = finetuned_vectors(
            tuned_items, tuned_from, train_events, args, seed
        )
        seconds[tuned] += fit_s / args.seeds
        rows = {"popularity": None, **{n: v for n, (v, _) in frozen.items()}, tuned: vectors}
        draw = {
            "seed": seed,
            "held_out_items": len(held),
            "test_users": len(targets),
            "finetune_fit_s": fit_s,
            "finetune_report": report and report.to_dict(),
        }
        for name, matrix in rows.items():
            scores_of = scorer(matrix, counts, histories, row_of, args.neighbors)
            values = score(split, targets, item_ids, scores_of)
            values[DENSE] = held_out_recall(split, held, row_of, matrix, counts, args.neighbors)
            for c in (*COLUMNS, DENSE):
                per_user[name][c] += values[c]
            draw[name] = {c: float(np.mean(values[c])) for c in (*COLUMNS, DENSE)}
            print(
                f"  {name}: " + "  ".join(f"{c}={draw[name][c]:.4f}" for c in COLUMNS), flush=True
            )
        draws.append(draw)

    means = {n: {c: float(np.mean(per_user[n][c])) for c in (*COLUMNS, DENSE)} for n in names}
    denominator = max(means[base]["ndcg@10"], 1e-12)
    table = [
        [n]
        + [means[n][c] for c in COLUMNS]
        + [means[n]["ndcg@10"] / denominator, means[n][DENSE], f"{seconds[n]:.0f}"]
        for n in names
    ]
    users = len(per_user[base]["ndcg@10"])
    dense_users = len(per_user[base][DENSE])
    print_table(
        ["model", *COLUMNS, "NDCG@10 vs frozen t+g", DENSE, "seconds"],
        table,
        title=f"Cold items: {users} test users over {args.seeds} held-out draw(s) "
        f"of {args.holdout:.0%} of the items ({DENSE}: {dense_users} users' held-out "
        "items ranked among the held-out items)",
    )
    ratio = means[tuned]["ndcg@10"] / denominator
    spread = bootstrap(per_user[tuned]["ndcg@10"], per_user[base]["ndcg@10"], 0)
    total_s = time.perf_counter() - started
    print(
        f"\n{tuned} / {base}, NDCG@10: {ratio:.2f}x (95% bootstrap over users "
        f"{spread['ratio_ci95'][0]:.2f}-{spread['ratio_ci95'][1]:.2f}; difference "
        f"{means[tuned]['ndcg@10'] - means[base]['ndcg@10']:+.4f}, "
        f"{spread['difference_ci95'][0]:+.4f} to {spread['difference_ci95'][1]:+.4f}); "
        f"target {TARGET}x with details; fine-tuning fit {seconds[tuned]:.0f}s per draw; "
        f"total {total_s:.0f}s"
    )
    print(machine_line(info))
    result = {
        "benchmark": "cold_items",
        "dataset": args.dataset,
        "machine": info,
        "details": args.details,
        "holdout": args.holdout,
        "seeds": args.seeds,
        "neighbors": args.neighbors,
        "finetune_options": json.loads(args.finetune),
        "test_users": users,
        "held_out_recall_users": dense_users,
        "rows": means,
        "seconds": seconds,
        "draws": draws,
        "ratio_ndcg@10": ratio,
        **spread,
        "target": TARGET,
        "total_s": total_s,
    }
    write_json(args.out, f"cold_items-{args.dataset}{args.tag}", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

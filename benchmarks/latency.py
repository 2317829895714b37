"""Request latency of ``Pipeline.observe`` and ``Pipeline.recommend`` on a large catalog.

The catalog is ``--items`` synthetic items whose 384-d unit vectors come from 1,000
Gaussian clusters (no transformer encodes them: the pipeline is assembled from its parts,
with the ``hashing`` encoder only for query text). It is fitted on synthetic users whose
events follow 1-3 preferred clusters each. Then observe and recommend calls for random
users are timed interleaved (two observes, one recommend), as a live service sees them.

Same-run baselines for ``recommend(k=10, generate=False)``:

* a brute-force numpy scan, ``item_vectors @ q`` + ``argpartition`` top-10 (the floor of
  any "nearest items to the user" recommender, with none of the pipeline's work);
* the same pipeline state with ``index="exact"`` instead of HNSW.

With ``--generate`` it also times ``recommend(k=10, generate=True)`` on ML-100K with the
embedded encoder and LLM (needs the cached data and the model packages).

    python benchmarks/latency.py                 # 100,000 items
    python benchmarks/latency.py --items 200000
    python benchmarks/latency.py --generate
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    add_out_argument,
    latency_summary,
    machine_info,
    machine_line,
    print_table,
    write_json,
)

from llmrec.catalog import Catalog  # noqa: E402
from llmrec.encoding import ItemEncoder  # noqa: E402
from llmrec.errors import LLMRecError  # noqa: E402
from llmrec.pipeline import TAG_FEATURE, Pipeline  # noqa: E402
from llmrec.profile import ProfileStore  # noqa: E402
from llmrec.ranking import Ranker  # noqa: E402
from llmrec.retrieval import Retriever  # noqa: E402
from llmrec.types import Event, Item  # noqa: E402

DIM = 384
N_TAGS = 40


# ---------------------------------------------------------------------------- synthetic data
def clustered_catalog(
    n_items: int, n_clusters: int, rng: np.random.Generator
) -> tuple[list[Item], np.ndarray, np.ndarray]:
    """Items, their unit vectors (n, 384) float32, and each item's cluster."""
    centers = rng.standard_normal((n_clusters, DIM)).astype(np.float32)
    cluster = rng.integers(0, n_clusters, size=n_items)
    # noise of norm ~0.6x the center's: cosine to the center ~0.85, to other clusters ~0
    vectors = centers[cluster] + 0.6 * rng.standard_normal((n_items, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    items = [
        Item(
            item_id=f"i{n}",
            title=f"Item {n}",
            attributes={"genres": [f"tag{cluster[n] % N_TAGS}", f"tag{n % 7 + N_TAGS}"]},
        )
        for n in range(n_items)
    ]
    return items, vectors, cluster


def user_events(
    n_users: int, per_user: int, cluster: np.ndarray, n_clusters: int, rng: np.random.Generator
) -> tuple[list[Event], list[np.ndarray]]:
    """``per_user`` clicks per user from 1-3 preferred clusters (80%) or anywhere (20%)."""
    members = [[] for _ in range(n_clusters)]
    for row, c in enumerate(cluster.tolist()):
        members[c].append(row)
    members_arr = [np.asarray(m, dtype=np.int64) for m in members]
    events: list[Event] = []
    prefs: list[np.ndarray] = []
    t = 1_600_000_000.0
    for u in range(n_users):
        liked = rng.choice(n_clusters, size=int(rng.integers(1, 4)), replace=False)
        prefs.append(liked)
        for _ in range(per_user):
            if rng.random() < 0.8:
                pool = members_arr[int(rng.choice(liked))]
                row = (
                    int(pool[rng.integers(len(pool))])
                    if len(pool)
                    else int(rng.integers(len(cluster)))
                )
            else:
                row = int(rng.integers(len(cluster)))
            t += 1.0
            events.append(Event(user_id=f"u{u}", item_id=f"i{row}", kind="click", timestamp=t))
    return events, prefs


# ---------------------------------------------------------------------------- building
def build_pipeline(
    items: list[Item], vectors: np.ndarray, index: str, catalog: Catalog | None = None
) -> tuple[Pipeline, float]:
    """Assemble a pipeline from its parts; returns it and the index build time."""
    if catalog is None:
        catalog = Catalog()
        rows = catalog.upsert(items)
    else:
        rows = catalog.rows([item.item_id for item in items])
    retriever = Retriever(DIM, index=index, n_items_hint=len(items))
    started = time.perf_counter()
    retriever.upsert(rows, vectors)
    build_s = time.perf_counter() - started
    ranker = Ranker(retriever.feature_names + (TAG_FEATURE,))
    profiles = ProfileStore(DIM)
    encoder = ItemEncoder("hashing", dim=DIM, device="cpu", show_progress=False)
    pipe = Pipeline(catalog, encoder, retriever, ranker, profiles, llm="template", device="cpu")
    return pipe, build_s


def share_fitted_state(source: Pipeline, target: Pipeline) -> None:
    """Give ``target`` (another index over the same vectors) ``source``'s fitted state."""
    target.retriever.popularity = source.retriever.popularity
    target.retriever.cooccurrence = source.retriever.cooccurrence
    target.ranker = source.ranker
    target.profiles = source.profiles


def naive_top10(item_vectors: np.ndarray, q: np.ndarray, k: int = 10) -> np.ndarray:
    scores = item_vectors @ q
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top])]


# ---------------------------------------------------------------------------- sections
def run_catalog(args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(args.seed)
    setup: dict[str, float] = {}
    started = time.perf_counter()
    items, vectors, cluster = clustered_catalog(args.items, args.clusters, rng)
    setup["make_items_s"] = time.perf_counter() - started

    pipe, setup["hnsw_build_s"] = build_pipeline(items, vectors, "hnsw")
    print(f"HNSW index over {args.items:,} items built in {setup['hnsw_build_s']:.1f}s", flush=True)

    started = time.perf_counter()
    events, prefs = user_events(args.users, args.events_per_user, cluster, args.clusters, rng)
    setup["make_events_s"] = time.perf_counter() - started
    started = time.perf_counter()
    pipe.fit(events, show_progress=False, seed=args.seed)
    setup["fit_s"] = time.perf_counter() - started
    print(
        f"fitted on {len(events):,} events of {args.users:,} users in {setup['fit_s']:.1f}s",
        flush=True,
    )

    exact, setup["exact_build_s"] = build_pipeline(items, vectors, "exact", catalog=pipe.catalog)
    share_fitted_state(pipe, exact)

    # warm-up (first searches, lazy caches)
    for u in range(20):
        pipe.recommend(f"u{u}", k=10, generate=False)
        exact.recommend(f"u{u}", k=10, generate=False)

    # Live traffic: two observes, then one recommend, for random users.
    members = [np.flatnonzero(cluster == c) for c in range(args.clusters)]
    observe_s: list[float] = []
    recommend_s: list[float] = []
    rec_users: list[str] = []
    t = events[-1].timestamp
    for _n in range(args.recommends):
        for _ in range(args.observes // args.recommends):
            u = int(rng.integers(args.users))
            pool = members[int(rng.choice(prefs[u]))]
            row = int(pool[rng.integers(len(pool))]) if len(pool) else int(rng.integers(args.items))
            t += 1.0
            event = Event(user_id=f"u{u}", item_id=f"i{row}", kind="click", timestamp=t)
            t0 = time.perf_counter()
            pipe.observe(event)
            observe_s.append(time.perf_counter() - t0)
        user = f"u{int(rng.integers(args.users))}"
        rec_users.append(user)
        t0 = time.perf_counter()
        recs = pipe.recommend(user, k=10, generate=False)
        recommend_s.append(time.perf_counter() - t0)
        assert len(recs) == 10, (user, len(recs))

    # Baselines on the same users and the same (final) profiles.
    item_vectors = np.ascontiguousarray(pipe.retriever.item_vectors[: args.items])
    naive_s, exact_s, hnsw_again_s, overlap = [], [], [], []
    for n, user in enumerate(rec_users):
        q = pipe.profile(user).query_vector()
        t0 = time.perf_counter()
        naive_top10(item_vectors, q)
        naive_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        exact_recs = exact.recommend(user, k=10, generate=False)
        exact_s.append(time.perf_counter() - t0)
        if n < args.overlap_users:
            t0 = time.perf_counter()
            hnsw_recs = pipe.recommend(user, k=10, generate=False)
            hnsw_again_s.append(time.perf_counter() - t0)
            got = {r.item_id for r in hnsw_recs}
            overlap.append(len(got & {r.item_id for r in exact_recs}) / 10)

    stats = {
        "observe": latency_summary(observe_s),
        "recommend_hnsw": latency_summary(recommend_s),
        "recommend_exact": latency_summary(exact_s),
        "naive_numpy_top10": latency_summary(naive_s),
    }
    base = stats["naive_numpy_top10"]["p50_ms"]
    rows = [
        ["Pipeline.observe (click)", *_lat(stats["observe"]), "-"],
        [
            "Pipeline.recommend k=10, hnsw",
            *_lat(stats["recommend_hnsw"]),
            f"{stats['recommend_hnsw']['p50_ms'] / base:.1f}x",
        ],
        [
            "Pipeline.recommend k=10, exact",
            *_lat(stats["recommend_exact"]),
            f"{stats['recommend_exact']['p50_ms'] / base:.1f}x",
        ],
        [
            "baseline: numpy item_vectors @ q + argpartition top-10",
            *_lat(stats["naive_numpy_top10"]),
            "1.0x",
        ],
    ]
    title = (
        f"Latency at {args.items:,} items, {args.users:,} users "
        f"({len(observe_s)} observes interleaved with {len(recommend_s)} recommends)"
    )
    print_table(
        ["call", "n", "p50 ms", "p99 ms", "mean ms", "max ms", "p50 vs numpy scan"],
        rows,
        title=title,
    )
    print(
        f"\nrecommend hnsw/exact p99 ratio: "
        f"{stats['recommend_hnsw']['p99_ms'] / stats['recommend_exact']['p99_ms']:.2f}; "
        f"top-10 overlap hnsw vs exact over {len(overlap)} users: {np.mean(overlap):.3f}"
    )
    print("setup: " + ", ".join(f"{k} {v:.1f}" for k, v in setup.items()))
    target_rec, target_obs = 20.0, 2.0
    print(
        f"targets (200k items): recommend p99 <= {target_rec} ms: "
        f"{stats['recommend_hnsw']['p99_ms']:.2f} ms; observe p99 <= {target_obs} ms: "
        f"{stats['observe']['p99_ms']:.3f} ms"
    )
    return {
        "items": args.items,
        "clusters": args.clusters,
        "users": args.users,
        "events": len(events),
        "setup_s": setup,
        "latency": stats,
        "top10_overlap_hnsw_vs_exact": float(np.mean(overlap)) if overlap else None,
        "overlap_users": len(overlap),
        "table": rows,
    }


def _lat(s: dict[str, float]) -> list[Any]:
    return [s["n"], s["p50_ms"], s["p99_ms"], s["mean_ms"], s["max_ms"]]


def run_generate(args: argparse.Namespace) -> dict[str, Any]:
    """``recommend(generate=True)`` latency on ML-100K with the embedded models.

    Returns a result dict, or one with ``"skipped"`` saying why it could not run."""
    try:
        import llmrec.generation  # noqa: F401  (the content generator must exist)
        from llmrec.datasets import load_movielens

        data = (
            load_movielens("ml-100k", path=args.data, fetch=False)
            if args.data
            else load_movielens("ml-100k", fetch=False)
        )
    except (ImportError, LLMRecError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
        print(f"\n--generate skipped: {reason}")
        return {"skipped": reason}
    started = time.perf_counter()
    models: Any = (
        args.gen_models
        if args.gen_models == "auto"
        else tuple(m for m in args.gen_models.split(",") if m)
    )
    pipe = Pipeline.from_catalog(
        data.items, llm=args.llm, device=args.device, models=models, show_progress=False
    )
    events = [
        Event(user_id=e.user_id, item_id=e.item_id, kind="click", timestamp=e.timestamp)
        for e in data.events
    ]
    pipe.fit(events, show_progress=False, seed=args.seed)
    setup_s = time.perf_counter() - started
    rng = np.random.default_rng(args.seed)
    users = sorted({e.user_id for e in events})
    started = time.perf_counter()
    pipe.recommend(users[0], k=10, generate=True)  # loads the LLM
    load_s = time.perf_counter() - started
    gen_s, rank_s = [], []
    for _ in range(args.generate_calls):
        user = users[int(rng.integers(len(users)))]
        t0 = time.perf_counter()
        pipe.recommend(user, k=10, generate=False)
        rank_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        recs = pipe.recommend(user, k=10, generate=True)
        gen_s.append(time.perf_counter() - t0)
        assert all(r.text is not None for r in recs)
    stats = {
        "recommend_generate": latency_summary(gen_s),
        "recommend_no_generate": latency_summary(rank_s),
    }
    print_table(
        ["call", "n", "p50 ms", "p99 ms", "mean ms", "max ms"],
        [
            ["recommend k=10, generate=True", *_lat(stats["recommend_generate"])],
            ["recommend k=10, generate=False", *_lat(stats["recommend_no_generate"])],
        ],
        title=f"ML-100K with llm={args.llm!r}, device {pipe.device} "
        f"(setup {setup_s:.1f}s, first call incl. model load {load_s:.1f}s)",
    )
    return {
        "dataset": "ml-100k",
        "llm": args.llm,
        "models": args.gen_models,
        "device": str(pipe.device),
        "setup_s": setup_s,
        "first_call_s": load_s,
        "latency": stats,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--clusters", type=int, default=1_000)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--events-per-user", type=int, default=20)
    parser.add_argument("--observes", type=int, default=2_000)
    parser.add_argument("--recommends", type=int, default=1_000)
    parser.add_argument(
        "--overlap-users",
        type=int,
        default=200,
        help="users whose hnsw and exact top-10 are compared",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--generate", action="store_true", help="also time recommend(generate=True) on ML-100K"
    )
    parser.add_argument("--generate-only", action="store_true", help="only the --generate section")
    parser.add_argument("--generate-calls", type=int, default=20)
    parser.add_argument("--llm", default="default")
    parser.add_argument(
        "--gen-models",
        default="ease",
        help="trainable sources for --generate: 'auto' or comma-separated names "
        "(default ease: the sequential model only lengthens setup)",
    )
    parser.add_argument("--device", default="auto", help="device for --generate")
    parser.add_argument("--data", default=None, help="a MovieLens folder for --generate")
    add_out_argument(parser)
    args = parser.parse_args(argv)

    print(machine_line())
    result: dict[str, Any] = {"benchmark": "latency", "machine": machine_info()}
    if not args.generate_only:
        result["catalog"] = run_catalog(args)
    if args.generate or args.generate_only:
        result["generate"] = run_generate(args)
    name = "latency-generate" if args.generate_only else f"latency-{args.items // 1000}k"
    write_json(args.out, name, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

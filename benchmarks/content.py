"""Personalized content on text-rich catalogs, checked by an independent checker.

Three catalogs: the 40-product shop and the 20-article news set of
``benchmarks/content_data.py`` (planted tastes, known ground truth) and, with
``--details PATH``, MovieLens-100K merged with a details file
(``load_movielens("ml-100k", details=PATH)``). For each, two pipelines share one encoder
and the same fit (EASE + the default sources): one writes with the embedded language
model (``--llm``, default SmolLM2-135M), one with the template. Each selected user gets
``--k`` recommendations per content kind (``Pipeline.recommend(..., content=kind)``
where the library has content kinds, else reasons only) and a digest
(``Pipeline.digest``) where it exists.

Every text goes through ``benchmarks/content_check.py``, which shares no code with
llmrec's verifier: claims split and checked against the catalog and the user's data.
Reported per catalog, kind and side (LLM pipeline vs template pipeline):

* statement precision (supported claims / claims) and the share of fully supported
  texts; the count of texts in each false-claim class;
* variety: the largest share of texts sharing a 3-word opening, the unique-sentence
  ratio (over all texts, and within each user's list), distinct-2;
* personalization: for the same item shown to two users, the share of pairs with
  different text; the share of texts citing the user's own history or words;
* latency p50 of one ``recommend`` call with text (k texts), per text, and the time to
  the first streamed text.

    python benchmarks/content.py --users 6 --k 5
    python benchmarks/content.py --details ../shared/data/ml-100k-details.jsonl \\
        --texts-out benchmarks/out/content-texts.jsonl
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import content_check as check  # noqa: E402
import content_data as data  # noqa: E402
from _common import (  # noqa: E402
    add_out_argument,
    machine_info,
    machine_line,
    percentile,
    print_table,
    write_json,
)

from llmrec.encoding import ItemEncoder  # noqa: E402
from llmrec.pipeline import Pipeline  # noqa: E402

FLAGS = (
    "other_item",
    "other_category",
    "user_tags_as_item",
    "unsupported_relation",
    "invented_number",
    "invented_name",
    "repeated_phrase",
    "false_history",
    "false_taste",
    "false_identity",
    "target_not_named",
)
TARGETS = {
    "statement_precision": 0.97,
    "opening_share_max": 0.20,
    "unique_sentences": 0.95,
    "different_pairs": 0.90,
    "cites_user": 0.80,
    "reason_p50_s": 1.5,
    "pitch_p50_s": 4.0,
    "summary_p50_s": 3.0,
    "first_s": 0.5,
}
# Kinds wanted per catalog (when the library has them), besides the digest.
KINDS = {
    "shop": ("reason", "pitch", "headline"),
    "news": ("summary", "headline", "reason"),
    "ml-100k": ("reason", "pitch"),
}
# Users scored per catalog, in pairs of like tastes so the same item reaches two users.
USERS = {
    "shop": ["u01", "u02", "u04", "u06", "u09", "u10", "u11", "u12", "u13", "u14"],
    "news": ["r05", "r06", "r01", "r02", "r03", "r04", "r07", "r08", "r09", "r10"],
    "ml-100k": ["1", "13", "405", "59", "92", "181", "276", "303", "416", "450"],
}


# The false claims quoted in issue 12, each with the class the checker must find in it
# (run before every benchmark: a checker that misses one of them measures nothing).
KNOWN_FALSE = [
    (
        "p33",
        "The Alpine Down Jacket is a great pick because it is a Kids Hiking Boots.",
        "other_item",
    ),
    (
        "p03",
        "You may like the Hydration Running Belt because it is a popular running shoe "
        "and accessories brand.",
        "other_category",
    ),
    ("p24", "You may like Mini Bike Pump because it is a Cycling Helmet MIPS.", "other_item"),
    ("p34", "The Fleece Pullover is a popular running and merino outfit.", "user_tags_as_item"),
    ("p35", "The Rain Shell Jacket is a two-in-one shell with a zip-up zip-up.", "repeated_phrase"),
    ("p03", "The Hydration Running Belt by TrailForm costs $39.", "invented_number"),
    ("p03", "The Hydration Running Belt was designed by John Smith.", "invented_name"),
    ("p06", "You may like it because it is close to the Road Running Shoes.", "target_not_named"),
    # u01 only viewed the socks and clicked (did not buy) the road shoes
    (
        "p06",
        "Since you liked the Merino Running Socks, try the GPS Running Watch.",
        "false_history",
    ),
    ("p06", "You bought the Road Running Shoes, so try the GPS Running Watch.", "false_history"),
    # the user liking the item recommended to them
    ("p06", "GPS Running Watch is a running watch, and you liked it too.", "false_history"),
    # u01's liked items are all Running: Camping is not their usual kind, Running is
    # the target's own
    ("p10", "Backpacking Stove is a change from your usual Camping picks.", "false_taste"),
    ("p06", "GPS Running Watch is a change from your usual Running picks.", "false_taste"),
    ("p10", "Beyond Camping: Backpacking Stove", "false_taste"),
    # what the item is: a noun none of its data gives; a brand it does not have
    ("p10", "Backpacking Stove is a tent for two.", "false_identity"),
    ("p10", "Backpacking Stove is a Camping pick and a sleeping bag.", "false_identity"),
    ("p03", "Hydration Running Belt comes from the same brand, Summit Labs.", "invented_name"),
    ("p03", "Hydration Running Belt is a belt from GPS Running Watch.", "false_identity"),
    ("p03", "Hydration Running Belt is a running belt. It is a Ridgeline.", "false_identity"),
    # a participle ends what the item is, and the noun before it still counts; an
    # adjective before the item's title must be its own data
    ("p10", "Backpacking Stove is a tent designed for two.", "false_identity"),
    ("p10", "Backpacking Stove is a tent, designed for camping.", "false_identity"),
    ("p31", "Foam Roller is a soft foam roller for muscle recovery.", "false_identity"),
    # "made by" of the item, or of a thing its text tells of, with a name its text lacks
    ("p03", "Hydration Running Belt is made by Summit Labs.", "invented_name"),
    (
        "p03",
        "Hydration Running Belt holds two soft flasks. The flasks are made by Summit Labs.",
        "invented_name",
    ),
]
KNOWN_TRUE = [
    ("p03", "The Hydration Running Belt by Ridgeline costs $34 and holds two soft flasks."),
    (
        "p06",
        "You bought the Hydration Running Belt and liked the Road Running Shoes, so try "
        "the GPS Running Watch.",
    ),
    ("p10", "Backpacking Stove is a Camping pick, a change from your usual Running picks."),
    ("p10", "Beyond Running: Backpacking Stove"),
    ("p06", "After Hydration Running Belt, which you bought, GPS Running Watch is a watch."),
    ("p03", "Hydration Running Belt is a running belt made by Ridgeline."),
    # what the item is: "a harness | designed for ...", "a roller|, liked by ...", "a firm
    # <title>" as its text says
    (
        "p18",
        "Climbing Harness, a change from your usual Running picks, is a harness designed for "
        "climbing that has four gear loops and adjustable leg loops.",
    ),
    (
        "p31",
        "Foam Roller, a change from your usual Running picks, is a firm foam roller for muscle "
        "recovery after training.",
    ),
    ("p31", "Foam Roller is a roller, liked by 33% of the 3 people who liked Trail Running Shoes."),
]


def self_test() -> None:
    """The checker on the shop (each known false claim found, a true text passed), then
    its own film cases."""
    truth = check.Truth.build(data.shop_items(), data.shop_events())
    user = "u01"  # a runner: Road Running Shoes, Merino Running Socks, ... in the history
    for item, text, flag in KNOWN_FALSE:
        verdict = check.check_text(truth, text, "reason", user, item)
        assert flag in verdict.flags, (text, verdict.to_dict())
    for item, text in KNOWN_TRUE:
        verdict = check.check_text(truth, text, "reason", user, item)
        assert verdict.fully_supported, (text, verdict.to_dict())
    check.self_test()  # the film cases (titles and names inside a film's own text)


def supports() -> dict[str, bool]:
    """Which content features this llmrec has (they arrive with the content kinds)."""
    params = inspect.signature(Pipeline.recommend).parameters
    return {
        "content": "content" in params,
        "digest": hasattr(Pipeline, "digest"),
        "stream_content": "content" in inspect.signature(Pipeline.recommend_stream).parameters,
    }


def load_catalog(name: str, args) -> tuple[list, list]:
    if name == "shop":
        return data.shop_items(), data.shop_events()
    if name == "news":
        return data.news_items(), data.news_events()
    from llmrec.datasets import load_movielens

    ds = load_movielens("ml-100k", details=args.details)
    return ds.items, ds.events


def make_pipelines(items: list, events: list, args) -> dict[str, Pipeline]:
    """A template pipeline, fitted, and the same save loaded with the language model: both
    rank identically, so the two sides write about the same items."""
    encoder = ItemEncoder(args.encoder, device=args.device, show_progress=False)
    vectors = _cached_vectors(encoder, items, args)
    template = Pipeline.from_catalog(
        items,
        encoder=encoder.backend,
        llm="template",
        device=args.device,
        models=("ease",),
        show_progress=False,
        item_vectors=vectors,
    )
    template.fit(events, seed=0, show_progress=False, ranker_users=args.ranker_users)
    with tempfile.TemporaryDirectory(prefix="llmrec-content-") as tmp:
        template.save_pretrained(os.path.join(tmp, "pipe"))
        llm = Pipeline.from_pretrained(os.path.join(tmp, "pipe"), device=args.device, llm=args.llm)
    return {"llm": llm, "template": template}


def _cached_vectors(encoder: ItemEncoder, items: list, args) -> Any:
    """The items' vectors, kept under ``--out`` keyed by the encoder and the rendered texts
    (encoding ML-100K with its details takes many minutes on a busy 2-core CPU)."""
    import hashlib

    import numpy as np

    from llmrec.catalog import render_item_text

    digest = hashlib.sha256(args.encoder.encode())
    for item in items:
        digest.update(render_item_text(item).encode() + b"\0")
    path = os.path.join(args.out, f"content-vectors-{digest.hexdigest()[:16]}.npy")
    if os.path.exists(path):
        return np.load(path)
    vectors = encoder.encode_items(items)
    os.makedirs(args.out, exist_ok=True)
    np.save(path, vectors)
    return vectors


def _call(pipe: Pipeline, user: str, k: int, kind: str, has: dict, budget) -> list:
    options: dict[str, Any] = {"budget_s": budget}
    if has["content"]:
        options["content"] = kind
    return pipe.recommend(user, k=k, generate=True, **options)


def generate(catalog: str, pipes: dict, users: list[str], kinds: tuple, args, has) -> tuple:
    """Texts from both pipelines: ``(records, latency)``; the first call of each warms up."""
    records, latency = [], defaultdict(list)
    for side, pipe in pipes.items():
        _call(pipe, users[-1], 1, kinds[0], has, args.budget)  # model load and warm-up
        for user in users[: args.users]:
            for kind in kinds:
                k = min(args.k, 3) if kind == "summary" else args.k
                started = time.perf_counter()
                recs = _call(pipe, user, k, kind, has, args.budget)
                elapsed = time.perf_counter() - started
                latency[(side, kind)].append((elapsed, len(recs)))
                records += [_record(catalog, side, kind, user, r) for r in recs]
            if has["digest"]:
                recs = pipe.recommend(user, k=args.k, generate=False)
                started = time.perf_counter()
                digest = pipe.digest(user, recs, budget_s=args.budget)
                latency[(side, "digest")].append((time.perf_counter() - started, 1))
                records.append(
                    {
                        "catalog": catalog,
                        "side": side,
                        "kind": "digest",
                        "user": user,
                        "item": None,
                        "listed": [r.item_id for r in recs],
                        "text": digest.text,
                        "source": digest.source,
                        "fallback_reason": digest.fallback_reason,
                    }
                )
        latency[(side, "first_streamed")] += _first_streamed(pipe, users[: args.users], args)
    return records, latency


def _record(catalog: str, side: str, kind: str, user: str, rec) -> dict:
    gen = rec.generated
    return {
        "catalog": catalog,
        "side": side,
        "kind": kind,
        "user": user,
        "item": rec.item_id,
        "text": gen.text if gen else "",
        "source": gen.source if gen else None,
        "fallback_reason": gen.fallback_reason if gen else None,
        "plan": [f.text for f in getattr(rec.explanation, "plan", ())],
    }


def _first_streamed(pipe: Pipeline, users: list[str], args) -> list[tuple[float, int]]:
    out = []
    for user in users:
        pipe.generator.clear_cache()  # the reasons of this user were written before
        started = time.perf_counter()
        stream = pipe.recommend_stream(user, k=args.k, budget_s=args.budget)
        next(stream, None)
        out.append((time.perf_counter() - started, 1))
        stream.close()  # the rest of the list is not needed
    return out


# ------------------------------------------------------------------------- metrics
def _sentences(text: str) -> list[str]:
    return [s.strip().lower() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]


def variety(texts: list[str]) -> dict[str, float]:
    openings = Counter(" ".join(check.words(t.lower())[:3]) for t in texts if t)
    sentences = [s for t in texts for s in _sentences(t)]
    bigrams = [b for t in texts for b in itertools.pairwise(check.words(t.lower()))]
    return {
        "opening_share": max(openings.values()) / len(texts) if texts and openings else 0.0,
        "top_opening": openings.most_common(1)[0][0] if openings else "",
        "unique_sentences": len(set(sentences)) / len(sentences) if sentences else 0.0,
        "distinct_2": len(set(bigrams)) / len(bigrams) if bigrams else 0.0,
    }


def personalization(rows: list[dict]) -> dict[str, float]:
    by_item: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        if row["item"] is not None:
            by_item[row["item"]].append(row)
    pairs = [
        (a, b)
        for group in by_item.values()
        for a, b in itertools.combinations(group, 2)
        if a["user"] != b["user"]
    ]
    different = sum(
        " ".join(a["text"].lower().split()) != " ".join(b["text"].lower().split()) for a, b in pairs
    )
    cites = [row["verdict"]["cites_user"] for row in rows]
    return {
        "pairs": len(pairs),
        "different_pairs": different / len(pairs) if pairs else float("nan"),
        "cites_user": sum(cites) / len(cites) if cites else float("nan"),
    }


def unique_in_lists(rows: list[dict]) -> float:
    """The unique-sentence ratio within each user's list, over all lists: what one reader
    sees repeated (the same item shown to two users may say the same of it)."""
    lists: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        lists[r["user"]] += _sentences(r["text"])
    total = sum(len(s) for s in lists.values())
    return sum(len(set(s)) for s in lists.values()) / total if total else 0.0


def summarize(rows: list[dict], latency: dict) -> dict[str, Any]:
    claims = sum(r["verdict"]["claims"] for r in rows)
    supported = sum(r["verdict"]["supported"] for r in rows)
    flags = Counter(f for r in rows for f in r["verdict"]["flags"])
    out: dict[str, Any] = {
        "texts": len(rows),
        "llm_texts": sum(r["source"] == "llm" for r in rows),
        "claims": claims,
        "statement_precision": supported / claims if claims else float("nan"),
        "fully_supported": sum(r["verdict"]["fully_supported"] for r in rows) / len(rows),
        "flags": {f: flags.get(f, 0) for f in FLAGS},
        "fallback_reasons": dict(
            Counter(
                r["fallback_reason"] for r in rows if r["source"] != "llm" and r["fallback_reason"]
            )
        ),
    }
    out.update(variety([r["text"] for r in rows]))
    out["unique_sentences_in_list"] = unique_in_lists(rows)
    out.update(personalization(rows))
    calls = latency or []
    out["call_p50_s"] = percentile([s for s, _ in calls], 50) if calls else float("nan")
    out["per_text_p50_s"] = (
        percentile([s / max(n, 1) for s, n in calls], 50) if calls else float("nan")
    )
    return out


def check_all(truths: dict, records: list[dict], k: int) -> None:
    for row in records:
        truth = truths[row["catalog"]]
        verdict = check.check_text(
            truth,
            row["text"],
            row["kind"],
            row["user"],
            row["item"],
            listed=row.get("listed", ()),
            extra_numbers=(float(k), float(len(row.get("listed", ())))),
        )
        row["verdict"] = verdict.to_dict()


def report(records: list[dict], latencies: dict, has: dict) -> tuple[dict, list]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in records:
        groups[(row["catalog"], row["kind"], row["side"])].append(row)
    summary, rows = {}, []
    for (catalog, kind, side), group in sorted(groups.items()):
        s = summarize(group, latencies[catalog].get((side, kind)))
        summary[f"{catalog}/{kind}/{side}"] = s
        rows.append(
            [
                catalog,
                kind,
                side,
                f"{s['texts']} ({s['llm_texts']} llm)",
                s["statement_precision"],
                s["fully_supported"],
                sum(s["flags"].values()),
                s["opening_share"],
                s["unique_sentences"],
                s["unique_sentences_in_list"],
                s["distinct_2"],
                s["different_pairs"],
                s["cites_user"],
                s["call_p50_s"],
                s["per_text_p50_s"],
            ]
        )
    for catalog, lat in latencies.items():
        for side in ("llm", "template"):
            first = lat.get((side, "first_streamed"), [])
            if first:
                summary[f"{catalog}/first_streamed/{side}"] = {
                    "p50_s": percentile([s for s, _ in first], 50),
                    "n": len(first),
                }
    return summary, rows


def print_report(summary: dict, rows: list, has: dict) -> None:
    print_table(
        [
            "catalog",
            "kind",
            "side",
            "texts",
            "stmt prec",
            "all true",
            "false",
            "open3 max",
            "uniq sent",
            "in list",
            "dist-2",
            "diff pairs",
            "cites user",
            "call p50 s",
            "text p50 s",
        ],
        rows,
        title="Content quality (independent checker)",
    )
    flag_rows = [
        [key] + [s["flags"][f] for f in FLAGS] for key, s in summary.items() if "flags" in s
    ]
    print_table(["catalog/kind/side"] + list(FLAGS), flag_rows, title="Texts per false-claim class")
    first = [[key, s["p50_s"], s["n"]] for key, s in summary.items() if "first_streamed" in key]
    if first:
        print_table(
            ["catalog/first_streamed/side", "p50 s", "users"],
            first,
            title="Time to the first streamed text (reason kind)",
        )
    if not has["content"]:
        print(
            "\nNOTE: Pipeline.recommend has no content= parameter in this llmrec: every kind "
            "row is a one-sentence reason; pitch/summary/headline rows were not produced."
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogs", default="shop,news,ml-100k")
    parser.add_argument(
        "--details",
        metavar="PATH",
        default=None,
        help="ML-100K details JSON lines; ml-100k is skipped without it",
    )
    parser.add_argument("--users", type=int, default=6, help="users per catalog (<= 10)")
    parser.add_argument("-k", "--k", type=int, default=5, help="recommendations per call")
    parser.add_argument("--llm", default="default")
    parser.add_argument("--encoder", default="default")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--budget", type=float, default=None, help="seconds per call (none)")
    parser.add_argument(
        "--ranker-users", type=int, default=300, help="users the fusion weights are fitted on"
    )
    parser.add_argument(
        "--texts-out",
        metavar="PATH",
        default=None,
        help="write every text with its checker verdict (JSON lines)",
    )
    parser.add_argument(
        "--samples-md",
        metavar="PATH",
        default=None,
        help="write up to --samples texts per kind (LLM side) with the checker's verdicts "
        "as a markdown table",
    )
    parser.add_argument("--samples", type=int, default=30, help="texts per kind for --samples-md")
    parser.add_argument(
        "--recheck",
        metavar="JSON",
        default=None,
        help="check again the texts of an earlier run's content.json (no generation)",
    )
    return add_out_argument(parser)


def run(args, has: dict) -> tuple[list, dict, dict]:
    """Generate every catalog's texts: ``(records, latencies, truths)``."""
    records, latencies, truths = [], {}, {}
    for catalog in [c for c in args.catalogs.split(",") if c]:
        if catalog == "ml-100k" and not args.details:
            print("ml-100k skipped: pass --details PATH", flush=True)
            continue
        started = time.perf_counter()
        items, events = load_catalog(catalog, args)
        truths[catalog] = check.Truth.build(items, events)
        pipes = make_pipelines(items, events, args)
        kinds = KINDS[catalog] if has["content"] else ("reason",)
        got, latency = generate(catalog, pipes, USERS[catalog], kinds, args, has)
        records += got
        latencies[catalog] = latency
        for pipe in pipes.values():
            pipe.close()
        print(f"{catalog}: {len(got)} texts in {time.perf_counter() - started:.0f}s", flush=True)
        write_json(
            args.out,
            "content-partial",
            {  # what a --recheck can read if a later catalog fails
                "args": vars(args),
                "features": has,
                "records": records,
                "latencies": {
                    c: {"/".join(key): v for key, v in lat.items()} for c, lat in latencies.items()
                },
            },
        )
    return records, latencies, truths


def rerun(path: str, args) -> tuple[list, dict, dict, dict]:
    """An earlier run's records and latencies, with the truths rebuilt from the data."""
    with open(path, encoding="utf-8") as f:
        old = json.load(f)
    args.details = args.details or old["args"].get("details")
    latencies = {
        c: {tuple(key.split("/")): [tuple(v) for v in values] for key, values in lat.items()}
        for c, lat in old["latencies"].items()
    }
    truths = {c: check.Truth.build(*load_catalog(c, args)) for c in latencies}
    return old["records"], latencies, truths, old["features"]


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def samples_markdown(records: list[dict], per_kind: int) -> str:
    """Up to ``per_kind`` texts of each kind from the LLM-side pipeline, taken in turn
    from each catalog so every catalog shows, each with the checker's verdict: good and
    bad as they came, not chosen."""
    by_kind: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for row in records:
        if row["side"] == "llm":
            by_kind[row["kind"]][row["catalog"]].append(row)
    out = []
    for kind in sorted(by_kind):
        queues = [list(rows) for _, rows in sorted(by_kind[kind].items())]
        picked: list[dict] = []
        while len(picked) < per_kind and any(queues):
            for queue in queues:
                if queue and len(picked) < per_kind:
                    picked.append(queue.pop(0))
        written = sum(r["source"] == "llm" for r in picked)
        ok = sum(r["verdict"]["fully_supported"] for r in picked)
        out += [
            f"#### {kind}: {len(picked)} texts ({written} written by the model, the rest its "
            f"template fallback); {ok} fully supported by the checker",
            "",
            "| catalog | user | item | source | checker | text |",
            "|---|---|---|---|---|---|",
        ]
        for r in picked:
            v = r["verdict"]
            verdict = (
                "supported"
                if v["fully_supported"]
                else f"{v['supported']}/{v['claims']} claims; "
                + "; ".join([*v["flags"], *map(str, v["notes"][:2])])
            )
            out.append(
                f"| {r['catalog']} | {r['user']} | {r['item'] or '(list)'} | {r['source']} | "
                f"{_cell(verdict)} | {_cell(r['text'])} |"
            )
        out.append("")
    return "\n".join(out)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    self_test()
    print(machine_line(), flush=True)
    if args.recheck:
        records, latencies, truths, has = rerun(args.recheck, args)
    else:
        has = supports()
        print(f"llmrec features: {has}", flush=True)
        records, latencies, truths = run(args, has)
    check_all(truths, records, args.k)
    summary, rows = report(records, latencies, has)
    print_report(summary, rows, has)
    if args.texts_out:
        os.makedirs(os.path.dirname(os.path.abspath(args.texts_out)), exist_ok=True)
        with open(args.texts_out, "w", encoding="utf-8") as f:
            for row in records:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"texts -> {args.texts_out}")
    if args.samples_md:
        with open(args.samples_md, "w", encoding="utf-8") as f:
            f.write(samples_markdown(records, args.samples))
        print(f"samples -> {args.samples_md}")
    result = {
        "benchmark": "content",
        "machine": machine_info(),
        "features": has,
        "args": vars(args),
        "targets": TARGETS,
        "summary": summary,
        "latencies": {
            c: {"/".join(key): values for key, values in lat.items()}
            for c, lat in latencies.items()
        },
        "records": records,
    }
    print(f"-> {write_json(args.out, 'content', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

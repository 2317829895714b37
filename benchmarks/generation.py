"""Personalized reasons on ML-100K: latency, streaming, and grounding of the texts.

A pipeline is fitted on every ML-100K rating (as clicks; ``--models``, default EASE only,
which keeps set-up short and the rankings real), then each user's top ``--k`` items
become :class:`~llmrec.generation.ReasonRequest` objects exactly as
``Pipeline.recommend(generate=True)`` builds them. Three sections:

* **latency**: for ``--users`` users, ``ContentGenerator.stream`` over the user's 10
  requests, the generator cache cleared before each user: time to the first streamed
  text and to the last one (p50 / p90).
* **naive baseline**, same run, same prompts, same users (``--naive-users`` of them): one
  plain ``model.generate`` call per item at batch 1 (the whole prompt every time, no
  reuse of the shared prompt head), i.e. the loop anyone writes first. The headline is
  the ratio of the two.
* **concurrent callers**: ``--concurrent`` of those users one after another, then all at
  once from one thread each (their requests share model batches): wall time of each.
* **grounding**: ``--grounding-users`` users x ``--k`` items written in one call. Every
  model answer is recorded before verification; both the first answers and the final
  texts go through an independent check written here (not ``verify_text``): a catalog
  title other than the target's or the evidence's, a year the evidence lacks, a
  mention of the target. Reported with the verifier's pass rate of the first answers and
  the shares of regenerated and template texts.

    python benchmarks/generation.py                  # ~4 min on 2 CPU cores
    python benchmarks/generation.py --device cuda
    python benchmarks/generation.py --users 5 --grounding-users 20 --naive-users 2
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections import Counter
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    add_out_argument,
    machine_info,
    machine_line,
    percentile,
    print_table,
    write_json,
)

from llmrec.catalog import Catalog  # noqa: E402
from llmrec.datasets import load_movielens  # noqa: E402
from llmrec.generation import ContentGenerator, ReasonRequest, answer_text, display_title  # noqa: E402
from llmrec.pipeline import Pipeline  # noqa: E402
from llmrec.types import Event  # noqa: E402

TARGETS = {
    "all_s": 3.0,
    "first_s": 0.5,
    "first_s_cuda": 0.3,
    "speedup": 5.0,
    "other_item_share": 0.01,
    "invented_years": 0,
    "refers_share": 0.98,
}


# ---------------------------------------------------------------------------- set-up
def build(args: argparse.Namespace) -> tuple[Pipeline, list[str], float]:
    data = (
        load_movielens("ml-100k", path=args.data, fetch=False)
        if args.data
        else load_movielens("ml-100k", fetch=False)
    )
    started = time.perf_counter()
    models = tuple(m for m in args.models.split(",") if m)
    pipe = Pipeline.from_catalog(
        data.items, llm="template", device=args.device, models=models, show_progress=False
    )
    events = [
        Event(user_id=e.user_id, item_id=e.item_id, kind="click", timestamp=e.timestamp)
        for e in data.events
    ]
    pipe.fit(events, show_progress=False, seed=args.seed)
    users = sorted({e.user_id for e in events}, key=lambda u: (len(u), u))
    return pipe, users, time.perf_counter() - started


def requests_for(pipe: Pipeline, user_id: str, k: int) -> list[ReasonRequest]:
    """The requests ``Pipeline.recommend(user_id, k, generate=True)`` sends."""
    recs = pipe.recommend(user_id, k=k, generate=False)
    ids = {i for rec in recs for i in (rec.item_id, *rec.explanation.evidence_item_ids)}
    items = {i: pipe.catalog.get(i) for i in ids}
    return [pipe._reason_request(rec, user_id, None, items) for rec in recs]


class Recorder:
    """A chat backend wrapper that keeps every (conversation, answer) it sees."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_batch_size = getattr(inner, "max_batch_size", 16)
        self.answers: list[tuple[list[dict[str, str]], str]] = []

    def config(self) -> dict[str, Any]:
        return self.inner.config()

    def generate(self, conversations, *, max_new_tokens=48):  # noqa: ANN001, ANN201
        out = self.inner.generate(conversations, max_new_tokens=max_new_tokens)
        self.answers += list(zip(conversations, out))
        return out

    def stream(self, conversations, *, max_new_tokens=48):  # noqa: ANN001, ANN201
        conversations = list(conversations)
        for index, answer in self.inner.stream(conversations, max_new_tokens=max_new_tokens):
            self.answers.append((conversations[index], answer))
            yield index, answer


# ---------------------------------------------------------------------------- latency
def run_latency(gen: ContentGenerator, batches: list[list[ReasonRequest]]) -> dict[str, Any]:
    first_s, all_s, sources = [], [], Counter()
    for requests in batches:
        gen.clear_cache()
        started = time.perf_counter()
        seen = []
        for index, text in gen.stream(requests):
            if not seen:
                first_s.append(time.perf_counter() - started)
            seen.append(index)
            sources[text.source] += 1
        all_s.append(time.perf_counter() - started)
        assert sorted(seen) == list(range(len(requests))), seen
    return {
        "users": len(batches),
        "first_s": first_s,
        "all_s": all_s,
        "first_p50_s": percentile(first_s, 50),
        "first_p90_s": percentile(first_s, 90),
        "all_p50_s": percentile(all_s, 50),
        "all_p90_s": percentile(all_s, 90),
        "sources": dict(sources),
    }


def run_concurrent(gen: ContentGenerator, batches: list[list[ReasonRequest]]) -> dict[str, Any]:
    """The same users one after another, then all at once from one thread each (their
    requests share model batches)."""
    import threading

    gen.clear_cache()
    started = time.perf_counter()
    for requests in batches:
        gen.generate(requests)
    sequential_s = time.perf_counter() - started
    gen.clear_cache()
    first_s: list[float] = []
    all_s: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(batches))

    def work(requests: list[ReasonRequest]) -> None:
        barrier.wait()
        t0 = time.perf_counter()
        first = None
        for _ in gen.stream(requests):
            first = first if first is not None else time.perf_counter() - t0
        with lock:
            first_s.append(first or 0.0)
            all_s.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=work, args=(r,)) for r in batches]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    concurrent_s = time.perf_counter() - started
    return {
        "callers": len(batches),
        "sequential_s": sequential_s,
        "concurrent_s": concurrent_s,
        "first_p50_s": percentile(first_s, 50),
        "all_p50_s": percentile(all_s, 50),
        "all_max_s": max(all_s) if all_s else float("nan"),
    }


def run_naive(
    gen: ContentGenerator, batches: list[list[ReasonRequest]], *, plain: bool = True
) -> dict[str, Any]:
    """One generate call per item at batch 1: with ``plain``, the model's own
    ``generate`` on the whole prompt (a backend without a ``model`` attribute: its
    ``generate``); otherwise the llmrec backend's ``generate`` with one conversation."""
    import torch

    backend = getattr(gen.backend, "inner", gen.backend)  # unwrap the Recorder
    model, tokenizer = getattr(backend, "model", None), getattr(backend, "tokenizer", None)
    if not plain:
        model = tokenizer = None
    first_s, all_s = [], []
    for requests in batches:
        started = time.perf_counter()
        for n, request in enumerate(requests):
            conversation = gen.prompt(request)
            if model is not None and tokenizer is not None:
                # The prompt ends with the user's message (nothing of the answer is
                # prefilled); a prefilled one is continued.
                prefilled = conversation[-1]["role"] == "assistant"
                ids = tokenizer.apply_chat_template(
                    conversation,
                    continue_final_message=prefilled,
                    add_generation_prompt=not prefilled,
                    return_tensors="pt",
                    return_dict=True,
                )
                with torch.inference_mode():
                    model.generate(
                        input_ids=ids["input_ids"].to(model.device),
                        attention_mask=ids["attention_mask"].to(model.device),
                        max_new_tokens=gen.max_new_tokens,
                        do_sample=False,
                        pad_token_id=tokenizer.pad_token_id,
                    )
            else:  # another backend: its own generate, one conversation per call
                backend.generate([conversation], max_new_tokens=gen.max_new_tokens)
            if n == 0:
                first_s.append(time.perf_counter() - started)
        all_s.append(time.perf_counter() - started)
    return {
        "users": len(batches),
        "first_s": first_s,
        "all_s": all_s,
        "first_p50_s": percentile(first_s, 50),
        "first_p90_s": percentile(first_s, 90),
        "all_p50_s": percentile(all_s, 50),
        "all_p90_s": percentile(all_s, 90),
    }


# ---------------------------------------------------------------------------- grounding
_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)s?\b")


def _norm(text: str) -> str:
    text = re.sub(r"['’`]", "", text.lower()).replace("&", " and ")
    return " " + " ".join(re.sub(r"[^0-9a-z]+", " ", text).split()) + " "


class IndependentCheck:
    """Grounding checks that share no code with ``verify_text``: plain substring search
    of every catalog title (display form, and without a leading article), in its own
    capitalization in the raw text, so a lower-case common phrase is not a title."""

    def __init__(self, catalog: Catalog) -> None:
        self.titles: list[tuple[str, str, str]] = []  # (item id, raw form, normalized form)
        for item in catalog:
            shown = display_title(item.title)
            for form in {shown, re.sub(r"^(?:The|A|An) ", "", shown)}:
                words = _norm(form).split()
                if len(words) >= 2 or (len(words) == 1 and len(words[0]) >= 5):
                    self.titles.append((item.item_id, form, _norm(form)))
        self.years = {item.item_id: item.attributes.get("year") for item in catalog}

    def other_items(self, text: str, request: ReasonRequest) -> list[str]:
        allowed = {request.item.item_id, *(e.item_id for e in request.evidence_items)}
        allowed_norm = [
            _norm(display_title(i.title)) for i in (request.item, *request.evidence_items)
        ]
        norm = _norm(text)
        found = []
        for item_id, raw, form in self.titles:
            if item_id in allowed or form not in norm or raw not in text:
                continue
            if any(form in a for a in allowed_norm):  # part of an allowed title
                continue
            found.append(raw)
        return found

    def invented_years(self, text: str, request: ReasonRequest) -> list[str]:
        facts = " ".join(
            [request.item.title, str(request.item.attributes.get("year", ""))]
            + [f"{e.title} {e.attributes.get('year', '')}" for e in request.evidence_items]
        )
        return [m.group(1) for m in _YEAR.finditer(text) if m.group(1) not in facts]

    @staticmethod
    def refers_to_target(text: str, request: ReasonRequest) -> bool:
        shown = display_title(request.item.title)
        forms = {shown, re.sub(r"^(?:The|A|An) ", "", shown), re.split(r":| - ", shown)[0]}
        norm = _norm(text)
        return any(len(_norm(f).strip()) >= 2 and _norm(f) in norm for f in forms)


def run_grounding(
    gen: ContentGenerator, recorder: Recorder, batches: list[list[ReasonRequest]]
) -> dict[str, Any]:
    requests = [r for batch in batches for r in batch]
    check = IndependentCheck(gen.catalog)
    gen.clear_cache()
    recorder.answers.clear()
    started = time.perf_counter()
    texts = gen.generate(requests)
    elapsed = time.perf_counter() - started
    by_prompt = {}
    for conversation, answer in recorder.answers:
        key = (conversation[-2]["content"], conversation[-1]["content"])
        by_prompt.setdefault(key, answer)  # first attempt only (a retry has another prompt)

    raw_texts, raw_pass, raw_problems = [], 0, Counter()
    final = {"other": 0, "years": 0, "refers": 0}
    raw = {"other": 0, "years": 0, "refers": 0}
    examples: dict[str, list[str]] = {
        "raw_other": [],
        "final_other": [],
        "raw_fail": [],
        "llm": [],
        "template": [],
    }
    n_raw = 0
    for request, text in zip(requests, texts):
        conversation = gen.prompt(request)
        answer = by_prompt.get((conversation[-2]["content"], conversation[-1]["content"]))
        if answer is not None:  # None: a cache hit on a duplicate request
            n_raw += 1
            first = answer_text(conversation, answer)
            raw_texts.append(first)
            v = gen.verify(first, request)
            raw_pass += v.ok
            for p in v.problems:
                raw_problems[re.sub(r"[:(].*", "", p).strip()] += 1
            if not v.ok and len(examples["raw_fail"]) < 8:
                examples["raw_fail"].append(f"{first}  <- {'; '.join(v.problems)}")
            other = check.other_items(first, request)
            raw["other"] += bool(other)
            raw["years"] += bool(check.invented_years(first, request))
            raw["refers"] += check.refers_to_target(first, request)
            if other and len(examples["raw_other"]) < 5:
                examples["raw_other"].append(f"{first}  <- {other[:3]}")
        other = check.other_items(text.text, request)
        final["other"] += bool(other)
        final["years"] += bool(check.invented_years(text.text, request))
        final["refers"] += check.refers_to_target(text.text, request)
        if other and len(examples["final_other"]) < 5:
            examples["final_other"].append(f"{text.text}  <- {other[:3]}")
        bucket = "llm" if text.source == "llm" else "template"
        if len(examples[bucket]) < 8:
            examples[bucket].append(
                text.text + (f"  <- {text.fallback_reason}" if text.fallback_reason else "")
            )
    n = len(texts)
    sources = Counter(t.source for t in texts)
    regenerated = sum(t.retry_reason is not None for t in texts)
    regenerated_ok = sum(t.retry_reason is not None and t.source == "llm" for t in texts)
    distinct = len({t.text for t in texts if t.source == "llm"})
    return {
        "texts": n,
        "first_answers": n_raw,
        "seconds": elapsed,
        "texts_per_s": n / elapsed if elapsed else float("nan"),
        "raw_verifier_pass": raw_pass / max(1, n_raw),
        "raw_other_item_share": raw["other"] / max(1, n_raw),
        "raw_invented_year_texts": raw["years"],
        "raw_refers_share": raw["refers"] / max(1, n_raw),
        "raw_problems": dict(raw_problems.most_common()),
        "final_other_item_share": final["other"] / n,
        "final_invented_year_texts": final["years"],
        "final_refers_share": final["refers"] / n,
        "llm_share": sources["llm"] / n,
        "template_share": sources["template"] / n,
        "regenerated_share": regenerated / n,
        "regenerated_then_passed_share": regenerated_ok / n,
        "distinct_llm_texts": distinct,
        "fallback_reasons": dict(
            Counter(
                re.sub(r"[:(].*", "", t.fallback_reason).strip() for t in texts if t.fallback_reason
            ).most_common(8)
        ),
        "examples": examples,
        "all_texts": [
            {
                "user_id": r.user_id,
                "item_id": r.item.item_id,
                "text": t.text,
                "source": t.source,
                "fallback_reason": t.fallback_reason,
                "retry_reason": t.retry_reason,
            }
            for r, t in zip(requests, texts)
        ],
    }


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20, help="users in the latency section")
    parser.add_argument(
        "--naive-users",
        type=int,
        default=5,
        help="of those, users the naive loop is timed on (it is slow)",
    )
    parser.add_argument(
        "--concurrent",
        type=int,
        default=4,
        help="of those, users asked for at once from one thread each",
    )
    parser.add_argument("--grounding-users", type=int, default=100)
    parser.add_argument("--k", type=int, default=10, help="reasons per user")
    parser.add_argument("--llm", default="default", help="llms backend name")
    parser.add_argument("--model", default=None, help="the backend's model argument")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, auto, ...")
    parser.add_argument(
        "--models",
        default="ease",
        help="trainable candidate sources, comma-separated (default ease)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=None, help="a MovieLens folder (default: the cache)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads for the whole run (default: torch's own choice)",
    )
    parser.add_argument(
        "--texts-out", default=None, help="write every grounding text (JSON lines) to this file"
    )
    add_out_argument(parser)
    args = parser.parse_args(argv)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)

    info = machine_info()
    print(machine_line(info))
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    pipe, users, setup_s = build(args)
    started = time.perf_counter()
    recorder_inner = ContentGenerator(
        args.llm, catalog=pipe.catalog, model=args.model, device=args.device
    ).backend
    recorder = Recorder(recorder_inner)
    gen = ContentGenerator(recorder, catalog=pipe.catalog)
    load_s = time.perf_counter() - started
    print(
        f"set-up {setup_s:.1f}s (encode + fit), language model {gen.backend_name} on "
        f"{getattr(recorder_inner, 'device', args.device)} loaded in {load_s:.1f}s",
        flush=True,
    )

    rng = np.random.default_rng(args.seed)
    picked = [users[i] for i in rng.permutation(len(users))]
    latency_users = picked[: args.users]
    grounding_users = picked[args.users : args.users + args.grounding_users]
    warm = requests_for(pipe, picked[-1], args.k)
    gen.generate(warm)  # first call: head keys/values, lazy kernels
    latency_batches = [requests_for(pipe, u, args.k) for u in latency_users]

    latency = run_latency(gen, latency_batches)
    naive = run_naive(gen, latency_batches[: args.naive_users])
    per_item = run_naive(gen, latency_batches[: args.naive_users], plain=False)
    ours_same = latency["all_s"][: args.naive_users]
    speedups = [b / a for a, b in zip(ours_same, naive["all_s"])]
    first_speedups = [b / a for a, b in zip(latency["first_s"], naive["first_s"])]
    device = str(getattr(recorder_inner, "device", args.device))
    first_target = TARGETS["first_s_cuda"] if device.startswith("cuda") else TARGETS["first_s"]
    rows = [
        [
            f"llmrec stream, {args.k} reasons",
            latency["users"],
            latency["first_p50_s"],
            latency["first_p90_s"],
            latency["all_p50_s"],
            latency["all_p90_s"],
            "-",
        ],
        [
            f"baseline: generate per item, batch 1 ({len(naive['all_s'])} of those users)",
            naive["users"],
            naive["first_p50_s"],
            naive["first_p90_s"],
            naive["all_p50_s"],
            naive["all_p90_s"],
            f"{float(np.median(speedups)):.1f}x" if speedups else "-",
        ],
        [
            f"llmrec backend generate per item, batch 1 ({len(per_item['all_s'])} users)",
            per_item["users"],
            per_item["first_p50_s"],
            per_item["first_p90_s"],
            per_item["all_p50_s"],
            per_item["all_p90_s"],
            f"{float(np.median([b / a for a, b in zip(ours_same, per_item['all_s'])])):.1f}x"
            if per_item["all_s"]
            else "-",
        ],
    ]
    print_table(
        [
            "run",
            "users",
            "first p50 s",
            "first p90 s",
            "all p50 s",
            "all p90 s",
            "speed-up (median, same users)",
        ],
        rows,
        title=f"Latency: {args.k} reasons per ML-100K user, {gen.backend_name} on {device}",
    )
    print(
        f"targets: all <= {TARGETS['all_s']} s: p50 {latency['all_p50_s']:.2f} / p90 "
        f"{latency['all_p90_s']:.2f}; first <= {first_target} s: p50 "
        f"{latency['first_p50_s']:.2f} / p90 {latency['first_p90_s']:.2f}; speed-up >= "
        f"{TARGETS['speedup']}x: {float(np.median(speedups)) if speedups else float('nan'):.1f}x"
    )

    concurrent = None
    if args.concurrent > 1:
        concurrent = run_concurrent(gen, latency_batches[: args.concurrent])
        c = concurrent
        print_table(
            ["run", "callers", "wall s", "first p50 s", "all p50 s", "all max s"],
            [
                ["one after another", c["callers"], c["sequential_s"], "-", "-", "-"],
                [
                    "concurrent, one thread each",
                    c["callers"],
                    c["concurrent_s"],
                    c["first_p50_s"],
                    c["all_p50_s"],
                    c["all_max_s"],
                ],
            ],
            title=f"Concurrent callers: {c['callers']} users x {args.k} reasons "
            f"(throughput {c['sequential_s'] / c['concurrent_s']:.2f}x)",
        )

    grounding_batches = [requests_for(pipe, u, args.k) for u in grounding_users]
    grounding = run_grounding(gen, recorder, grounding_batches)
    g = grounding
    all_texts = g.pop("all_texts")
    if args.texts_out:
        import json

        with open(args.texts_out, "w", encoding="utf-8") as f:
            for row in all_texts:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    rows = [
        [
            "first model answers (before verification)",
            g["first_answers"],
            g["raw_other_item_share"],
            g["raw_invented_year_texts"],
            g["raw_refers_share"],
            g["raw_verifier_pass"],
            "-",
            "-",
        ],
        [
            "final texts",
            g["texts"],
            g["final_other_item_share"],
            g["final_invented_year_texts"],
            g["final_refers_share"],
            g["llm_share"],
            g["regenerated_share"],
            g["template_share"],
        ],
    ]
    print_table(
        [
            "texts",
            "n",
            "names an item outside the evidence",
            "invented years",
            "refers to target",
            "verifier pass / model text share",
            "regenerated",
            "template",
        ],
        rows,
        title=f"Grounding: {len(grounding_batches)} users x {args.k} items "
        f"({g['texts_per_s']:.1f} texts/s in one call)",
    )
    print("first-answer problems: " + ", ".join(f"{k} {v}" for k, v in g["raw_problems"].items()))
    print("template reasons: " + ", ".join(f"{k} {v}" for k, v in g["fallback_reasons"].items()))
    print(
        f"regenerated and then passed: {g['regenerated_then_passed_share']:.3f}; distinct "
        f"model texts: {g['distinct_llm_texts']}"
    )
    for name, lines in g["examples"].items():
        for line in lines[:4]:
            print(f"  [{name}] {line}")
    print(
        f"targets: other item <= {TARGETS['other_item_share']:.0%}: "
        f"{g['final_other_item_share']:.2%}; invented years 0: {g['final_invented_year_texts']};"
        f" refers to target >= {TARGETS['refers_share']:.0%}: {g['final_refers_share']:.1%}"
    )
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"load average (1 min) before {load_before}, after {load_after}")

    result = {
        "benchmark": "generation",
        "machine": info,
        "args": vars(args),
        "device": device,
        "setup_s": setup_s,
        "model_load_s": load_s,
        "load_before": load_before,
        "load_after": load_after,
        "latency": latency,
        "naive": naive,
        "backend_per_item": per_item,
        "concurrent": concurrent,
        "speedup_median": float(np.median(speedups)) if speedups else None,
        "first_speedup_median": float(np.median(first_speedups)) if first_speedups else None,
        "grounding": grounding,
        "targets": TARGETS,
    }
    name = "generation" if device == "cpu" else f"generation-{device.split(':')[0]}"
    write_json(args.out, name, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

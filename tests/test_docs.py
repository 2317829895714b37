"""The documentation builds with ``mkdocs build --strict`` (no warning of any kind), and the
API reference follows the package layout."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from llmrec._compat import MOVED

ROOT = Path(__file__).resolve().parents[1]
#: One API reference page per stage package (and the base modules applications use).
STAGE_PAGES = (
    "pipeline",
    "types",
    "errors",
    "catalog",
    "privacy",
    "storage",
    "encoding",
    "retrieval",
    "ranking",
    "generation",
    "datasets",
    "evaluation",
    "apps",
    "testing",
)


def _directives() -> dict[str, list[str]]:
    """``{page name: [module named by each ::: directive]}`` of docs/api."""
    return {
        page.stem: re.findall(r"^::: ([\w.]+)\s*$", page.read_text(encoding="utf-8"), re.M)
        for page in sorted((ROOT / "docs" / "api").glob("*.md"))
    }


def test_api_reference_has_a_page_per_stage_in_the_nav() -> None:
    pages = _directives()
    assert set(pages) == set(STAGE_PAGES)
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in STAGE_PAGES:
        assert f"api/{page}.md" in nav, page
        assert f"llmrec.{page}" in pages[page] or any(
            m.startswith(f"llmrec.{page}.") for m in pages[page]
        ), page


def test_every_directive_names_a_module_that_exists() -> None:
    for page, modules in _directives().items():
        assert modules, page
        for module in modules:
            assert importlib.util.find_spec(module) is not None, f"{page}.md: {module}"


def test_concepts_lists_every_old_module_path() -> None:
    text = (ROOT / "docs" / "concepts.md").read_text(encoding="utf-8")
    listed = dict(re.findall(r"^\| `(llmrec[\w.]*)` \| `(llmrec[\w.]*)` \|$", text, re.M))
    assert listed == MOVED


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(module)
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, HF_HUB_OFFLINE="1", NO_MKDOCS_2_WARNING="1")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-5000:]
    assert "WARNING" not in log, log[-5000:]
    return out


def test_api_reference_is_generated(site: Path) -> None:
    page = (site / "api" / "pipeline" / "index.html").read_text(encoding="utf-8")
    for name in ("recommend_stream", "from_catalog", "save_pretrained", "observe"):
        assert f'id="llmrec.pipeline.Pipeline.{name}"' in page
    for page in STAGE_PAGES:
        assert (site / "api" / page / "index.html").is_file(), page
    evaluation = (site / "api" / "evaluation" / "index.html").read_text(encoding="utf-8")
    for name in ("leave_one_out", "evaluate_predictions", "write_predictions"):
        assert f'id="llmrec.evaluation.{name}"' in evaluation, name


def test_cli_page_holds_the_live_help(site: Path) -> None:
    page = (site / "api" / "apps" / "index.html").read_text(encoding="utf-8")
    for text in ("llmrec build", "--events", "llmrec serve", "--api-key", "--report"):
        assert text in page


def test_how_to_guides_and_no_raw_sphinx_roles(site: Path) -> None:
    for guide in (
        "own-catalog",
        "hub-models",
        "gpu",
        "remote-llm",
        "reasons",
        "evaluate",
        "serve",
        "production",
    ):
        assert (site / "how-to" / guide / "index.html").is_file()
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert ":class:" not in text and ":meth:" not in text, page

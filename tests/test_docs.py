"""The documentation builds with ``mkdocs build --strict`` (no warning of any kind)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(module)
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, HF_HUB_OFFLINE="1", NO_MKDOCS_2_WARNING="1")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
         "-d", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-5000:]
    assert "WARNING" not in log, log[-5000:]
    return out


def test_api_reference_is_generated(site: Path) -> None:
    page = (site / "api" / "pipeline" / "index.html").read_text(encoding="utf-8")
    for name in ("recommend_stream", "from_catalog", "save_pretrained", "observe"):
        assert f'id="llmrec.pipeline.Pipeline.{name}"' in page
    for module in ("types", "catalog", "evaluation", "datasets", "generator", "errors",
                   "server", "cli"):
        assert (site / "api" / module / "index.html").is_file()


def test_cli_page_holds_the_live_help(site: Path) -> None:
    page = (site / "api" / "cli" / "index.html").read_text(encoding="utf-8")
    for text in ("llmrec build", "--events", "llmrec serve", "--api-key", "--report"):
        assert text in page


def test_how_to_guides_and_no_raw_sphinx_roles(site: Path) -> None:
    for guide in ("own-catalog", "hub-models", "gpu", "remote-llm", "reasons", "evaluate", "serve",
                  "production"):
        assert (site / "how-to" / guide / "index.html").is_file()
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert ":class:" not in text and ":meth:" not in text, page

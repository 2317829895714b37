"""The documentation builds with ``mkdocs build --strict`` (no warning of any kind), the
API reference follows the package layout, and every ``python`` code block of README.md and
docs/ runs.

Code blocks run page by page, in order, in one namespace and a fresh working directory, as
a reader would paste them into one session; a ``text`` block with ``title="NAME"`` is
written to the file NAME first (the files the page's code reads). A block preceded by
``<!-- no-run: REASON -->`` is not run; REASON says why (a network service, a GPU, a
cluster). Pages whose code loads the embedded models or MovieLens are ``slow``.
"""

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


# --------------------------------------------------------------------------- code blocks
FENCE = re.compile(
    r"(?P<marker><!-- no-run: (?P<reason>[^>]*?) -->\s*\n)?"
    r"^```(?P<lang>\w*)(?P<info>[^\n]*)\n(?P<body>.*?)^```\s*$",
    re.M | re.S,
)
DOC_PAGES = sorted(
    [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")], key=lambda p: str(p.relative_to(ROOT))
)


def code_blocks(page: Path) -> list[dict[str, str]]:
    """The fenced blocks of ``page``: language, title (from ``title="..."``), body and the
    no-run reason (``""`` when the block runs)."""
    blocks = []
    for match in FENCE.finditer(page.read_text(encoding="utf-8")):
        title = re.search(r'title="([^"]+)"', match["info"])
        blocks.append(
            {
                "lang": match["lang"],
                "title": title.group(1) if title else "",
                "body": match["body"],
                "skip": (match["reason"] or "").strip() if match["marker"] else "",
                "marked": bool(match["marker"]),
            }
        )
    return blocks


def _runnable(page: Path) -> str:
    return "\n".join(
        b["body"] for b in code_blocks(page) if b["lang"] == "python" and not b["marked"]
    )


def _needs_models(code: str) -> bool:
    """Whether the page's code loads the embedded models or a dataset (a slow test)."""
    if any(name in code for name in ("load_movielens", "TransformersChat(", "ContentGenerator(")):
        return True
    if "from_catalog(" not in code and "from_pretrained(" not in code:
        return False
    return 'encoder="hashing"' not in code or 'llm="template"' not in code


def _page_params() -> list:
    params = []
    for page in DOC_PAGES:
        code = _runnable(page)
        if not code:
            continue
        marks = [pytest.mark.slow] if _needs_models(code) else []
        params.append(pytest.param(page, marks=marks, id=str(page.relative_to(ROOT))))
    return params


def test_no_run_markers_give_a_reason_and_precede_python_blocks() -> None:
    for page in DOC_PAGES:
        for block in code_blocks(page):
            if block["marked"]:
                assert block["lang"] == "python", (page, block["body"][:60])
                assert len(block["skip"]) >= 10, (page, block["body"][:60])


def test_the_quick_starts_run_without_markers() -> None:
    for page in (ROOT / "README.md", ROOT / "docs" / "index.md"):
        blocks = [b for b in code_blocks(page) if b["lang"] == "python"]
        assert blocks and not any(b["marked"] for b in blocks), page
        assert "# ->" in blocks[0]["body"] or "# prints" in blocks[0]["body"], page


@pytest.mark.parametrize("page", _page_params())
def test_code_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for n, block in enumerate(code_blocks(page)):
        if block["lang"] == "text" and block["title"]:
            (tmp_path / block["title"]).write_text(block["body"], encoding="utf-8")
        if block["lang"] != "python" or block["marked"]:
            continue
        try:
            exec(compile(block["body"], f"{page.name} block {n + 1}", "exec"), namespace)
        except Exception as exc:
            pytest.fail(f"{page.relative_to(ROOT)} block {n + 1} failed: {exc!r}\n{block['body']}")

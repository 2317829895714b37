"""MkDocs hooks: put the live ``llmrec --help`` texts into the command-line page."""

from __future__ import annotations

import contextlib
import io
import os
from typing import Any

MARKER = "<!-- llmrec-help -->"
COMMANDS = ("demo", "build", "recommend", "evaluate", "serve", "download-models", "fetch-data")


def _help(*args: str) -> str:
    from llmrec.apps.cli import main

    out = io.StringIO()
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal width
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            main([*args, "--help"])
    finally:
        if columns is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = columns
    return out.getvalue().rstrip()


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if MARKER not in markdown:
        return markdown
    sections = [f"### `llmrec`\n\n```text\n{_help()}\n```"]
    sections += [f"### `llmrec {name}`\n\n```text\n{_help(name)}\n```" for name in COMMANDS]
    return markdown.replace(MARKER, "\n\n".join(sections))

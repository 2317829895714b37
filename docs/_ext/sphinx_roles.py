"""Griffe extension: turn the Sphinx roles in llmrec's docstrings into Markdown.

The docstrings cross-reference with Sphinx roles (``:class:`~llmrec.Item```); mkdocstrings
renders Markdown, where such a role would show up verbatim. Each role becomes a link
(``[Item][llmrec.types.Item]``) when its target is rendered on one of the API pages
(``docs/api/*.md``, read for their ``::: identifier`` lines), and inline code otherwise, so
``mkdocs build --strict`` never meets an unresolved reference.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import griffe

API_PAGES = Path(__file__).resolve().parents[1] / "api"
_DIRECTIVE = re.compile(r"^::: *(\S+)[ \t]*\n((?:[ \t]+\S.*\n?)*)", re.MULTILINE)


def rendered_roots(pages: Path = API_PAGES) -> dict[str, bool]:
    """``{identifier: with_members}`` for every ``::: identifier`` on the API pages."""
    roots: dict[str, bool] = {}
    for page in sorted(pages.glob("*.md")):
        for match in _DIRECTIVE.finditer(page.read_text(encoding="utf-8")):
            with_members = not re.search(r"^\s*members:\s*(?:false|\[\s*\])\s*$",
                                         match.group(2), re.MULTILINE)
            roots[match.group(1)] = roots.get(match.group(1), False) or with_members
    return roots


_ROLE = re.compile(r":(?:py:)?(class|meth|func|attr|data|mod|exc|obj):`(~?)([^`]+)`")


def _resolve(root: griffe.Module, path: str) -> griffe.Object | None:
    """The object at dotted ``path`` (aliases followed), or None."""
    parts = path.split(".")
    if parts[0] != root.name:
        return None
    try:
        found = root.get_member(".".join(parts[1:])) if len(parts) > 1 else root
        while isinstance(found, griffe.Alias):
            found = found.final_target
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
    return found


def _is_rendered(obj: griffe.Object, roots: dict[str, bool]) -> bool:
    """Whether mkdocstrings renders ``obj``: it is a ``:::`` root, or a public, documented
    member (all the way up) of a root rendered with its members."""
    current: Any = obj
    while current is not None:
        if current.path in roots:
            return current is obj or roots[current.path]
        if current.docstring is None or (current.name.startswith("_")
                                         and current.name != "__init__"):
            return False
        current = current.parent
    return False


def _candidates(obj: griffe.Object, target: str) -> list[str]:
    """Absolute paths ``target`` may mean when written in ``obj``'s docstring."""
    out = [target]
    scope: Any = obj if obj.kind in (griffe.Kind.CLASS, griffe.Kind.MODULE) else obj.parent
    while scope is not None:
        out.append(f"{scope.path}.{target}")
        scope = scope.parent
    return out


def _convert(text: str, obj: griffe.Object, root: griffe.Module, roots: dict[str, bool]) -> str:
    def replace(match: re.Match[str]) -> str:
        role, tilde, target = match.groups()
        target = target.strip()
        label = target.rsplit(".", 1)[-1] if tilde else target
        if role in ("meth", "func"):
            label += "()"
        for path in _candidates(obj, target):
            found = _resolve(root, path)
            if found is not None and _is_rendered(found, roots):
                return f"[`{label}`][{found.path}]"
        return f"`{label}`"

    return _ROLE.sub(replace, text)


class SphinxRoles(griffe.Extension):
    """Rewrites the roles once the whole package is loaded (so every target resolves)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        roots = rendered_roots()

        def visit(obj: griffe.Object) -> None:
            if obj.docstring is not None:
                obj.docstring.value = _convert(obj.docstring.value, obj, pkg, roots)
            for member in obj.members.values():
                if not isinstance(member, griffe.Alias):
                    visit(member)

        visit(pkg)

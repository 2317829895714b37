"""The package's import direction: the folder tree is the data flow, arrows point down only.

A module may import its own stage (package or module), any stage ranked below it, and of
another stage only public names: never a name or a module starting with ``_``. Imports
inside functions count. The deprecated aliases of old module paths are left out.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import llmrec

PACKAGE = Path(llmrec.__file__).parent

#: Stage -> rank. A stage imports only stages of lower rank (and itself).
RANK = {
    "errors": 0,
    "_validate": 1,
    "types": 2,
    "device": 3,
    "registry": 3,
    "privacy": 3,
    "storage": 3,
    "catalog": 4,
    "encoding": 5,
    "profile": 5,
    "retrieval": 6,
    "ranking": 6,
    "generation": 6,
    "pipeline": 7,
    "datasets": 7,
    "evaluation": 8,
    "apps": 9,
    "testing": 9,
}
#: Private modules meant for the whole package.
SHARED = {"llmrec._validate", "llmrec._compat"}
#: Old module paths kept as thin warning aliases, and the package's entry points.
EXEMPT = {
    "__init__",
    "__main__",
    "_compat",
    "backends",
    "models",
    "protocols",
    "cli",
    "distributed",
    "encoder",
    "eventlog",
    "generator",
    "io",
    "ranker",
    "report",
    "retriever",
    "server",
}


def _stage(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[0] in EXEMPT:
            continue
        name = ".".join(("llmrec", *parts))
        out.append((name.removesuffix(".__init__"), path))
    return out


def _imports(path: Path, module: str) -> list[tuple[int, str, str | None]]:
    """``(line, imported module, imported name or None)`` for every llmrec import."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [
                (node.lineno, a.name, None) for a in node.names if a.name.split(".")[0] == "llmrec"
            ]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "llmrec":
                continue
            out += [(node.lineno, target, a.name) for a in node.names]
    return out


def _violations() -> list[str]:
    problems = []
    for module, path in _modules():
        own = _stage(module)
        assert own in RANK, f"{module}: stage {own!r} has no rank in RANK"
        for line, target, name in _imports(path, module):
            where = f"{path.relative_to(PACKAGE)}:{line}"
            stage = _stage(target) or (name if name in RANK else "")
            if target == "llmrec" and name not in RANK and name != "__version__":
                problems.append(f"{where} imports {name!r} from the top-level package")
                continue
            if not stage or stage == own:
                continue
            if target in SHARED:
                if target == "llmrec._compat" and own not in ("errors", "types"):
                    problems.append(f"{where} imports the deprecated path {target}")
                continue
            if stage in EXEMPT:
                problems.append(f"{where} imports the deprecated path {target}")
            elif RANK.get(stage, 99) >= RANK[own]:
                problems.append(
                    f"{where}: {own} (rank {RANK[own]}) imports {target} (rank {RANK.get(stage)})"
                )
            private = [p for p in target.split(".")[1:] if p.startswith("_")]
            if private or (name is not None and name.startswith("_")):
                problems.append(f"{where} imports the private {target}:{name} of {stage}")
    return problems


def test_every_stage_has_a_rank() -> None:
    stages = {_stage(m) for m, _ in _modules()}
    assert stages <= set(RANK), stages - set(RANK)


def test_imports_point_down_only() -> None:
    assert _violations() == []


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from llmrec.pipeline import Pipeline\n", "ranking (rank 6) imports llmrec.pipeline"),
        ("from llmrec.retrieval.retriever import _private\n", "private"),
        ("from llmrec.generation.llms._llama import LlamaRunner\n", "private"),
    ],
)
def test_the_check_finds_a_wrong_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, expected: str
) -> None:
    fake = tmp_path / "llmrec"
    fake.mkdir()
    (fake / "ranking.py").write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert any(expected in p for p in _violations())

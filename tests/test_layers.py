"""The layout shows the data flow (STYLE.md §1): no stage imports a downstream one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "reputable"

#: What each package may import from reputable (itself included). `config` is the top-level
#: reading of reputable.toml, which every stage may read.
ALLOWED = {
    "core": {"core"},
    "evidence": {"core", "evidence", "config"},
    "reputation": {"core", "evidence", "reputation", "config"},
    "listings": {"core", "evidence", "reputation", "listings", "config"},
    "publication": {"core", "listings", "reputation", "publication", "config"},
    "checker": {"core", "checker"},
}


def imports_of(path: Path) -> set[str]:
    """Return the reputable packages *path* imports (top level after ``reputable.``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found |= {
            n.split(".")[1] for n in names if n.startswith("reputable.") and n.count(".") >= 1
        }
    return found


@pytest.mark.parametrize("stage", sorted(ALLOWED))
def test_stage_imports_only_upstream(stage: str) -> None:
    """Every module of a stage imports only core, upstream stages and itself."""
    files = sorted((SRC / stage).rglob("*.py"))
    assert files, f"no modules found for {stage}"
    wrong = {
        str(f.relative_to(SRC)): sorted(imports_of(f) - ALLOWED[stage])
        for f in files
        if imports_of(f) - ALLOWED[stage]
    }
    assert wrong == {}


def test_publication_never_imports_evidence() -> None:
    """The DNS side never reaches into evidence (DESIGN: it answers from the snapshot only)."""
    assert "evidence" not in ALLOWED["publication"]
    assert all("evidence" not in imports_of(f) for f in (SRC / "publication").rglob("*.py"))

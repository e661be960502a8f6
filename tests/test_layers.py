"""The layout shows the data flow (STYLE.md §1): no stage imports a downstream one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "reputable"

#: What each package may import from reputable (itself included). No stage imports
#: reputable.config (nor config_schema/config_report/config_check): each stage owns the type of its own
#: settings and config.py composes them; web/, cli/, app.py and dnsworker.py compose and may.
ALLOWED = {
    "core": {"core"},
    "evidence": {"core", "evidence"},
    "reputation": {"core", "evidence", "reputation"},
    "listings": {"core", "evidence", "reputation", "listings"},
    "publication": {"core", "listings", "reputation", "publication"},
    "checker": {"core", "checker"},
    "policyd": {"core", "evidence", "reputation", "listings", "publication", "policyd", "store"},
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


@pytest.mark.parametrize("stage", sorted(ALLOWED))
def test_no_stage_imports_the_configuration(stage: str) -> None:
    """No module of a stage imports reputable.config: stages own their settings types."""
    composition = {
        "config",
        "config_schema",
        "config_report",
        "config_check",
        "app",
        "cli",
        "web",
        "dnsworker",
    }
    wrong = sorted(
        str(f.relative_to(SRC)) for f in (SRC / stage).rglob("*.py") if imports_of(f) & composition
    )
    assert wrong == []

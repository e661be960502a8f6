"""The remembered schema checks (config.check_schema): same verdicts, fewer pydantic builds."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from reputable import config
from reputable.config import (
    DEFAULT_TOML,
    SCHEMA_SOURCES,
    ConfigProblems,
    checked_cache_path,
    parse_config,
    schema_key,
)

SRC = Path(config.__file__).parent


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Give every test an empty cache of its own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(config.CHECKED_ENV, raising=False)
    return tmp_path / "cache"


def count_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every full (pydantic) check that runs."""
    calls: list[str] = []
    real = config._validate

    def counted(raw: dict[str, object], where: str) -> None:
        calls.append(where)
        real(raw, where)

    monkeypatch.setattr(config, "_validate", counted)
    return calls


def test_a_passed_check_is_remembered(monkeypatch: pytest.MonkeyPatch, cache_home: Path) -> None:
    calls = count_checks(monkeypatch)
    first = parse_config(DEFAULT_TOML)
    second = parse_config(DEFAULT_TOML)
    assert calls == ["configuration"]  # the second parse skipped pydantic
    assert first == second
    assert checked_cache_path() == cache_home / "reputable" / "config-checked"
    assert checked_cache_path().read_text().split() == [schema_key(DEFAULT_TOML)]


def test_a_failed_check_is_never_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_checks(monkeypatch)
    text = DEFAULT_TOML + "\n[dnss]\nworkers = 2\n"
    messages = []
    for _ in range(2):
        with pytest.raises(ConfigProblems) as caught:
            parse_config(text)
        messages.append(str(caught.value))
    assert len(calls) == 2 and messages[0] == messages[1]
    assert "unknown table" in messages[0]
    assert not checked_cache_path().exists()


def test_another_text_is_checked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_checks(monkeypatch)
    parse_config(DEFAULT_TOML)
    with pytest.raises(ConfigProblems):
        parse_config(DEFAULT_TOML.replace("workers = 1", "workrs = 1"))
    assert len(calls) == 2


def test_a_changed_schema_source_forgets_every_check(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    before = schema_key(DEFAULT_TOML)
    schema = SRC / "config_schema.py"
    stat = schema.stat()
    try:
        os.utime(schema, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        assert schema_key(DEFAULT_TOML) != before
    finally:
        os.utime(schema, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert schema_key(DEFAULT_TOML) == before


def test_an_unwritable_cache_only_costs_time(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    calls = count_checks(monkeypatch)
    assert parse_config(DEFAULT_TOML) == parse_config(DEFAULT_TOML)
    assert len(calls) == 2


def test_the_cache_keeps_the_newest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "CHECKED_KEEP", 3)
    texts = [DEFAULT_TOML + f"\n# {i}\n" for i in range(5)]
    for text in texts:
        parse_config(text)
    assert checked_cache_path().read_text().split() == [schema_key(t) for t in texts[:1:-1]]


def _module_files(name: str) -> list[Path]:
    """Return the file of module *name* ([] for a name that is no module, e.g. a class)."""
    parts = name.split(".")[1:]
    package = SRC.joinpath(*parts) / "__init__.py"
    module = SRC.joinpath(*parts[:-1], parts[-1] + ".py")
    return [p for p in (package, module) if p.exists()]


def test_schema_sources_cover_what_the_schema_imports() -> None:
    """SCHEMA_SOURCES lists config_schema and every reputable module it imports, transitively."""
    seen: set[Path] = set()
    todo = [SRC / "config_schema.py"]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        parts = path.relative_to(SRC).parts
        for depth in range(1, len(parts)):  # the packages on the way are imported first
            todo.append(SRC.joinpath(*parts[:depth]) / "__init__.py")
        todo.append(SRC / "__init__.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:  # a name may be a module
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.startswith("reputable."):
                    todo.extend(_module_files(name))
    assert sorted(str(p.relative_to(SRC)) for p in seen) == sorted(SCHEMA_SOURCES)

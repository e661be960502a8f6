"""Run `reputable` in-process through its real entry point (errors, exit codes and all)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reputable.cli.main import main
from reputable.config import DEFAULT_TOML
from reputable.store.dsn import is_postgres
from tests.conftest import use_store


@dataclass(frozen=True)
class Result:
    """What one run printed and how it exited."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """Return stdout parsed as JSON."""
        return json.loads(self.out)

    def lines(self) -> list[str]:
        """Return the non-empty lines of stdout."""
        return [line for line in self.out.splitlines() if line]


class Cli:
    """Runs ``reputable --config CONFIG ARGS`` through ``reputable.cli.main.main``."""

    def __init__(self, config: Path, capsys: pytest.CaptureFixture[str], mp: pytest.MonkeyPatch):
        self.config = config
        self._capsys = capsys
        self._mp = mp

    def __call__(self, *args: str, config: bool = True) -> Result:
        """Run one command; stdout is a pipe here, as in a script."""
        argv = ["reputable", *(["--config", str(self.config)] if config else []), *args]
        self._mp.setattr(sys, "argv", argv)
        self._capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = self._capsys.readouterr()
        return Result(code, captured.out, captured.err)


@pytest.fixture
def config(tmp_path: Path, store_dsn: str) -> Path:
    """A default config whose store is new: SQLite in *tmp_path*, or a PostgreSQL schema."""
    path = tmp_path / "reputable.toml"
    path.write_text(DEFAULT_TOML, encoding="utf-8")
    return use_store(path, store_dsn) if is_postgres(store_dsn) else path


@pytest.fixture
def cli(config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The CLI bound to *config*."""
    monkeypatch.chdir(config.parent)
    return Cli(config, capsys, monkeypatch)

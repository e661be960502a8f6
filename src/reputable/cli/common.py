"""Shared CLI plumbing: loading config, opening the store, printing errors and JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from reputable.config import Config, load_config
from reputable.core import log
from reputable.core.clock import parse_instant

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


@dataclass
class State:
    """Global options, carried in the Typer context."""

    config_path: Path | None = None
    _config: Config | None = None

    @property
    def config(self) -> Config:
        """The loaded configuration (read once)."""
        if self._config is None:
            self._config = load_config(self.config_path)
            log.set_format(log.format_from(self._config.extra.get("log")))
        return self._config


def state(ctx: typer.Context) -> State:
    """Return the global options of this invocation."""
    obj = ctx.find_root().obj
    if not isinstance(obj, State):
        obj = State()
        ctx.find_root().obj = obj
    return obj


def now_option(text: str | None) -> datetime:
    """Return ``--now`` as an aware UTC time, or the current time."""
    return parse_instant(text) if text else datetime.now(UTC)


def print_json(data: Any) -> None:
    """Print *data* as JSON on stdout (no colour, stable key order)."""
    typer.echo(json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False))

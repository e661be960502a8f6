"""Structured log lines: a snake_case event name and key=value pairs (logfmt) on stderr."""

from __future__ import annotations

import logging
import sys
from typing import Any

_LOGGER = logging.getLogger("reputable")


def setup(level: str = "INFO") -> None:
    """Send reputable's log lines to stderr at *level* (idempotent)."""
    if not _LOGGER.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        _LOGGER.addHandler(handler)
        _LOGGER.propagate = False
    _LOGGER.setLevel(level.upper())


def _value(value: Any) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def line(event: str, **fields: Any) -> str:
    """Return the logfmt line for *event* with *fields*."""
    return " ".join([event, *(f"{k}={_value(v)}" for k, v in fields.items())])


def info(event: str, **fields: Any) -> None:
    """Log *event* at INFO."""
    _LOGGER.info(line(event, **fields))


def warning(event: str, **fields: Any) -> None:
    """Log *event* at WARNING."""
    _LOGGER.warning(line(event, **fields))


def error(event: str, **fields: Any) -> None:
    """Log *event* at ERROR."""
    _LOGGER.error(line(event, **fields))

"""Structured log lines on stderr: an event name and fields, as logfmt text or JSON.

Every line carries a UTC RFC 3339 timestamp (``2026-12-05T18:30:00.123Z``). Field values are
rendered as plain text: a HOST:PORT pair is ``127.0.0.1:5300``, a list of them is comma
separated, never a Python tuple repr.

Sample (text)::

    2026-12-05T18:30:00.123Z INFO dns_ready workers=1 listen=127.0.0.1:5300 mode=in-process
    #        UTC timestamp ^  level ^  event ^   fields ^ (plain text, quoted only if needed)

Sample (json, one object a line)::

    {"ts": "2026-12-05T18:30:00.123Z", "level": "INFO", "event": "dns_ready", "workers": 1,
     "listen": "127.0.0.1:5300", "mode": "in-process"}
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from reputable.core.errors import ConfigError

_LOGGER = logging.getLogger("reputable")
FORMATS = ("text", "json")


def timestamp(created: float) -> str:
    """Return the UTC RFC 3339 form (millisecond precision, ``Z``) of a POSIX time."""
    moment = datetime.fromtimestamp(created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def plain(value: Any) -> Any:
    """Return *value* as JSON-ready plain data: pairs as HOST:PORT, sequences comma-joined."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], int):
        host = str(value[0])
        return f"[{host}]:{value[1]}" if ":" in host else f"{host}:{value[1]}"
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(str(plain(v)) for v in value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def _value(value: Any) -> str:
    rendered = plain(value)
    text = str(rendered).lower() if isinstance(rendered, bool) else str(rendered)
    if not text or any(c in text for c in ' "=\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def line(event: str, **fields: Any) -> str:
    """Return the logfmt line for *event* with *fields*."""
    return " ".join([event, *(f"{k}={_value(v)}" for k, v in fields.items())])


class TextFormatter(logging.Formatter):
    """``TIMESTAMP LEVEL event key=value ...`` with a UTC timestamp."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the text line of *record*."""
        return f"{timestamp(record.created)} {record.levelname} {record.getMessage()}"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts, level, event, then the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the JSON line of *record*."""
        data: dict[str, Any] = {"ts": timestamp(record.created), "level": record.levelname}
        structured = getattr(record, "reputable", None)
        if isinstance(structured, tuple):
            event, fields = structured
            data["event"] = event
            for key, value in fields.items():
                data.setdefault(key, plain(value))
        else:
            data["event"] = "message"
            data["message"] = record.getMessage()
        return json.dumps(data, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at each line (test runners swap it per command)."""

    @property
    def stream(self) -> Any:
        """The current standard error."""
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        return


def setup(level: str = "INFO", fmt: str = "text") -> None:
    """Send reputable's log lines to stderr at *level* in *fmt* (text or json); idempotent."""
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: use one of {', '.join(FORMATS)}")
    formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    if not _LOGGER.handlers:
        _LOGGER.addHandler(_StderrHandler())
        _LOGGER.propagate = False
    for handler in _LOGGER.handlers:
        handler.setFormatter(formatter)
    _LOGGER.setLevel(level.upper())


def format_from(section: Any) -> str:
    """Return the checked ``[log] format`` of the config's *section* ("text" when unset)."""
    fmt = section.get("format", "text") if isinstance(section, dict) else section
    if section is None:
        fmt = "text"
    if fmt not in FORMATS:
        raise ConfigError(f'log.format = {fmt!r}: use "text" (key=value lines) or "json"')
    return str(fmt)


def set_format(fmt: str) -> None:
    """Switch the lines already set up to *fmt* (text or json), keeping the level."""
    setup(logging.getLevelName(_LOGGER.getEffectiveLevel()), fmt)


def _emit(level: int, event: str, fields: dict[str, Any]) -> None:
    if _LOGGER.isEnabledFor(level):
        _LOGGER.log(level, line(event, **fields), extra={"reputable": (event, fields)})


def info(event: str, **fields: Any) -> None:
    """Log *event* at INFO."""
    _emit(logging.INFO, event, fields)


def warning(event: str, **fields: Any) -> None:
    """Log *event* at WARNING."""
    _emit(logging.WARNING, event, fields)


def error(event: str, **fields: Any) -> None:
    """Log *event* at ERROR."""
    _emit(logging.ERROR, event, fields)

"""Log lines: UTC RFC 3339 timestamps, plain-text values, text and JSON formats."""

from __future__ import annotations

import json
import logging
import re

import pytest

from reputable.core import log
from reputable.core.errors import ConfigError


def _record(event: str, **fields: object) -> logging.LogRecord:
    record = logging.LogRecord(
        "reputable", logging.INFO, __file__, 1, log.line(event, **fields), None, None
    )
    record.created = 1_764_957_000.25  # 2025-12-05T17:50:00.250Z
    record.reputable = (event, fields)
    return record


def test_endpoints_render_as_host_port_not_tuple_reprs() -> None:
    """A tuple of (host, port) pairs is logged as comma-joined HOST:PORT text."""
    text = log.line("dns_ready", listen=(("127.0.0.1", 5302), ("::1", 5302)), workers=2)
    assert text == "dns_ready listen=127.0.0.1:5302,[::1]:5302 workers=2"


def test_text_lines_carry_utc_rfc3339_timestamps() -> None:
    """The text formatter starts each line with a Z-suffixed UTC timestamp and the level."""
    out = log.TextFormatter().format(_record("serve_ready", pid=7))
    assert out == "2025-12-05T17:50:00.250Z INFO serve_ready pid=7"


def test_json_lines_are_objects_with_typed_plain_fields() -> None:
    """The JSON formatter emits ts, level, event and the fields, numbers kept as numbers."""
    out = log.JsonFormatter().format(
        _record("dns_ready", listen=(("127.0.0.1", 5302),), workers=1, note='say "hi"')
    )
    data = json.loads(out)
    assert data == {
        "ts": "2025-12-05T17:50:00.250Z",
        "level": "INFO",
        "event": "dns_ready",
        "listen": "127.0.0.1:5302",
        "workers": 1,
        "note": 'say "hi"',
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data["ts"])


def test_format_key_is_checked_with_the_fix_named() -> None:
    """An unknown [log] format is a ConfigError that names the key and the accepted values."""
    assert log.format_from(None) == "text"
    assert log.format_from({"format": "json"}) == "json"
    with pytest.raises(ConfigError, match=r'log\.format = .yaml.: use "text"'):
        log.format_from({"format": "yaml"})

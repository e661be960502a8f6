"""Time: the Clock seam, durations ("7d") and ISO-8601 instants, always timezone-aware UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from reputable.core.errors import InputError

_DURATION: Final = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class Clock(Protocol):
    """Source of the current time; tests pass a frozen one."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware UTC."""
        return datetime.now(UTC)


def parse_duration(text: str) -> timedelta:
    """Return a duration written like ``90``, ``30s``, ``15m``, ``12h``, ``7d`` or ``1d12h``."""
    raw = text.strip().lower()
    if raw.isdigit():
        return timedelta(seconds=int(raw))
    pos = 0
    total = 0.0
    for match in _DURATION.finditer(raw):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        pos = match.end()
    if pos != len(raw) or not raw:
        raise InputError(
            f"bad duration {text!r}: use a number with a unit s, m, h, d or w (e.g. 7d, 12h, 1d12h)"
        )
    return timedelta(seconds=total)


def parse_instant(text: str) -> datetime:
    """Return an ISO-8601 time as aware UTC (a time without zone is taken as UTC)."""
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise InputError(f"bad time {text!r}: use ISO-8601, e.g. 2026-11-29T08:00:00Z") from exc
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_instant(value: datetime | None) -> str | None:
    """Return *value* as ISO-8601 UTC with a ``Z`` suffix, or None."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")

"""Durations and instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reputable.core.clock import format_instant, parse_duration, parse_instant
from reputable.core.errors import InputError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90", timedelta(seconds=90)),
        ("7d", timedelta(days=7)),
        ("1d12h", timedelta(hours=36)),
        ("15m", timedelta(minutes=15)),
        ("2w", timedelta(weeks=2)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    """Durations with units parse to the right length."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7x", "d7", "7d x"])
def test_bad_durations(text: str) -> None:
    """Unparseable durations raise an InputError naming the units."""
    with pytest.raises(InputError, match="use a number with a unit"):
        parse_duration(text)


def test_instants_are_utc() -> None:
    """ISO times with Z, offsets or no zone all become aware UTC."""
    assert parse_instant("2026-01-02T03:04:05Z") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_instant("2026-01-02T05:04:05+02:00") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_instant("2026-01-02T03:04:05").tzinfo is UTC
    assert format_instant(datetime(2026, 1, 2, tzinfo=UTC)) == "2026-01-02T00:00:00Z"

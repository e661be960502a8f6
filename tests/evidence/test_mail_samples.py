"""Every annotated line of tests/samples/{postfix,exim}.log parses to its ``# expect:`` result."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reputable.core.clock import parse_instant
from reputable.evidence.parsers.envelope import normalize
from reputable.evidence.parsers.mailevent import ALL_EVENTS, MailEvent
from reputable.evidence.parsers.maillog import PARSERS
from reputable.evidence.parsers.syslog_time import TimeParser

SAMPLES = Path(__file__).parent.parent / "samples"


def _load(name: str) -> tuple[datetime, list[tuple[object, str]]]:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    pairs: list[tuple[object, str]] = []
    expect: object = "missing"
    for raw in (SAMPLES / f"{name}.log").read_text(encoding="utf-8").splitlines():
        if raw.startswith("# now:"):
            now = parse_instant(raw.removeprefix("# now:").strip())
        elif raw.startswith("# expect:"):
            expect = json.loads(raw.removeprefix("# expect:"))
        elif not raw.startswith("#"):
            assert expect != "missing", f"{name}.log: line without # expect: {raw}"
            pairs.append((expect, raw))
            expect = "missing"
    return now, pairs


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_sample_lines_match_expectations(name: str) -> None:
    """Each sample line yields exactly the expected event (or none for ``null``)."""
    now, pairs = _load(name)
    buf = "".join(line + "\n" for _, line in pairs)
    events: dict[int, list[MailEvent]] = {}
    for ev in PARSERS[name](buf, first_line=1, times=TimeParser(now), wanted=ALL_EVENTS):
        events.setdefault(ev.line, []).append(ev)
    assert len(pairs) >= 20
    for lineno, (expect, line) in enumerate(pairs, 1):
        found = events.get(lineno, [])
        if expect is None:
            assert not found, f"{name}.log: expected nothing from {line!r}, got {found}"
            continue
        assert isinstance(expect, dict)
        assert len(found) == 1, f"{name}.log: expected one event from {line!r}, got {found}"
        got = found[0].to_json() | {"at": _iso(found[0].at)}
        for key, value in expect.items():
            assert got.get(key, "") == value, (
                f"{name}.log: {line!r}: {key} is {got.get(key)!r}, want {value!r}"
            )
        assert found[0].text == normalize(line)  # the canonical envelope (parsers/envelope.py)


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=150, deadline=None)
@given(junk=st.text(alphabet=st.characters(codec="utf-8"), max_size=400))
def test_parsers_never_crash_on_junk(name: str, junk: str) -> None:
    """Arbitrary text (including fragments of real lines) never makes a parser raise."""
    _, pairs = _load(name)
    buf = junk + "\n" + pairs[1][1][: len(junk) % 120] + junk[:40] + "\n"
    events = list(
        PARSERS[name](
            buf, first_line=1, times=TimeParser(datetime(2026, 1, 1, tzinfo=UTC)), wanted=ALL_EVENTS
        )
    )
    assert all(ev.line in (1, 2) for ev in events)


def test_syslog_year_rolls_over_from_december_to_january() -> None:
    """A December line read in early January belongs to the previous year; January lines to this one."""
    times = TimeParser(datetime(2026, 1, 3, 12, tzinfo=UTC))
    assert _iso(times("Dec 31 23:59:59") or 0) == "2025-12-31T23:59:59Z"
    assert _iso(times("Jan  1 00:00:00") or 0) == "2026-01-01T00:00:00Z"
    assert _iso(times("Jan  4 00:00:00") or 0) == "2026-01-04T00:00:00Z"  # within a day of skew
    assert _iso(times("Jan  5 00:00:00") or 0) == "2025-01-05T00:00:00Z"  # too far ahead: last year


def test_timestamps_in_other_shapes() -> None:
    """RFC 3339 with offsets, Exim's local time with a zone, and junk are all handled."""
    times = TimeParser(datetime(2026, 3, 5, tzinfo=UTC))
    assert _iso(times("2026-03-02T08:00:00+01:00") or 0) == "2026-03-02T07:00:00Z"
    assert _iso(times("2026-03-02 07:47:48") or 0) == "2026-03-02T07:47:48Z"
    assert _iso(times("2026-03-02 07:47:48-0500") or 0) == "2026-03-02T12:47:48Z"
    assert times("Feb 30 00:00:00") is None
    assert times("Foo  1 00:00:00") is None
    assert times("2026-13-01T00:00:00Z") is None


def test_february_29_goes_to_the_nearest_leap_year() -> None:
    """29 Feb read in a non-leap year is the last leap year's, not an unreadable time."""
    assert _iso(TimeParser(datetime(2027, 3, 10, tzinfo=UTC))("Feb 29 10:00:00") or 0) == (
        "2024-02-29T10:00:00Z"
    )
    assert _iso(TimeParser(datetime(2028, 3, 1, tzinfo=UTC))("Feb 29 10:00:00") or 0) == (
        "2028-02-29T10:00:00Z"
    )
    assert _iso(TimeParser(datetime(2028, 2, 1, tzinfo=UTC))("Feb 29 10:00:00") or 0) == (
        "2024-02-29T10:00:00Z"
    )
    line = "Feb 29 10:00:00 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]\n"
    times = TimeParser(datetime(2027, 1, 5, tzinfo=UTC))
    assert [
        ev.ip for ev in PARSERS["postfix"](line, first_line=1, times=times, wanted=ALL_EVENTS)
    ] == ["192.0.2.1"]


@settings(max_examples=300, deadline=None)
@given(
    now=st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    when=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2000, 12, 31, 23, 59, 59)),
)
def test_syslog_time_is_the_latest_existing_date_within_a_day_of_now(
    now: datetime, when: datetime
) -> None:
    """Every real month/day (29 Feb too) is read, in the latest year where it exists and its
    day begins no later than now + 1 day (one rule for the per-day cache and the slow path)."""
    text = f"{when:%b} {when.day:2d} {when:%H:%M:%S}"
    got = TimeParser(now)(text)
    assert got is not None, text
    at = datetime.fromtimestamp(got, UTC)
    limit = now + timedelta(days=1)
    assert (at.month, at.day, at.hour, at.minute, at.second) == (
        when.month, when.day, when.hour, when.minute, when.second,
    )  # fmt: skip
    midnight = at.replace(hour=0, minute=0, second=0)
    assert midnight <= limit
    for later in range(at.year + 1, limit.year + 1):  # no later year would have done
        try:
            candidate = midnight.replace(year=later)
        except ValueError:
            continue
        assert candidate > limit

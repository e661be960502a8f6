"""Syslog envelopes come out in one shape, and syslog times are right in any zone, DST days included."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reputable.evidence.detectors.netconfig import NetSettings
from reputable.evidence.parsers import sshd
from reputable.evidence.parsers.envelope import normalize, normalize_bytes
from reputable.evidence.parsers.netbase import NetEvent
from reputable.evidence.parsers.syslog_time import TimeParser
from reputable.evidence.sources.netlog import ingest_netlog
from reputable.testing import cli

BERLIN = ZoneInfo("Europe/Berlin")


def _utc(text: str) -> str:
    return datetime.fromisoformat(text).astimezone(UTC).isoformat()


@pytest.mark.parametrize(
    ("line", "want"),
    [
        (
            '<38>1 2019-07-08T17:40:16.954-04:00 host sshd 57915 - [a b="c\\]"][d] msg',
            "2019-07-08T17:40:16.954-04:00 host sshd[57915]: msg",
        ),
        ("<38>1 2019-07-08T17:40:16Z host sshd - - - msg", "2019-07-08T17:40:16Z host sshd: msg"),
        ("<13>Nov  2 15:40:14 host sshd[1]: msg", "Nov  2 15:40:14 host sshd[1]: msg"),
        ("Nov 2 15:40:14 host sshd[1]: msg", "Nov  2 15:40:14 host sshd[1]: msg"),
        ("Nov  2 15:40:14 sshd[1]: msg", "Nov  2 15:40:14 - sshd[1]: msg"),
        ("Nov  2 15:40:14 h sshd[1]: [ID 800047 auth.info] msg", "Nov  2 15:40:14 h sshd[1]: msg"),
        ("2026-03-02T08:00:00.123456+01:00 h sshd[1]: msg", "2026-03-02T08:00:00.123456+01:00 h sshd[1]: msg"),
    ],
)  # fmt: skip
def test_each_envelope_becomes_the_canonical_shape(line: str, want: str) -> None:
    """RFC 5424, a kept PRI, an unpadded day, no host and Solaris IDs are rewritten; RFC 3339 is kept."""
    assert normalize(line) == want
    assert normalize_bytes(line.encode()) == want.encode()


_CANONICAL = st.builds(
    "{} {:2d} {:02d}:{:02d}:{:02d} {} {}[{}]: {}".format,
    st.sampled_from(["Jan", "Feb", "Mar", "Nov", "Dec"]),
    st.integers(1, 28),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    st.from_regex(r"[a-z][a-z0-9.-]{0,20}", fullmatch=True),
    st.sampled_from(["sshd", "postfix/smtpd", "kernel", "dovecot"]),
    st.integers(1, 99999),
    st.text(st.characters(codec="utf-8", exclude_characters="\n\r"), max_size=80),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_CANONICAL, min_size=1, max_size=20))
def test_canonical_lines_are_left_alone(lines: list[str]) -> None:
    """A log already in the canonical shape comes back identical (the same object: no copy)."""
    text = "\n".join(lines) + "\n"
    assert normalize(text) is text or normalize(text) == text


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(codec="utf-8"), max_size=300))
def test_junk_keeps_its_lines_and_never_raises(junk: str) -> None:
    """Any text keeps its number of lines, and bytes and text agree."""
    out = normalize(junk)
    assert out.count("\n") == junk.count("\n")
    assert normalize_bytes(junk.encode()).count(b"\n") == junk.encode().count(b"\n")


def test_berlin_summer_time_day_is_not_an_hour_off() -> None:
    """Read in Europe/Berlin, Mar 29 2026 10:00:00 is 08:00 UTC (DST began at 02:00 that day)."""
    times = TimeParser(datetime(2026, 4, 1, tzinfo=UTC), BERLIN)
    for text, want in [
        ("Mar 29 00:30:00", "2026-03-28T23:30:00+00:00"),
        ("Mar 29 01:59:59", "2026-03-29T00:59:59+00:00"),
        ("Mar 29 03:00:00", "2026-03-29T01:00:00+00:00"),
        ("Mar 29 10:00:00", "2026-03-29T08:00:00+00:00"),
        ("Mar 30 10:00:00", "2026-03-30T08:00:00+00:00"),
    ]:
        at = times(text)
        assert at is not None
        assert datetime.fromtimestamp(at, UTC).isoformat() == want, text
    back = TimeParser(datetime(2026, 11, 1, tzinfo=UTC), BERLIN)
    at = back("Oct 25 10:00:00")  # DST ended at 03:00 that day
    assert at is not None and datetime.fromtimestamp(at, UTC).isoformat() == _utc("2026-10-25T09:00:00")  # fmt: skip


def test_year_end_in_a_zone_ahead_of_utc() -> None:
    """Read on Jan 1 in Auckland, Dec 31 23:30 local is last year, Jan 1 00:10 this year."""
    now = datetime(2026, 12, 31, 11, 30, tzinfo=UTC)  # Jan 1 2027 00:30 in Auckland
    times = TimeParser(now, ZoneInfo("Pacific/Auckland"))
    dec, jan = times("Dec 31 23:30:00"), times("Jan  1 00:10:00")
    assert dec is not None and jan is not None
    assert datetime.fromtimestamp(dec, UTC).isoformat() == "2026-12-31T10:30:00+00:00"
    assert datetime.fromtimestamp(jan, UTC).isoformat() == "2026-12-31T11:10:00+00:00"


def test_sshd_fast_path_and_parser_agree_on_a_dst_day(tmp_path: Path) -> None:
    """The sshd block scanner (per-hour cache) and the line parser give the same times in Berlin."""
    lines = [
        f"Mar 29 {h:02d}:{m:02d}:00 h sshd[{h}]: Failed password for root from 192.0.2.9 port 22 ssh2"
        for h in (0, 1, 3, 4, 10, 23)
        for m in range(0, 60, 5)
    ]
    log = tmp_path / "auth.log"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    now = datetime(2026, 4, 1, tzinfo=UTC)
    parsed = [e.ts for e in sshd.parse(lines, now=now, tz=BERLIN) if isinstance(e, NetEvent)]
    want = [datetime(2026, 3, 29, int(x[7:9]), int(x[10:12]), tzinfo=BERLIN).timestamp() for x in lines]  # fmt: skip
    assert parsed == want
    found = []
    summary = ingest_netlog(log, "sshd", NetSettings(), now=now, sink=lambda e: found.extend(e) or 0, tz=BERLIN)  # fmt: skip
    assert summary.understood == len(lines)
    first = found[0].detail["first_seen"]
    assert first == datetime.fromtimestamp(want[0], UTC).isoformat().replace("+00:00", "Z")


def test_cli_timezone_option_is_checked(tmp_path: Path) -> None:
    """`ingest netlog --timezone` takes IANA names and refuses others with the fix."""
    config = tmp_path / "reputable.toml"
    config.write_text('data_dir = "."\n', encoding="utf-8")
    log = tmp_path / "auth.log"
    log.write_text("Mar 29 10:00:00 h sshd[1]: Invalid user a from 192.0.2.1 port 1\n", encoding="utf-8")  # fmt: skip
    out = cli(config, "ingest", "netlog", str(log), "-f", "sshd", "--dry-run", "--jsonl", "--timezone", "Europe/Berlin", "--now", "2026-04-01T00:00:00Z").stdout  # fmt: skip
    assert '"at": "2026-03-29T08:00:00Z"' in out
    bad = cli(config, "ingest", "netlog", str(log), "-f", "sshd", "--timezone", "Mars/Olympus", check=False)  # fmt: skip
    assert bad.returncode != 0 and "IANA name" in bad.stderr + bad.stdout
    assert "Traceback" not in bad.stderr


def test_rotated_files_in_rfc_5424_are_ordered_by_their_first_time() -> None:
    """The first time of a file whose lines are RFC 5424 is found (rotated files are read oldest first)."""
    from reputable.evidence.sources.maillog import first_time

    times = TimeParser(datetime(2026, 1, 3, tzinfo=UTC))
    text = (
        "<22>1 2026-01-02T07:40:16.954-05:00 mx postfix/smtpd 9002 - - connect from x[192.0.2.1]\n"
    )
    assert (
        first_time(text, times) == datetime(2026, 1, 2, 12, 40, 16, 954000, tzinfo=UTC).timestamp()
    )


def test_exim_times_from_the_minute_cache_equal_the_full_parse_across_dst() -> None:
    """Exim's ``YYYY-MM-DD HH:MM:SS`` from the per-minute cache equals parsing each second.

    Every second of the two Berlin DST change days (and the nonexistent and repeated hours)
    is read both ways; the first reading fills the cache, the second comes from it.
    """
    berlin = ZoneInfo("Europe/Berlin")
    now = datetime(2026, 12, 1, tzinfo=UTC)
    cached = TimeParser(now, berlin)
    for day in ("2026-03-29", "2026-10-25"):
        for second in range(0, 4 * 3600, 7):
            text = f"{day} {second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
            full = TimeParser(now, berlin)._iso(text)  # the slow path, no cache
            assert cached(text) == full == cached(text), text
    assert cached("2026-03-29 03:00:05") == datetime(2026, 3, 29, 1, 0, 5, tzinfo=UTC).timestamp()
    assert cached("2026-03-29 01:59:59") == datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC).timestamp()
    assert cached("2026-03-29 01:59:5x") is None

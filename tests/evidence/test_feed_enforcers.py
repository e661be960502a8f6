"""CrowdSec and fail2ban feed kinds: decisions and bans become evidence, never listings."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from ipaddress import ip_address
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from reputable.core.cause import Cause
from reputable.evidence.parsers import feed_crowdsec, feed_fail2ban
from reputable.evidence.parsers.feed_model import CsvMapping

SAMPLES = Path(__file__).parent / "feed_samples"
MAPPING = CsvMapping()


def test_crowdsec_stream_keeps_new_ip_decisions() -> None:
    """LAPI stream: new IP decisions become events; ranges skipped, deleted ignored, junk counted."""
    content = feed_crowdsec.parse((SAMPLES / "crowdsec_stream.json").read_text(), MAPPING)
    got = [(str(e.address), e.cause, e.detail["scenario"]) for e in content.events]
    assert got == [
        ("192.0.2.7", Cause.COMPROMISED, "crowdsecurity/ssh-bf"),
        ("2001:db8::8", Cause.COMPROMISED, "crowdsecurity/http-probing"),
        ("198.51.100.9", Cause.SPAM, "crowdsecurity/postfix-spam"),
    ]
    assert all(e.observed_at is None for e in content.events)  # the stream carries no time
    assert content.events[0].detail["decision"] == 7
    assert (content.lines, content.invalid) == (5, 1)
    assert "not-an-ip" in content.samples[0]


def test_crowdsec_cscli_list_uses_alert_time_and_scenario() -> None:
    """cscli decisions list -o json: each decision takes its alert's time and scenario."""
    content = feed_crowdsec.parse((SAMPLES / "crowdsec_cscli.json").read_text(), MAPPING)
    assert [(str(e.address), e.observed_at) for e in content.events] == [
        ("192.0.2.44", datetime(2026, 1, 5, 10, 0, tzinfo=UTC)),
        ("198.51.100.200", datetime(2026, 1, 5, 11, 30, tzinfo=UTC)),
    ]
    assert content.events[1].detail["scenario"] == "crowdsecurity/http-crawl-non_statics"
    assert content.events[1].detail["type"] == "captcha"
    assert content.invalid == 0


def test_crowdsec_empty_answers_are_empty() -> None:
    """cscli prints null and the stream {"new": null} when nothing is decided."""
    assert feed_crowdsec.parse("null", MAPPING).entries == 0
    assert feed_crowdsec.parse('{"new": null, "deleted": null}', MAPPING).entries == 0
    broken = feed_crowdsec.parse("{not json", MAPPING)
    assert (broken.lines, broken.invalid) == (1, 1)


def test_fail2ban_banned_output() -> None:
    """`fail2ban-client banned`: every address of every jail, junk counted."""
    content = feed_fail2ban.parse((SAMPLES / "fail2ban_banned.txt").read_text(), MAPPING)
    got = [(str(e.address), e.detail["jail"]) for e in content.events]
    assert got == [("192.0.2.21", "sshd"), ("192.0.2.22", "sshd"), ("2001:db8::21", "postfix-sasl")]
    assert {e.cause for e in content.events} == {Cause.COMPROMISED}
    assert (content.lines, content.invalid) == (4, 1)


def test_fail2ban_database_rows_with_times(tmp_path: Path) -> None:
    """A database with fail2ban's bans table gives one event per ban at its time."""
    path = tmp_path / "f2b.sqlite3"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE bans(jail TEXT NOT NULL, ip TEXT, timeofban INTEGER NOT NULL,"
        " bantime INTEGER NOT NULL, bancount INTEGER NOT NULL default 1, data JSON)"
    )
    db.execute("INSERT INTO bans VALUES ('sshd', '192.0.2.5', 1767225600, 600, 1, '{}')")
    db.execute("INSERT INTO bans VALUES ('sshd', 'junk', 1767225601, 600, 1, '{}')")
    db.commit()
    db.close()
    content = feed_fail2ban.parse_bytes(path.read_bytes(), MAPPING)
    assert [(e.address, e.observed_at) for e in content.events] == [
        (ip_address("192.0.2.5"), datetime(2026, 1, 1, tzinfo=UTC))
    ]
    assert content.events[0].detail == {
        "tool": "fail2ban",
        "jail": "sshd",
        "bantime": 600,
        "bancount": 1,
    }
    assert content.invalid == 1


def test_fail2ban_other_sqlite_file_is_a_clear_error(tmp_path: Path) -> None:
    """A SQLite file without a bans table is one unreadable entry naming fail2ban's dbfile."""
    path = tmp_path / "other.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    content = feed_fail2ban.parse_bytes(path.read_bytes(), MAPPING)
    assert content.invalid == 1
    assert "dbfile" in content.samples[0]


@given(st.text(max_size=300))
@settings(max_examples=200, deadline=None)
def test_parsers_never_crash_on_junk(text: str) -> None:
    """Any text gives a result (entries or counted junk), never an exception."""
    for parse in (feed_crowdsec.parse, feed_fail2ban.parse):
        content = parse(text, MAPPING)
        assert content.invalid <= max(content.lines, 1)

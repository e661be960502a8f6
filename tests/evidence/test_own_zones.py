"""Rejections by our own DNSBL zones are never evidence; other lists' zones only when opted in (issue 18, defect 3)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reputable.core.errors import ConfigError
from reputable.evidence.detectors.mail import MailDetector
from reputable.evidence.detectors.mail_config import MailParams, mail_params
from reputable.evidence.model import Evidence
from reputable.evidence.parsers import exim, postfix
from reputable.evidence.parsers.mailevent import ALL_EVENTS, rbl_zone
from reputable.evidence.parsers.syslog_time import TimeParser
from reputable.testing import cli

NOW = datetime(2026, 3, 20, tzinfo=UTC)
OWN = ("bl.reputable.test", "dbl.reputable.test", "wl.reputable.test")


def _postfix_rejects(zone: str, n: int = 24, ip: str = "203.0.113.50") -> str:
    return "".join(
        f"Mar 19 10:{i // 60:02d}:{i % 60:02d} mx postfix/smtpd[77]: NOQUEUE: reject: RCPT from"
        f" x.example[{ip}]: 554 5.7.1 Service unavailable; Client host [{ip}] blocked using"
        f" {zone}; from=<a@x.example> to=<b@ours.example> proto=ESMTP helo=<x.example>\n"
        for i in range(n)
    )


def _run(text: str, params: MailParams, parser: object = postfix) -> list[Evidence]:
    detector = MailDetector(params, "maillog")
    scan = parser.scan  # type: ignore[attr-defined]  # postfix or exim module
    events = scan(text, first_line=1, times=TimeParser(NOW), wanted=ALL_EVENTS)
    return detector.feed(events) + detector.flush()


def test_own_zone_rejections_make_no_evidence() -> None:
    """24 Postfix rejects 'blocked using bl.reputable.test' give no evidence against the client."""
    assert _run(_postfix_rejects("bl.reputable.test"), mail_params({}, OWN)) == []


def test_own_zone_rejection_of_a_trap_recipient_is_no_trap_hit() -> None:
    """A trap recipient rejected by our own zone does not renew the listing through the trap detector."""
    params = mail_params({"traps": {"addresses": ["b@ours.example"]}}, OWN)
    assert _run(_postfix_rejects("bl.reputable.test"), params) == []


def test_configured_own_zones_and_subzones_are_ours_too() -> None:
    """own_zones and names below an own zone are ours: never evidence even when '*' opts every other zone in."""
    params = mail_params(
        {"detectors": {"mail": {"rbl_reject": {"own_zones": ["bl.mirror.example"], "zones": {"*": 1}}}}},
        OWN,
    )  # fmt: skip
    assert _run(_postfix_rejects("bl.mirror.example"), params) == []
    assert _run(_postfix_rejects("BL.Reputable.Test."), params) == []
    assert _run(_postfix_rejects("ip4.bl.reputable.test"), params) == []


def test_other_zones_are_evidence_only_when_opted_in_with_their_weight() -> None:
    """Another list's rejections are no evidence by default, and spam with the zone's own weight when opted in."""
    text = _postfix_rejects("zen.spamhaus.org", n=3)
    assert _run(text, mail_params({}, OWN)) == []
    opted = mail_params(
        {"detectors": {"mail": {"rbl_reject": {"zones": {"zen.spamhaus.org": 0.7}}}}}, OWN
    )
    found = _run(text, opted)
    assert [(str(e.subject), e.cause.value, e.weight, e.detail["zone"]) for e in found] == [
        ("203.0.113.50", "spam", 0.7, "zen.spamhaus.org")
    ]
    assert _run(_postfix_rejects("b.barracudacentral.org", n=3), opted) == []


def test_exim_rejections_by_our_zone_make_no_evidence() -> None:
    """An Exim ACL reject naming our zone ('is listed at bl.reputable.test') is not evidence; another opted-in zone is."""
    lines = "".join(
        f"2026-03-19 10:00:{i:02d} H=(x.example) [203.0.113.51]:4000 F=<a@x.example> rejected"
        f" RCPT <b@ours.example>: 203.0.113.51 is listed at {{zone}}\n"
        for i in range(5)
    )
    params = mail_params({"detectors": {"mail": {"rbl_reject": {"zones": {"*": 0.4}}}}}, OWN)
    assert _run(lines.format(zone="bl.reputable.test"), params, exim) == []
    found = _run(lines.format(zone="dnsbl.example.net"), params, exim)
    assert [(e.weight, e.detail["zone"]) for e in found] == [(0.4, "dnsbl.example.net")]


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("Client host [192.0.2.1] blocked using zen.spamhaus.org; from=<a@b>", "zen.spamhaus.org"),
        ("Client host [192.0.2.1] blocked using bl.reputable.test, reason: x", "bl.reputable.test"),
        ("192.0.2.1 is listed at bl.spamcop.net (127.0.0.2)", "bl.spamcop.net"),
        ("host found in dnsbl.sorbs.net.", "dnsbl.sorbs.net"),
        ("postfix/postscreen[9]: DNSBL rank 3 for [192.0.2.1]:4000", "postscreen"),
        ("rejected RCPT <a@b>: unrouteable address", ""),
    ],
)
def test_rbl_zone_is_read_from_the_reject_text(text: str, zone: str) -> None:
    """The zone named by a reject is read from its own words."""
    assert rbl_zone(text) == zone


def test_an_own_zone_cannot_be_opted_in() -> None:
    """Naming one of our zones under zones is refused with the reason."""
    with pytest.raises(ConfigError, match="one of our own zones"):
        mail_params(
            {"detectors": {"mail": {"rbl_reject": {"zones": {"bl.reputable.test": 1}}}}}, OWN
        )
    with pytest.raises(ConfigError, match="weight must be a number"):
        mail_params({"detectors": {"mail": {"rbl_reject": {"zones": {"x.example": "lots"}}}}}, OWN)


def test_ingest_maillog_stores_nothing_for_rejections_by_the_configured_zone(
    tmp_path: Path,
) -> None:
    """End to end: `ingest maillog` over rejects by the config's own ip zone stores no evidence."""
    config = tmp_path / "reputable.toml"
    config.write_text('data_dir = "."\n[zones.ip]\nname = "bl.example.net"\n', encoding="utf-8")
    log = tmp_path / "mail.log"
    log.write_text(_postfix_rejects("bl.example.net"), encoding="utf-8")
    out = cli(config, "ingest", "maillog", str(log), "--now", "2026-03-20T00:00:00Z").stdout
    assert "rbl_reject 24" in out
    assert "evidence: 0" in out
    with sqlite3.connect(tmp_path / "reputable.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM evidence").fetchone()[0] == 0

"""postscreen verdicts and smtpd's rDNS warnings become evidence; our own blocks and DNS hiccups do not."""

from __future__ import annotations

from datetime import UTC, datetime

from reputable.evidence.detectors.mail import MailDetector
from reputable.evidence.detectors.mail_config import MailParams
from reputable.evidence.model import Evidence
from reputable.evidence.parsers import postfix
from reputable.evidence.parsers.mailevent import ALL_EVENTS
from reputable.evidence.parsers.syslog_time import TimeParser
from reputable.evidence.sources.maillog import DETECT_EVENTS

NOW = datetime(2026, 3, 20, tzinfo=UTC)


def _run(lines: list[str], wanted: frozenset = ALL_EVENTS) -> list[Evidence]:  # type: ignore[type-arg]
    detector = MailDetector(MailParams(), "maillog")
    text = "".join(line + "\n" for line in lines)
    events = postfix.scan(text, first_line=1, times=TimeParser(NOW), wanted=wanted)
    return detector.feed(events) + detector.flush()


def test_forward_confirmed_rdns_failure_is_rdns_evidence_once_a_day() -> None:
    """'does not resolve to address' gives one rdns evidence (0.4) per IP per day, whichever wording."""
    lines = [
        "Mar 19 10:00:00 mx postfix/smtpd[1]: warning: hostname a.example does not resolve to address 192.0.2.5: Name or service not known",
        "Mar 19 11:00:00 mx postfix/smtpd[1]: warning: 192.0.2.5: hostname a.example verification failed: Name or service not known",
        "Mar 19 12:00:00 mx postfix/smtpd[1]: warning: 192.0.2.6: address not listed for hostname b.example",
        "Mar 20 10:30:00 mx postfix/smtpd[1]: warning: hostname a.example does not resolve to address 192.0.2.5",
    ]  # fmt: skip
    found = _run(lines, DETECT_EVENTS)
    got = sorted((str(e.subject), e.cause.value, e.weight, e.observed_at.day) for e in found)
    assert got == [("192.0.2.5", "rdns", 0.4, 19), ("192.0.2.5", "rdns", 0.4, 20), ("192.0.2.6", "rdns", 0.4, 19)]  # fmt: skip


def test_a_temporary_dns_failure_is_no_rdns_evidence() -> None:
    """A lookup that failed for now (timeout, SERVFAIL) says nothing about the client's DNS."""
    lines = [
        "Mar 19 10:00:00 mx postfix/smtpd[1]: warning: hostname a.example does not resolve to address 192.0.2.7: Temporary failure in name resolution",
        "Mar 19 10:00:01 mx postfix/smtpd[1]: warning: 192.0.2.8: hostname b.example verification failed: Temporary failure in name resolution",
    ]  # fmt: skip
    assert _run(lines, DETECT_EVENTS) == []


def test_postscreen_protocol_violations_are_spam_evidence_and_blocks_are_not() -> None:
    """Three NON-SMTP/BARE NEWLINE/limit verdicts in an hour are spam (0.5); BLACKLISTED by our own list is nothing."""
    lines = [
        "Mar 19 10:00:00 mx postfix/postscreen[2]: NON-SMTP COMMAND from [192.0.2.9]:1 after CONNECT: GET / HTTP/1.1",
        "Mar 19 10:01:00 mx postfix/postscreen[2]: BARE NEWLINE from [192.0.2.9]:2 after DATA",
        "Mar 19 10:02:00 mx postfix/smtpd[3]: too many errors after RCPT from unknown[192.0.2.9]",
    ] + [f"Mar 19 10:0{i}:00 mx postfix/postscreen[2]: BLACKLISTED [192.0.2.10]:{i}" for i in range(9)]  # fmt: skip
    found = _run(lines, DETECT_EVENTS)
    assert [(str(e.subject), e.cause.value, e.weight, e.detail["detector"]) for e in found] == [
        ("192.0.2.9", "spam", 0.5, "protocol")
    ]

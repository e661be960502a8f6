"""Mail detectors: find every bad IP of a generated log, list no look-alike, and keep exact state."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from reputable.core.cause import Cause
from reputable.core.errors import ConfigError
from reputable.evidence.detectors.mail import MailDetector
from reputable.evidence.detectors.mail_config import MailParams, Traps, mail_params
from reputable.evidence.model import Evidence, scoring_target
from reputable.evidence.parsers import postfix
from reputable.evidence.parsers.mailevent import ALL_EVENTS
from reputable.evidence.parsers.syslog_time import TimeParser
from reputable.listings.policy import DEFAULT_RULES
from reputable.reputation.scoring import ReputationParams, accumulate
from tests.evidence.maillog_gen import generate

NOW = datetime(2026, 3, 20, tzinfo=UTC)
MX = "mx postfix/smtpd[1]:"


def _run(text: str, params: MailParams | None = None) -> list[Evidence]:
    detector = MailDetector(params or MailParams(), "maillog")
    events = postfix.scan(text, first_line=1, times=TimeParser(NOW), wanted=ALL_EVENTS)
    return detector.feed(events) + detector.flush()


def _listed(evidence: list[Evidence], at: float | None = None) -> set[str]:
    now = at if at is not None else max(e.observed_at.timestamp() for e in evidence)
    unique = {e.key: e for e in evidence}.values()  # the store keeps one per key
    rows = ((e.target, e.cause.value, e.observed_at.timestamp(), e.weight) for e in unique)
    scores = accumulate(rows, ReputationParams(), now)
    return {
        t
        for t, by in scores.items()
        for c, s in by.items()
        if c in DEFAULT_RULES and s.value >= DEFAULT_RULES[c].list_at
    }


def _ts(at: datetime) -> str:
    return f"{at:%b} {at.day:2d} {at:%H:%M:%S}"


def test_generated_log_finds_every_bad_ip_and_lists_no_look_alike() -> None:
    """Harvesters and brute-forcers all reach the listing threshold; list servers, CGNAT and typo users do not."""
    buf = io.StringIO()
    truth = generate(buf, 60_000, seed=7)
    evidence = _run(buf.getvalue())
    listed = _listed(evidence)
    bad = {scoring_target(ip_of(a), None) for a in truth.bad()}
    good = {
        scoring_target(ip_of(a), None)
        for a in truth.list_servers | truth.cgnat | truth.typo_users | truth.normal
    }
    assert bad <= listed, f"missed: {sorted(bad - listed)}"
    assert not listed & good, f"false positives: {sorted(listed & good)}"
    harvest_on_lists = [e for e in evidence if str(e.subject) in truth.list_servers]
    assert harvest_on_lists and all(
        e.cause is Cause.HARVEST and e.weight <= 0.4 for e in harvest_on_lists
    )


def ip_of(text: str):  # type: ignore[no-untyped-def]  # test helper
    """Return *text* as an address object."""
    from ipaddress import ip_address

    return ip_address(text)


def test_list_server_with_20_percent_unknown_loses_reputation_but_is_never_listed() -> None:
    """A week of daily mailings with 20% unknown recipients gives weak harvest evidence that stays under 2.5."""
    lines = []
    start = datetime(2026, 3, 10, 9, tzinfo=UTC)
    for day in range(7):
        for session in range(10):
            at = start + timedelta(days=day, minutes=session * 5)
            ip = "203.0.113.77"
            for i in range(10):
                lines.append(
                    f"{_ts(at)} {MX} NOQUEUE: reject: RCPT from lists.example[{ip}]: 550 5.1.1 <old{day}{session}{i}@example.org>: Recipient address rejected: User unknown in local recipient table; from=<b@lists.example> to=<old@example.org> proto=ESMTP helo=<lists.example>"
                )
            lines.append(
                f"{_ts(at)} {MX} disconnect from lists.example[{ip}] ehlo=1 mail=1 rcpt=40/50 data=1 quit=1 commands=44/54"
            )
    evidence = _run("\n".join(lines) + "\n")
    assert evidence and {e.cause for e in evidence} == {Cause.HARVEST}
    assert all(e.detail["detector"] == "dirty_list" and e.weight == 0.2 for e in evidence)
    assert len(evidence) == 7  # one per day
    assert _listed(evidence) == set()
    scores = accumulate(
        ((e.target, e.cause.value, e.observed_at.timestamp(), e.weight) for e in evidence),
        ReputationParams(),
        (start + timedelta(days=7)).timestamp(),
    )
    assert 0 < scores["203.0.113.77"][Cause.HARVEST].value < DEFAULT_RULES[Cause.HARVEST].list_at


def test_harvester_evidence_carries_counts_helo_sender_and_samples() -> None:
    """One harvesting session yields harvest evidence with its counts, HELO, sender domain and sample lines."""
    at = datetime(2026, 3, 10, 9, tzinfo=UTC)
    lines = [
        f"{_ts(at)} {MX} NOQUEUE: reject: RCPT from unknown[192.0.2.66]: 550 5.1.1 <u{i}@example.org>: Recipient address rejected: User unknown in local recipient table; from=<x@spam.example> to=<u{i}@example.org> proto=ESMTP helo=<spam.example>"
        for i in range(30)
    ]
    lines.append(
        f"{_ts(at)} {MX} disconnect from unknown[192.0.2.66] ehlo=1 mail=1 rcpt=0/30 quit=1 commands=3/33"
    )
    (item,) = _run("\n".join(lines) + "\n")
    assert item.cause is Cause.HARVEST and item.weight == 3.0 and item.related_domain is None
    assert item.detail["attempts"] == 30 and item.detail["unknown"] == 30
    assert item.detail["helo"] == "spam.example" and item.detail["sender_domain"] == "spam.example"
    assert len(item.detail["samples"]) == 3 and "u0@example.org" in item.detail["samples"][0]


def test_spam_traps_hit_on_rejected_and_on_accepted_mail() -> None:
    """A trap recipient counts whether the message was rejected or delivered (joined by queue ID)."""
    at = datetime(2026, 3, 10, 9, tzinfo=UTC)
    text = (
        f"{_ts(at)} {MX} NOQUEUE: reject: RCPT from unknown[192.0.2.70]: 550 5.1.1 <trap@example.org>: Recipient address rejected: User unknown; from=<a@b.example> to=<trap@example.org> proto=ESMTP helo=<b.example>\n"
        f"{_ts(at)} {MX} 4XAB12: client=unknown[192.0.2.71]\n"
        f"{_ts(at)} mx postfix/virtual[2]: 4XAB12: to=<anything@traps.example>, relay=virtual, delay=0.1, delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to maildir)\n"
    )
    params = MailParams(traps=Traps(frozenset({"trap@example.org"}), frozenset({"traps.example"})))
    found = {(str(e.subject), e.cause, e.detail["trap"]) for e in _run(text, params)}
    assert found == {
        ("192.0.2.70", Cause.SPAM, "trap@example.org"),
        ("192.0.2.71", Cause.SPAM, "anything@traps.example"),
    }


def test_pregreet_and_pipelining_thresholds_and_quiet_period() -> None:
    """One pregreet is evidence; pipelining needs three; repeats within the window add nothing."""
    at = datetime(2026, 3, 10, 9, tzinfo=UTC)
    lines = [
        f"{_ts(at + timedelta(minutes=i))} mx postfix/postscreen[3]: PREGREET 11 after 0.1 from [192.0.2.80]:4000: EHLO x\\r\\n"
        for i in range(5)
    ]
    lines += [
        f"{_ts(at + timedelta(minutes=i))} mx postfix/postscreen[3]: COMMAND PIPELINING from [192.0.2.81]:4000 after CONNECT: x"
        for i in range(2)
    ]
    evidence = _run("\n".join(lines) + "\n")
    assert [(str(e.subject), e.detail["detector"]) for e in evidence] == [
        ("192.0.2.80", "pregreet")
    ]


def test_brute_force_counts_failures_against_successful_logins() -> None:
    """Failures spread over user names weigh more; a shared address with many good logins is left alone."""
    at = datetime(2026, 3, 10, 9, tzinfo=UTC)
    users = ["admin", "info", "sales", "test", "office"]
    lines = [
        f"{_ts(at + timedelta(seconds=i))} mx postfix/submission/smtpd[4]: warning: unknown[198.51.100.90]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username={users[i % 5]}@example.org"
        for i in range(20)
    ]
    for i in range(12):  # CGNAT: 12 failures, 40 good logins in the same hour
        lines.append(
            f"{_ts(at + timedelta(seconds=i + 20))} mx postfix/submission/smtpd[5]: warning: unknown[100.64.0.9]: SASL LOGIN authentication failed: UGFzc3dvcmQ6"
        )
    for i in range(40):
        lines.append(
            f"{_ts(at + timedelta(seconds=i))} mx postfix/submission/smtpd[5]: 4XQ{i}: client=unknown[100.64.0.9], sasl_method=PLAIN, sasl_username=u{i}@example.org"
        )
    lines.sort()
    evidence = _run("\n".join(lines) + "\n")
    assert {str(e.subject) for e in evidence} == {"198.51.100.90"}
    assert [e.weight for e in evidence] == [2.0, 2.0]
    assert evidence[0].detail["spread"] is True and _listed(evidence) == {"198.51.100.90"}


def test_lost_connection_after_auth_storm_and_volume_spike() -> None:
    """Twenty lost-after-AUTH in ten minutes is compromise evidence; a tenfold hourly volume is a spike."""
    at = datetime(2026, 3, 10, 0, tzinfo=UTC)
    lines = [
        f"{_ts(at + timedelta(seconds=10 * i))} {MX} lost connection after AUTH from unknown[198.51.100.91]"
        for i in range(20)
    ]
    for hour in range(8):
        for i in range(5):
            lines.append(
                f"{_ts(at + timedelta(hours=hour, minutes=i))} {MX} 4Q{hour}x{i}: client=s.example[192.0.2.95]"
            )
    for i in range(250):
        lines.append(
            f"{_ts(at + timedelta(hours=9, seconds=i))} {MX} 4S{i}: client=s.example[192.0.2.95]"
        )
    lines.sort()
    found = sorted(
        (str(e.subject), e.cause.value, e.detail["detector"]) for e in _run("\n".join(lines) + "\n")
    )
    assert found == [
        ("192.0.2.95", "spam", "volume_spike"),
        ("198.51.100.91", "compromised", "lost_auth"),
    ]


def test_state_saved_mid_stream_gives_the_same_evidence_as_one_run() -> None:
    """Stopping after any chunk and restoring the JSON state reproduces a single run's evidence."""
    buf = io.StringIO()
    generate(buf, 20_000, seed=3)
    text = buf.getvalue()
    whole = {e.key for e in _run(text)}
    cut = text.rfind("\n", 0, len(text) // 2) + 1
    first = MailDetector(MailParams(), "maillog")
    times = TimeParser(NOW)
    keys = {
        e.key
        for e in first.feed(postfix.scan(text[:cut], first_line=1, times=times, wanted=ALL_EVENTS))
    }
    second = MailDetector(MailParams(), "maillog")
    second.restore(json.loads(json.dumps(first.state())))
    rest = (
        second.feed(postfix.scan(text[cut:], first_line=1, times=times, wanted=ALL_EVENTS))
        + second.flush()
    )
    assert keys | {e.key for e in rest} == whole and whole


def test_config_sections_have_defaults_and_clear_errors() -> None:
    """Absent sections give the documented defaults; unknown keys and bad values name the key."""
    assert mail_params({}) == MailParams()
    custom = mail_params(
        {
            "detectors": {"mail": {"brute_force": {"min_failures": 5, "window": "30m"}}},
            "traps": {"domains": ["Traps.Example."]},
        }
    )
    assert custom.brute_force.min_failures == 5 and custom.brute_force.window == timedelta(
        minutes=30
    )
    assert custom.traps.hit("x@traps.example")
    with pytest.raises(ConfigError, match="unknown key 'min_failure'"):
        mail_params({"detectors": {"mail": {"brute_force": {"min_failure": 5}}}})
    with pytest.raises(ConfigError, match="window"):
        mail_params({"detectors": {"mail": {"harvest": {"window": "soon"}}}})
    with pytest.raises(ConfigError, match="not a mail address"):
        mail_params({"traps": {"addresses": ["nobody"]}})


def test_trap_hit_on_accepted_mail_carries_sender_domain_and_helo() -> None:
    """A delivered trap hit names the message's sender domain (qmgr from=<>) and the client's HELO."""
    from reputable.evidence.sources.maillog import MailRun

    text = (
        "Jan  5 10:00:02 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from bad.example[203.0.113.102]: 554 5.7.1 <x@elsewhere.example>: Relay access denied; from=<s@spamdom.example> to=<x@elsewhere.example> proto=ESMTP helo=<bad-helo.example>\n"
        "Jan  5 10:00:03 mx postfix/smtpd[1]: 4AAA1: client=bad.example[203.0.113.102]\n"
        "Jan  5 10:00:04 mx postfix/qmgr[2]: 4AAA1: from=<s2@spamdom2.example>, size=10, nrcpt=1 (queue active)\n"
        "Jan  5 10:00:05 mx postfix/local[3]: 4AAA1: to=<a@traps.example>, relay=local, delay=0.1, delays=0.01/0/0/0.09, dsn=2.0.0, status=sent (delivered to mailbox)\n"
        "Jan  5 10:00:06 mx postfix/smtpd[1]: 4AAA2: client=bad2.example[203.0.113.103]\n"
        "Jan  5 10:00:07 mx postfix/qmgr[2]: 4AAA2: from=<s3@spamdom3.example>, size=10, nrcpt=1 (queue active)\n"
        "Jan  5 10:00:08 mx postfix/local[3]: 4AAA2: to=<b@traps.example>, relay=local, delay=0.1, delays=0.01/0/0/0.09, dsn=2.0.0, status=sent (delivered to mailbox)\n"
    )
    params = MailParams(traps=Traps(frozenset(), frozenset({"traps.example"})))
    run = MailRun(params, TimeParser(datetime(2026, 1, 10, tzinfo=UTC)))
    found = {
        str(e.subject): (e.detail.get("sender_domain"), e.detail.get("helo"))
        for e in run.detect(text, "mail.log", 1, "postfix") + run.finish()
    }
    assert found == {
        "203.0.113.102": ("spamdom2.example", "bad-helo.example"),
        "203.0.113.103": ("spamdom3.example", None),
    }

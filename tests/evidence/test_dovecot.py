"""Dovecot login failures become brute-force evidence; `ingest netlog` finds the format by itself."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from reputable.evidence.detectors.netconfig import NetSettings
from reputable.evidence.model import Evidence
from reputable.evidence.sources.netlog import ingest_netlog, sniff

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
SAMPLES = Path(__file__).parents[1] / "samples"


def _failures(ip: str, n: int, attempts: int, start_minute: int = 0) -> list[str]:
    return [
        f"Nov 29 08:{start_minute + i:02d}:00 mx dovecot: imap-login: Disconnected (auth failed,"
        f" {attempts} attempts in 9 secs): user=<u{i}>, method=PLAIN, rip={ip}, lip=192.0.2.10,"
        f" session=<s{i}>"
        for i in range(n)
    ]


def _ingest(tmp_path: Path, lines: list[str], fmt: str = "dovecot") -> list[Evidence]:
    log = tmp_path / "mail.log"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    found: list[Evidence] = []

    def sink(items: list[Evidence]) -> int:
        found.extend(items)
        return len(items)

    ingest_netlog(log, fmt, NetSettings(), now=NOW, sink=sink)
    return found


def test_login_failures_count_their_attempts_into_brute_force(tmp_path: Path) -> None:
    """Seven lines of 3 failed attempts each (21 guesses in 7 minutes) list the client; a user's typos do not."""
    found = _ingest(tmp_path, _failures("203.0.113.40", 7, 3) + _failures("192.0.2.77", 2, 1, 30))
    assert {str(e.subject) for e in found} == {"203.0.113.40"}
    assert {e.detail["scenario"] for e in found} <= {
        "mail_login_bruteforce",
        "mail_login_slow_bruteforce",
    }
    assert (
        sum(
            e.detail["events"]
            for e in found
            if e.detail["scenario"] == "mail_login_slow_bruteforce"
        )
        >= 1
    )


def test_a_burst_of_attempts_is_the_fast_scenario(tmp_path: Path) -> None:
    """Eleven attempts within a minute fill the fast bucket."""
    lines = [
        f"Nov 29 09:00:{i:02d} mx dovecot: pop3-login: Aborted login (auth failed, 1 attempts in 1 secs):"
        f" user=<admin>, method=PLAIN, rip=203.0.113.41, lip=192.0.2.10, session=<t{i}>"
        for i in range(11)
    ]
    assert {e.detail["scenario"] for e in _ingest(tmp_path, lines)} == {"mail_login_bruteforce"}


def test_auto_detects_each_format_from_its_first_lines() -> None:
    """sshd, dovecot, nginx, netfilter and flows samples are each recognised as themselves."""
    for fmt in ("sshd", "dovecot", "nginx", "netfilter", "flows"):
        assert sniff((SAMPLES / f"{fmt}.log").read_bytes(), NOW) == fmt, fmt
    assert sniff(b"nothing of any known format\n", NOW) == ""


def test_cli_auto_format_reads_stdin_once_and_refuses_unknown_logs(tmp_path: Path) -> None:
    """`ingest netlog -` without --format names the format it found; a log of no known format is refused."""
    config = tmp_path / "reputable.toml"
    config.write_text('data_dir = "."\n', encoding="utf-8")
    base = [sys.executable, "-m", "reputable", "--config", str(config), "ingest", "netlog"]
    data = (SAMPLES / "dovecot.log").read_bytes()
    out = subprocess.run(
        [*base, "-", "--dry-run", "--now", "2026-11-29T12:00:00Z"],
        input=data, capture_output=True, timeout=60, check=True,
    ).stdout.decode()  # fmt: skip
    assert out.startswith("stdin (dovecot): 52 lines")
    bad = subprocess.run(
        [*base, "-"], input=b"hello\nworld\n", capture_output=True, timeout=60, check=False
    )
    assert bad.returncode != 0
    assert "give --format" in (bad.stderr + bad.stdout).decode()
    assert b"Traceback" not in bad.stderr


def test_the_journal_fast_path_counts_exactly_as_parse_and_observe() -> None:
    """``dovecot.understood`` + ``observe_fields`` (the journal's path) = ``parse`` + ``observe``.

    Every sample line in the canonical envelope, with a CR and repeated so buckets fill, under
    the default scenarios and under ones with distinct fields and amounts, those given by the
    line (user, method, attempts, service) and NetEvent's defaults (path, status).
    """
    from reputable.evidence.detectors.net import NetDetector
    from reputable.evidence.detectors.netconfig import DEFAULT_SCENARIOS, Scenario
    from reputable.evidence.parsers import dovecot
    from reputable.evidence.parsers.envelope import normalize
    from reputable.evidence.parsers.netbase import NetEvent
    from reputable.evidence.parsers.syslog_time import TimeParser

    lines = [
        normalize(line)
        for name in ("dovecot.log", "accuracy/dovecot.log")
        for line in (SAMPLES / name).read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    lines = [line + ("\r" if i % 5 == 0 else "") for i in range(8) for line in lines]
    tags = frozenset({"login_failed", "login_aborted", "auth_unknown_user", "auth_mismatch", "login", "userip_limit"})  # fmt: skip

    def scenario(
        name: str, on: frozenset[str], capacity: float, distinct: str = "", amount: str = ""
    ) -> Scenario:
        return Scenario(name=name, tags=on, capacity=capacity, leakspeed=60.0, distinct=distinct, amount=amount)  # fmt: skip

    custom = (
        scenario("by_user", tags, 3, distinct="user"),
        scenario("by_attempts", tags, 4, amount="attempts"),
        scenario("by_service", frozenset({"login_failed"}), 2, distinct="service"),
        scenario("by_path", tags, 2, distinct="path", amount="status"),
        scenario("by_method", frozenset({"auth_mismatch", "login_failed"}), 2, distinct="method"),
    )
    for scenarios in (DEFAULT_SCENARIOS, custom):
        settings = NetSettings(scenarios=scenarios)
        slow, fast = NetDetector(settings, source="s"), NetDetector(settings, source="s")
        for item in dovecot.parse(lines, now=NOW, envelope=False):
            if isinstance(item, NetEvent):
                slow.observe(item)
        understood = list(dovecot.understood(lines, TimeParser(NOW)))
        for index, ts, event, ip, fields, text in understood:
            fast.observe_fields(event, ts, ip, index + 1, text, fields)
        assert len(understood) > 40 and slow.events == fast.events and slow.ips == fast.ips
        assert slow.state() == fast.state()
        found = fast.take()
        assert found and slow.take() == found

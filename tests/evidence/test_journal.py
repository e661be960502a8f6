"""`ingest journal`: entries of a real journal file routed to the parsers, resumed exactly by cursor."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reputable.core.errors import ConfigError
from reputable.evidence.detectors.mail_config import MailParams
from reputable.evidence.detectors.netconfig import NetSettings
from reputable.evidence.sources.journal import (
    JournalRun,
    JournalSettings,
    command,
    export_entries,
    ingest_journal,
    journal_settings,
    route,
)
from reputable.testing import cli
from tests.evidence.journal_gen import entry, need_journal_tools, write_journal

T0 = int(datetime(2026, 12, 1, 8, 0, tzinfo=UTC).timestamp())
NOW = "2026-12-02T00:00:00Z"


def _mixed() -> list[dict[str, str]]:
    """A server's morning: an sshd brute-forcer, a harvester via Postfix, Dovecot guesses, noise."""
    out = []
    for i in range(30):
        out.append(entry(T0 + i, "sshd", f"Failed password for root from 203.0.113.5 port {4000 + i} ssh2", pid=500 + i, unit="ssh.service"))  # fmt: skip
        out.append(entry(T0 + i, "postfix/smtpd", f"NOQUEUE: reject: RCPT from unknown[198.51.100.7]: 550 5.1.1 <u{i}@example.org>: Recipient address rejected: User unknown in local recipient table; from=<a@b.example> to=<u{i}@example.org> proto=ESMTP helo=<b.example>", pid=900, unit="postfix@-.service"))  # fmt: skip
        out.append(entry(T0 + i, "dovecot", f"imap-login: Disconnected (auth failed, 2 attempts in 4 secs): user=<u{i}>, method=PLAIN, rip=203.0.113.9, lip=192.0.2.10, session=<s{i}>", unit="dovecot.service"))  # fmt: skip
        out.append(entry(T0 + i, "CRON", "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"))  # fmt: skip
    out.append(entry(T0 + 40, "exim", "H=(x.example) [192.0.2.99]:4000 F=<a@x.example> rejected RCPT <b@example.org>: relay not permitted"))  # fmt: skip
    return out


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "reputable.toml"
    path.write_text('data_dir = "."\n' + extra, encoding="utf-8")
    return path


def _evidence(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return sorted(conn.execute("SELECT subject, key FROM evidence").fetchall())


def test_route_by_identifier_then_unit() -> None:
    """SYSLOG_IDENTIFIER decides, else _SYSTEMD_UNIT; other programs go nowhere."""
    assert route("sshd-session", "") == "sshd"
    assert route("", "ssh.service") == "sshd"
    assert route("postfix/postscreen", "postfix@-.service") == "postfix"
    assert route("imap-login", "") == "dovecot"
    assert route("exim4", "") == "exim"
    assert route("kernel", "", "[UFW BLOCK] IN=eth0 OUT= SRC=192.0.2.1") == "netfilter"
    assert route("CRON", "cron.service") == ""


def test_command_resumes_after_the_cursor_and_follows_from_there() -> None:
    """The journalctl command asks for the export format with only the fields used, the units, after the cursor."""
    argv = command(JournalSettings(units=("ssh.service",), files=(Path("/j/a.journal"),)), "s=1;i=2", follow=True)  # fmt: skip
    assert argv[:2] == ["journalctl", "--output=export"]
    assert "--unit=ssh.service" in argv and "--file=/j/a.journal" in argv
    assert "--after-cursor=s=1;i=2" in argv and "--follow" in argv and "--no-tail" in argv


def test_a_journal_file_gives_evidence_for_each_daemon(tmp_path: Path) -> None:
    """sshd, Postfix, Dovecot and Exim entries of a systemd-journal-remote file reach their parsers."""
    need_journal_tools()
    journal = tmp_path / "test.journal"
    write_journal(journal, _mixed())
    out = cli(_config(tmp_path), "ingest", "journal", "--file", str(journal), "--now", NOW).stdout
    assert "121 journal entries read" in out
    assert "sshd 30" in out and "postfix 30" in out and "dovecot 30" in out and "exim 1" in out
    assert "30 from other programs" in out
    subjects = {s for s, _ in _evidence(tmp_path / "reputable.db")}
    assert {"203.0.113.5", "198.51.100.7", "203.0.113.9"} <= subjects
    assert "192.0.2.99" not in subjects  # one relay attempt is no evidence


def test_a_second_run_reads_only_the_new_entries(tmp_path: Path) -> None:
    """After more entries are appended, the next run starts after the saved cursor."""
    need_journal_tools()
    journal = tmp_path / "test.journal"
    write_journal(journal, _mixed())
    config = _config(tmp_path)
    cli(config, "ingest", "journal", "--file", str(journal), "--now", NOW)
    write_journal(journal, [entry(T0 + 100 + i, "sshd", f"Invalid user a{i} from 192.0.2.33 port 1") for i in range(7)])  # fmt: skip
    again = cli(config, "ingest", "journal", "--file", str(journal), "--now", NOW).stdout
    assert again.startswith("7 journal entries read")
    assert cli(config, "ingest", "journal", "--file", str(journal), "--now", NOW).stdout.startswith("0 journal")  # fmt: skip


def test_unit_filter_reads_only_that_unit(tmp_path: Path) -> None:
    """--unit ssh.service reads the sshd entries only."""
    need_journal_tools()
    journal = tmp_path / "test.journal"
    write_journal(journal, _mixed())
    out = cli(_config(tmp_path), "ingest", "journal", "--unit", "ssh.service", "--file", str(journal), "--dry-run", "--now", NOW).stdout  # fmt: skip
    assert out.startswith("30 journal entries read") and "sshd 30" in out


def test_kill_9_then_resume_gives_exactly_the_evidence_of_one_clean_run(tmp_path: Path) -> None:
    """A run killed with SIGKILL after some commits, then resumed, stores what one clean run stores and re-reads nothing."""
    need_journal_tools()
    journal = tmp_path / "big.journal"
    entries = []
    for i in range(40_000):
        ip = f"203.0.113.{i % 50}"
        entries.append(entry(T0 + i // 10, "sshd", f"Failed password for root from {ip} port {i % 60000} ssh2", pid=1000 + i % 30000))  # fmt: skip
    write_journal(journal, entries)
    clean_dir = tmp_path / "clean"
    clean_dir.mkdir()
    cli(_config(clean_dir), "ingest", "journal", "--file", str(journal), "--now", NOW, "--batch", "500", timeout=300)  # fmt: skip
    # The kill lands at a random moment after the first commit; a loaded machine may not run
    # this poller before the run has ended, and then the run was not killed part-way: that
    # start proves nothing and goes again, in a fresh folder.
    for attempt in range(5):
        crash_dir = tmp_path / f"crash{attempt}"
        crash_dir.mkdir()
        config = _config(crash_dir)
        argv = [sys.executable, "-m", "reputable", "--config", str(config), "ingest", "journal"]
        argv += ["--file", str(journal), "--now", NOW, "--batch", "500"]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        db = crash_dir / "reputable.db"
        killed_at = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with sqlite3.connect(db, timeout=1) as conn:
                    row = conn.execute("SELECT offset FROM source_positions").fetchone()
            except sqlite3.Error:
                row = None
            if row and row[0] > 0:
                os.kill(proc.pid, signal.SIGKILL)
                killed_at = row[0]
                break
            time.sleep(0.005)
        proc.wait(30)
        if proc.returncode == -signal.SIGKILL and 0 < killed_at < 40_000:
            break
    else:
        pytest.fail("5 runs ended before this poller could kill one part-way")
    with sqlite3.connect(db) as conn:
        saved = conn.execute("SELECT offset FROM source_positions").fetchone()[0]
    resumed = cli(config, "ingest", "journal", "--file", str(journal), "--now", NOW, "--batch", "500", timeout=300).stdout  # fmt: skip
    assert resumed.startswith(f"{40_000 - saved} journal entries read")
    assert _evidence(db) == _evidence(clean_dir / "reputable.db")


def test_follow_reads_what_exists_and_stops_when_asked(tmp_path: Path, store_dsn: str) -> None:
    """Following commits the entries journalctl gives, then stops on request without losing them."""
    need_journal_tools()
    from reputable.store.dsn import open_dsn

    journal = tmp_path / "test.journal"
    write_journal(journal, _mixed())
    store = open_dsn(store_dsn)
    run = JournalRun(MailParams(), NetSettings(), datetime(2026, 12, 2, tzinfo=UTC))
    try:
        ingest_journal(run, JournalSettings(files=(journal,)), store, follow=True, idle=0.2, should_stop=lambda: run.entries >= 121)  # fmt: skip
        position = store.source_position("journal:*")
    finally:
        store.close()
    assert run.entries == 121
    assert position is not None and position.offset == 121 and "cursor" in (position.state or "")


def test_sources_journal_config_is_checked() -> None:
    """[sources.journal] takes units, files, directory, source; anything else is named."""
    settings = journal_settings({"sources": {"journal": {"units": ["ssh.service"]}}}, Path("/etc"))
    assert settings is not None and settings.units == ("ssh.service",)
    assert journal_settings({}, Path("/etc")) is None
    with pytest.raises(ConfigError, match="unknown key"):
        journal_settings({"sources": {"journal": {"unit": "ssh"}}}, Path("/etc"))


@pytest.mark.serial  # a wall-clock limit (the stop): no other worker's test runs meanwhile
def test_serve_follows_sources_journal_and_stops_cleanly(tmp_path: Path) -> None:
    """`serve` with [sources.journal] stores the journal's evidence with its cursor and exits on SIGTERM."""
    need_journal_tools()
    from reputable.testing import RunningServer, free_port, write_config

    journal = tmp_path / "test.journal"
    now = int(time.time())
    write_journal(journal, [entry(now - 60 + i, "sshd", f"Failed password for root from 203.0.113.77 port {i} ssh2", pid=i) for i in range(30)])  # fmt: skip
    config = write_config(tmp_path, dns_port=free_port(), extra='[sources.journal]\nfiles = ["test.journal"]\n')  # fmt: skip
    db = tmp_path / "reputable.db"
    with RunningServer(config) as running:
        deadline = time.monotonic() + 30
        offset = 0
        while offset < 30:
            assert time.monotonic() < deadline, running.log()[-3000:]
            time.sleep(0.2)
            try:
                with sqlite3.connect(db, timeout=1) as conn:
                    row = conn.execute("SELECT offset FROM source_positions WHERE name = 'journal:*'").fetchone()  # fmt: skip
            except sqlite3.Error:
                row = None
            offset = row[0] if row else 0
        started = time.monotonic()
        assert running.proc is not None
        running.proc.terminate()
        running.proc.wait(10)
        assert time.monotonic() - started < 5
        log = running.log()
    assert "Traceback" not in log and "journal_following" in log
    assert any(s == "203.0.113.77" for s, _ in _evidence(db))


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(0, 400), max_size=8))
def test_export_format_is_read_the_same_however_it_arrives(cuts: list[int]) -> None:
    """Entries with text and binary fields (newlines, any bytes) come out whole at any read boundaries."""
    data = (
        b"__CURSOR=s=1;i=1\nMESSAGE=Failed password for root from 192.0.2.1 port 22 ssh2\n\n"
        b"__CURSOR=s=1;i=2\nMESSAGE\n" + (10).to_bytes(8, "little") + b"two\nlines\xff\nA=b=c\n\n"
        b"__CURSOR=s=1;i=3\nMESSAGE=\n\n"
    )
    points = sorted({min(c, len(data)) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    got = [e for e in export_entries(pieces) if e is not None]
    assert got == [
        {
            b"__CURSOR": b"s=1;i=1",
            b"MESSAGE": b"Failed password for root from 192.0.2.1 port 22 ssh2",
        },
        {b"__CURSOR": b"s=1;i=2", b"MESSAGE": b"two\nlines\xff", b"A": b"b=c"},
        {b"__CURSOR": b"s=1;i=3", b"MESSAGE": b""},
    ]


def test_a_multi_line_message_in_a_real_journal_is_one_entry(tmp_path: Path) -> None:
    """A MESSAGE with a newline (stored as a binary field) is read as one entry of its unit."""
    need_journal_tools()
    journal = tmp_path / "test.journal"
    write_journal(journal, [entry(T0, "sshd", "Invalid user a\nb from 192.0.2.40 port 1", unit="ssh.service")])  # fmt: skip
    out = cli(_config(tmp_path), "ingest", "journal", "--file", str(journal), "--dry-run", "--now", NOW).stdout  # fmt: skip
    assert out.startswith("1 journal entries read") and "sshd 1" in out


def test_unreadable_timestamps_are_counted_even_beside_a_cached_second() -> None:
    """The per-second stamp cache never lets a malformed ``__REALTIME_TIMESTAMP`` through."""
    run = JournalRun(MailParams(), NetSettings(), datetime(2026, 12, 2, tzinfo=UTC))
    base = {b"SYSLOG_IDENTIFIER": b"sshd", b"_PID": b"7", b"_HOSTNAME": b"h"}
    message = b"Failed password for root from 192.0.2.1 port 22 ssh2"
    second = str(T0).encode()
    run.add_entries(
        [
            {**base, b"__REALTIME_TIMESTAMP": second + b"000001", b"MESSAGE": message},
            {**base, b"__REALTIME_TIMESTAMP": second + b"0000x2", b"MESSAGE": message},
            {**base, b"__REALTIME_TIMESTAMP": b"soon", b"MESSAGE": message},
            {**base, b"__REALTIME_TIMESTAMP": second + b"999999", b"MESSAGE": message},
        ]
    )
    assert (run.entries, run.bad, run.routed["sshd"]) == (4, 2, 4)
    lines, numbers = run._pending["sshd"]
    stamp = datetime.fromtimestamp(T0, UTC).strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    assert lines == [stamp + b" h sshd[7]: " + message] * 2 and numbers == [1, 4]


def test_chunks_of_entries_are_the_entries_one_by_one() -> None:
    """A chunk's entries added at once give the lines, numbers and cursor of adding them singly."""
    chunk = [
        {b"__CURSOR": f"s=1;i={i}".encode(), b"__REALTIME_TIMESTAMP": str((T0 + i // 3) * 1_000_000).encode(),
         b"SYSLOG_IDENTIFIER": ident, b"_PID": b"%d" % i, b"_HOSTNAME": b"h", b"MESSAGE": b"m%d\nx" % i}
        for i, ident in enumerate([b"sshd", b"CRON", b"postfix/smtpd", b"exim", b"dovecot", b"sshd"] * 3)
    ]  # fmt: skip
    at_once = JournalRun(MailParams(), NetSettings(), datetime(2026, 12, 2, tzinfo=UTC))
    one_by_one = JournalRun(MailParams(), NetSettings(), datetime(2026, 12, 2, tzinfo=UTC))
    at_once.add_entries(chunk)
    for item in chunk:
        one_by_one.add(item)
    assert at_once._pending == one_by_one._pending and at_once._pending["sshd"][1] == [1, 6, 7, 12, 13, 18]  # fmt: skip
    assert (at_once.entries, at_once.unrouted, at_once.routed) == (18, 3, one_by_one.routed)
    assert at_once.state() == one_by_one.state() and at_once.cursor == "s=1;i=17"

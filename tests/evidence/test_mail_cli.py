"""The mail commands end to end: dry-run JSON lines, ingest with summary, ARF import, outbound report."""

from __future__ import annotations

import gzip
import io
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from reputable.testing import cli
from tests.evidence.maillog_gen import generate

SAMPLES = Path(__file__).parent.parent / "samples"


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "reputable.toml"
    path.write_text(
        'data_dir = "."\n[traps]\naddresses = ["trap@ours.example"]\n', encoding="utf-8"
    )
    return path


def _evidence(tmp_path: Path) -> int:
    db = tmp_path / "reputable.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM evidence").fetchone()[0])


def test_dry_run_jsonl_prints_each_understood_line_and_stores_nothing(tmp_path: Path) -> None:
    """--dry-run --jsonl gives line, ip and event per understood line with the file's own line numbers."""
    config = _config(tmp_path)
    out = cli(
        config,
        "ingest",
        "maillog",
        str(SAMPLES / "postfix.log"),
        "--dry-run",
        "--jsonl",
        "--now",
        "2026-01-03T12:00:00Z",
    ).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    lines = (SAMPLES / "postfix.log").read_text(encoding="utf-8").splitlines()
    assert len(rows) >= 25
    for row in rows:
        assert {"line", "ip", "event"} <= set(row)
        assert lines[row["line"] - 1].startswith(("Dec", "Jan", "2026", "<22>")), row
    assert {
        "unknown_recipient",
        "auth_failure",
        "pregreet",
        "delivered",
        "bounced",
        "deferred",
        "connect",
    } <= {r["event"] for r in rows}
    assert _evidence(tmp_path) == 0


def test_ingest_gz_and_plain_with_summary_then_again_adds_nothing(tmp_path: Path) -> None:
    """A rotated .gz plus the current log are ingested with a summary; a second run stores nothing new."""
    text = io.StringIO()
    truth = generate(text, 20_000, seed=11)
    lines = text.getvalue().splitlines(keepends=True)
    with gzip.open(tmp_path / "mail.log.1.gz", "wt", encoding="utf-8") as f:
        f.writelines(lines[:10_000])
    (tmp_path / "mail.log").write_text("garbage line\n" + "".join(lines[10_000:]), encoding="utf-8")
    config = _config(tmp_path)
    args = (
        "ingest",
        "maillog",
        str(tmp_path / "mail.log"),
        str(tmp_path / "mail.log.1.gz"),
        "--now",
        "2026-03-20T00:00:00Z",
    )
    first = cli(config, *args).stdout
    assert (
        f"{len(lines) + 1} lines read" in first
        and "1 not understood" in first
        and "garbage line" in first
    )
    assert "harvest" in first and "compromised" in first and "top IPs" in first
    stored = _evidence(tmp_path)
    assert stored > 0
    assert any(ip in first for ip in truth.harvest | truth.compromised)
    second = cli(config, *args).stdout
    assert "(0 new stored)" in second and _evidence(tmp_path) == stored


def test_ingest_arf_reports_malformed_and_stores_complaints(tmp_path: Path) -> None:
    """ingest arf stores one evidence per distinct complaint and names the malformed reports."""
    config = _config(tmp_path)
    out = cli(config, "ingest", "arf", str(SAMPLES / "arf")).stdout
    assert "7 reports read: 2 evidence (2 new stored), 1 duplicates, 3 malformed" in out
    assert "malformed-plain.eml: not a report" in out and _evidence(tmp_path) == 2


def test_report_outbound_gives_rates_per_destination_domain(tmp_path: Path) -> None:
    """report outbound counts delivered, bounced (5.1.1) and deferred per sender and domain."""
    config = _config(tmp_path)
    out = cli(
        config,
        "report",
        "outbound",
        str(SAMPLES / "postfix.log"),
        "--json",
        "--now",
        "2026-01-03T12:00:00Z",
    ).stdout
    (sender,) = json.loads(out)["senders"]
    assert sender["sender"] == "mx postfix/smtp"
    # one delivery is logged the pre-2.3 way (no delays=, no dsn=)
    assert (sender["delivered"], sender["bounced"], sender["unknown"], sender["deferred"]) == (
        2,
        1,
        1,
        1,
    )
    assert {d["domain"]: d["unknown"] for d in sender["domains"]} == {
        "remote2.example": 1,
        "remote.example": 0,
        "down.example": 0,
    }
    assert any("unknown-recipient rate" in w for w in sender["warnings"])
    human = cli(
        config, "report", "outbound", str(SAMPLES / "exim.log"), "--now", "2026-03-05T00:00:00Z"
    ).stdout
    assert "2 delivered, 1 bounced" in human and "remote2.example" in human


DOVECOT = "Jan  1 00:00:{s:02d} mx dovecot: imap-login: Login: user=<u{i}@example.org>, method=PLAIN, rip=192.0.2.{r}\n"
SASL = (
    "Jan  2 10:00:{s:02d} mx postfix/submission/smtpd[1]: warning: unknown[198.51.100.9]:"
    " SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=u{i}\n"
)


def _dovecot(n: int) -> str:
    return "".join(DOVECOT.format(s=i % 60, i=i, r=i % 250 + 1) for i in range(n))


def _sasl(start: int, n: int) -> str:
    return "".join(SASL.format(s=i, i=i) for i in range(start, start + n))


def test_format_is_found_after_many_foreign_lines_and_foreign_files_do_not_stop_the_batch(
    tmp_path: Path,
) -> None:
    """250 dovecot lines before the Postfix ones, and a dovecot-only file in the batch, are counted, not fatal."""
    config = _config(tmp_path)
    late = tmp_path / "late.log"
    late.write_text(_dovecot(250) + _sasl(0, 11), encoding="utf-8")
    foreign = tmp_path / "dovecot.log"
    foreign.write_text(_dovecot(30), encoding="utf-8")
    args = ("ingest", "maillog", str(late), str(foreign), "--now", "2026-01-03T00:00:00Z")
    out = cli(config, *args).stdout
    assert "291 lines read" in out and "11 understood" in out and "280 not understood" in out
    assert f"no Postfix or Exim line in {foreign} (30 lines)" in out
    assert "compromised 1" in out and _evidence(tmp_path) == 1
    only = cli(config, "ingest", "maillog", str(foreign), check=False)
    assert only.returncode == 1 and "no Postfix or Exim line in any file" in only.stdout


def test_dry_run_summary_counts_the_lines_jsonl_prints(tmp_path: Path) -> None:
    """--dry-run's understood equals the JSON objects of --dry-run --jsonl; the rest is split honestly."""
    config = _config(tmp_path)
    log = tmp_path / "mail.log"
    log.write_text(
        (SAMPLES / "postfix.log").read_text(encoding="utf-8") + _dovecot(3), encoding="utf-8"
    )
    now = ("--now", "2026-01-03T12:00:00Z")
    rows = cli(config, "ingest", "maillog", str(log), "--dry-run", "--jsonl", *now).stdout
    printed = len(rows.splitlines())
    summary = cli(config, "ingest", "maillog", str(log), "--dry-run", *now).stdout
    read = len(log.read_text(encoding="utf-8").splitlines())
    comments = sum(
        1 for line in log.read_text(encoding="utf-8").splitlines() if line.startswith("#")
    )
    assert f"{read} lines read" in summary and f"{printed} understood" in summary
    assert f"{comments + 3 + 1} not understood" in summary  # comments, dovecot, the sample's own
    assert f"{read - printed - comments - 4} recognised without an event" in summary


def _position_lines(db: Path) -> int:
    """Lines the follower committed (0 before its first commit)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as conn:
            row = conn.execute("SELECT MAX(lines) FROM source_positions").fetchone()
    except sqlite3.OperationalError:  # not migrated yet, or busy
        return 0
    return int(row[0] or 0)


def _follow_until(config: Path, log: Path, lines: int) -> subprocess.Popen[str]:
    """Start `ingest maillog --follow` and return it once *lines* lines are committed."""
    output = config.parent / "follow.out"
    with output.open("a") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reputable", "--config", str(config), "ingest", "maillog",
             "--follow", str(log), "--now", "2026-01-03T00:00:00Z"],
            stdout=out, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    deadline = time.monotonic() + 120  # the CLI's start and first commit, on a loaded machine
    while _position_lines(config.parent / "reputable.db") < lines:
        assert proc.poll() is None, output.read_text()
        assert time.monotonic() < deadline, "the follower did not commit in time"
        time.sleep(0.1)
    return proc


def test_follow_killed_mid_episode_resumes_its_windows(tmp_path: Path) -> None:
    """SIGKILL after 6 of 11 SASL failures, 5 more, follow again: the brute force is found, once."""
    config = _config(tmp_path)
    log = tmp_path / "mail.log"
    log.write_text(_dovecot(5) + _sasl(0, 6), encoding="utf-8")
    first = _follow_until(config, log, 11)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert _evidence(tmp_path) == 0  # 6 failures: below the threshold of 10
    with log.open("a", encoding="utf-8") as f:
        f.write(_sasl(6, 5))
    second = _follow_until(config, log, 16)
    try:
        deadline = time.monotonic() + 60  # a poll's read and detection, on a loaded machine
        while _evidence(tmp_path) < 1:
            assert time.monotonic() < deadline, "no evidence after the restart"
            time.sleep(0.1)
        time.sleep(1.5)  # another poll or two: nothing is read again
    finally:
        second.send_signal(signal.SIGKILL)
        second.wait(10)
    assert _position_lines(tmp_path / "reputable.db") == 16
    with sqlite3.connect(tmp_path / "reputable.db") as conn:
        rows = conn.execute("SELECT subject, cause, detail FROM evidence").fetchall()
    assert [(r[0], r[1]) for r in rows] == [("198.51.100.9", "compromised")]
    assert json.loads(rows[0][2])["failures"] == 10
    batch = tmp_path / "batch"
    batch.mkdir()
    cli(_config(batch), "ingest", "maillog", str(log), "--now", "2026-01-03T00:00:00Z")
    with sqlite3.connect(batch / "reputable.db") as conn:
        want = conn.execute("SELECT key FROM evidence").fetchall()
    with sqlite3.connect(tmp_path / "reputable.db") as conn:
        assert conn.execute("SELECT key FROM evidence").fetchall() == want

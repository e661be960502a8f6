"""The mail commands end to end: dry-run JSON lines, ingest with summary, ARF import, outbound report."""

from __future__ import annotations

import gzip
import io
import json
import sqlite3
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
        assert lines[row["line"] - 1].startswith(("Dec", "Jan", "2026")), row
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
    assert (sender["delivered"], sender["bounced"], sender["unknown"], sender["deferred"]) == (
        1,
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
    assert "1 delivered, 1 bounced" in human and "remote2.example" in human

"""Network-log ingest: the sshd fast path, timestamps, junk input and the `ingest netlog` command."""

from __future__ import annotations

import json
import random
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from reputable.evidence.detectors.netconfig import NetSettings
from reputable.evidence.model import Evidence
from reputable.evidence.parsers import sshd
from reputable.evidence.parsers.net import NET_PARSERS, parse_lines
from reputable.evidence.parsers.netbase import NetEvent, NetLine
from reputable.evidence.sources.netlog import NetlogSummary, ingest_netlog
from reputable.testing import cli

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
SAMPLES = Path(__file__).parents[1] / "samples"


def auth_log(path: Path, seed: int = 1) -> None:
    """Write a small auth log mixing attackers, users, scanners, noise and junk."""
    rng = random.Random(seed)
    out = []
    for i in range(3000):
        ts = f"Nov 29 {8 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}"
        ip = (
            f"203.0.113.{rng.randint(1, 12)}"
            if rng.random() < 0.7
            else f"192.0.2.{rng.randint(1, 50)}"
        )
        pid = 5000 + i
        user = rng.choice(["root", "admin", "oracle", "x from 6.6.6.6 port 1 ssh2"])
        out.append(
            rng.choice(
                [
                    f"{ts} h sshd[{pid}]: Invalid user {user} from {ip} port 4{i % 1000:03d}",
                    f"{ts} h sshd[{pid}]: Failed password for invalid user {user} from {ip} port 22 ssh2",
                    f"{ts} h sshd[{pid}]: Failed password for root from {ip} port 22 ssh2",
                    f"{ts} h sshd[{pid}]: pam_unix(sshd:auth): check pass; user unknown",
                    f"{ts} h sshd[{pid}]: Accepted password for bob from {ip} port 22 ssh2",
                    f"{ts} h sshd[{pid}]: Connection closed by {ip} port 4{i % 1000:03d} [preauth]",
                    f"{ts} h sshd[{pid}]: Did not receive identification string from {ip} port 1",
                    f"{ts} h sshd[{pid}]: error: PAM: Authentication failure for root from {ip}",
                    f"{ts} h CRON[{pid}]: pam_unix(cron:session): session closed for user root",
                    f"{ts} h sshd[{pid}]: some message nobody knows",
                    "",
                    "garbage \xff line",
                ]
            )
        )
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def collect(path: Path, *, generic: bool) -> tuple[list[Evidence], NetlogSummary]:
    """Ingest *path* by the fast path or the line parser; return evidence and summary."""
    found: list[Evidence] = []

    def sink(items: list[Evidence]) -> int:
        found.extend(items)
        return len(items)

    summary = ingest_netlog(
        path,
        "sshd",
        NetSettings(),
        now=NOW,
        sink=sink,
        on_item=(lambda item, tags: None) if generic else None,
    )
    return found, summary


def test_fast_path_finds_exactly_what_the_line_parser_finds(tmp_path: Path) -> None:
    """The block scanner and the line parser agree on counts, events and evidence."""
    log = tmp_path / "auth.log"
    auth_log(log)
    fast, fast_summary = collect(log, generic=False)
    slow, slow_summary = collect(log, generic=True)
    assert fast, "the generated log must contain attacks"
    assert [e.key for e in fast] == [e.key for e in slow]
    for name in (
        "lines",
        "understood",
        "other",
        "unknown",
        "examples",
        "events",
        "evidence",
        "top_ips",
    ):
        assert getattr(fast_summary, name) == getattr(slow_summary, name), name


def test_fast_path_handles_a_last_line_without_newline_and_blocks(tmp_path: Path) -> None:
    """Line numbers stay right across block boundaries and an unterminated last line."""
    log = tmp_path / "auth.log"
    auth_log(log, seed=2)
    text = log.read_text(encoding="utf-8").rstrip("\n")
    log.write_text(text, encoding="utf-8")
    fast, fast_summary = collect(log, generic=False)
    slow, slow_summary = collect(log, generic=True)
    assert fast_summary.lines == slow_summary.lines == text.count("\n") + 1
    assert [e.detail["samples"] for e in fast] == [e.detail["samples"] for e in slow]


def test_syslog_dates_roll_over_from_december_to_january() -> None:
    """Read on 2 January, 31 December is last year and 1 January this year."""
    lines = [
        "Dec 31 23:59:59 h sshd[7]: Invalid user a from 192.0.2.1 port 1",
        "Jan  1 00:00:01 h sshd[7]: Invalid user b from 192.0.2.1 port 1",
    ]
    now = datetime(2027, 1, 2, tzinfo=UTC)
    events = [e for e in sshd.parse(lines, now=now) if isinstance(e, NetEvent)]
    years = [datetime.fromtimestamp(e.ts, UTC).year for e in events]
    assert years == [2026, 2027]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=200), max_size=8), st.sampled_from(sorted(NET_PARSERS)))
def test_parsers_never_crash_on_junk(lines: list[str], fmt: str) -> None:
    """Any text gives one event or NetLine per line, never an exception."""
    results = list(parse_lines(fmt, lines, now=NOW))
    assert len(results) == len(lines)
    assert all(isinstance(r, NetEvent | NetLine) for r in results)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400))
def test_block_scanner_never_crashes_on_junk(data: bytes) -> None:
    """The sshd block pattern matches any bytes without error and each match is one line."""
    for found in sshd.SCAN.finditer(b"\n" + data):
        assert b"\n" not in found[0][1:]


def _scan_reference() -> re.Pattern[bytes]:
    """The block pattern written the plain way: attempt, or a line no known message matches.

    ``sshd.SCAN`` reads the line prefix once (atomic group, conditional); it must find what
    this one finds.
    """
    capture = frozenset({"ts", "user", "ip"})
    wanted = ("auth_failed", "invalid_user", *sorted(sshd.SCANS))
    branches = [
        sshd._groups(
            text if event in sshd.ATTEMPTS else sshd._groups(text, frozenset({"ip"})), capture
        )
        for event, text in sshd.MESSAGES
        if event in wanted
    ]
    prefix = sshd._groups(sshd._PREFIX, capture)
    attempt = r"\n" + prefix + "(?:" + "|".join(branches) + ")" + sshd._END
    messages = "|".join(sshd._groups(text) for _, text in sshd.MESSAGES)
    known = sshd._groups(sshd._PREFIX) + "(?:" + messages + ")" + sshd._END
    return re.compile((attempt + r"|\n(?!" + known + r")([^\n]*)").encode(), re.MULTILINE)


_REFERENCE = _scan_reference()
_SAMPLE_LINES = [
    line
    for name in ("sshd.log", "accuracy/sshd.log", "postfix.log")
    for line in (SAMPLES / name).read_bytes().split(b"\n")
]
#: What the test patches into sample lines: the prefix's and the messages' own pieces.
_PATCHES = [
    b"", b" ", b":", b"[", b"]", b"x", b"error: ", b"fatal: ", b"\t", b"-session",
    b" from 1.2.3.4", b" port 22", b" [preauth]", b"Failed password for ", b"Invalid user ",
]  # fmt: skip


def _found(pattern: re.Pattern[bytes], unknown: int, block: bytes) -> list[tuple[object, ...]]:
    """Every match as (start, text, what: "unknown" or the branch and its groups)."""
    out: list[tuple[object, ...]] = []
    for m in pattern.finditer(block):
        g: int = m.lastindex  # type: ignore[assignment]
        what = ("unknown",) if g >= unknown else (g, m.groups()[: unknown - 1])
        out.append((m.start(), m[0], *what))
    return out


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(_SAMPLE_LINES),
            st.lists(
                st.tuples(
                    st.integers(0, 300),
                    st.sampled_from(_PATCHES),
                    st.booleans(),
                ),
                max_size=3,
            ),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_block_scanner_finds_what_the_plain_pattern_finds(
    edits: list[tuple[bytes, list[tuple[int, bytes, bool]]]],
) -> None:
    """Sample lines, cut and patched at random, are read alike by SCAN and the plain pattern."""
    lines = []
    for line, changes in edits:
        text = bytearray(line)
        for place, insert, cut in changes:
            at = min(place, len(text))
            if cut:
                del text[at : at + 1]
            text[at:at] = insert
        lines.append(bytes(text))
    block = b"\n" + b"\n".join(lines)
    assert _found(sshd.SCAN, sshd.SCAN_UNKNOWN, block) == _found(
        _REFERENCE, _REFERENCE.groups, block
    )


def test_cli_dry_run_jsonl_prints_file_line_numbers_and_stores_nothing(tmp_path: Path) -> None:
    """`--dry-run --jsonl` prints line/ip/event per understood line with PID attribution."""
    config = tmp_path / "reputable.toml"
    config.write_text('data_dir = "."\n', encoding="utf-8")
    sample = SAMPLES / "sshd.log"
    result = cli(
        config, "ingest", "netlog", str(sample), "--format", "sshd", "--dry-run", "--jsonl",
        "--now", "2026-11-29T12:00:00Z",
    )  # fmt: skip
    records = [json.loads(line) for line in result.stdout.splitlines()]
    lines = sample.read_text(encoding="utf-8").splitlines()
    assert records and all({"line", "ip", "event"} <= r.keys() for r in records)
    for record in records:
        if record["ip"] is not None and record.get("via") != "pid":
            assert record["ip"] in lines[record["line"] - 1]
    attributed = [r for r in records if r.get("via") == "pid"]
    assert {r["event"] for r in attributed} >= {"pam_check_pass", "session_opened"}
    assert "not understood" in result.stderr
    assert not list(tmp_path.rglob("*.db"))


def test_cli_ingest_stores_evidence_and_rejects_an_unknown_format(tmp_path: Path) -> None:
    """`ingest netlog` stores compromised evidence and says which formats exist."""
    config = tmp_path / "reputable.toml"
    config.write_text('data_dir = "."\n', encoding="utf-8")
    log = tmp_path / "auth.log"
    auth_log(log)
    result = cli(
        config, "ingest", "netlog", str(log), "--format", "sshd", "--now", "2026-11-29T12:00:00Z"
    )
    assert "understood" in result.stdout and "ssh_slow_bruteforce" in result.stdout
    db = next(tmp_path.rglob("*.db"))
    with sqlite3.connect(db) as conn:
        causes = {row[0] for row in conn.execute("SELECT DISTINCT cause FROM evidence")}
    assert causes == {"compromised"}
    again = cli(
        config, "ingest", "netlog", str(log), "--format", "sshd", "--now", "2026-11-29T12:00:00Z"
    )
    assert "stored 0 new" in again.stdout
    bad = cli(config, "ingest", "netlog", str(log), "--format", "syslog", check=False)
    assert bad.returncode == 2 and "sshd" in bad.stderr


def test_serve_hook_follows_a_configured_log_and_commits_evidence(
    tmp_path: Path, store_dsn: str
) -> None:
    """follow_netlogs reads a [[sources.netlog]] file and stores its evidence with the position."""
    import asyncio
    from types import SimpleNamespace

    from reputable.evidence.sources.netlog import follow_netlogs
    from reputable.store.dsn import open_dsn

    log = tmp_path / "auth.log"
    at = datetime.now(UTC)
    stamp = f"{at:%b} {at.day:2d} {at:%H:%M:%S}"
    lines = [
        f"{stamp} h sshd[{i}]: Failed password for root from 203.0.113.99 port 22 ssh2"
        for i in range(8)
    ]
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = SimpleNamespace(
        path=tmp_path / "reputable.toml",
        extra={"sources": {"netlog": [{"path": "auth.log", "format": "sshd"}]}},
    )

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(follow_netlogs(config, lambda: open_dsn(store_dsn), stop))
        await asyncio.sleep(0.5)
        stop.set()
        await task

    asyncio.run(main())
    store = open_dsn(store_dsn)
    try:
        position = store.source_position(f"netlog:sshd:{log}")
        subjects = store.all_targets()  # an IPv4 address is its own target
    finally:
        store.close()
    assert position is not None and position.lines == 8
    assert subjects == {"203.0.113.99"}


def test_serve_hook_keeps_partial_counts_across_a_restart(tmp_path: Path, store_dsn: str) -> None:
    """A restart mid-burst resumes the buckets saved with the position: 4 + 4 failures list.

    ssh_bruteforce overflows above 5 attempts; each run alone sees 4 (none would list the
    address), so the evidence after the second run proves the first run's counts came back.
    """
    import asyncio
    from types import SimpleNamespace

    from reputable.evidence.sources.netlog import follow_netlogs
    from reputable.store.dsn import open_dsn

    log = tmp_path / "auth.log"
    at = datetime.now(UTC)
    stamp = f"{at:%b} {at.day:2d} {at:%H:%M:%S}"

    def burst(first: int) -> str:
        return "".join(
            f"{stamp} h sshd[{first + i}]: Failed password for root from 203.0.113.77 port 22 ssh2\n"
            for i in range(4)
        )

    config = SimpleNamespace(
        path=tmp_path / "reputable.toml",
        extra={"sources": {"netlog": [{"path": "auth.log", "format": "sshd"}]}},
    )

    def run_once() -> None:
        async def main() -> None:
            stop = asyncio.Event()
            task = asyncio.create_task(follow_netlogs(config, lambda: open_dsn(store_dsn), stop))
            await asyncio.sleep(0.4)
            stop.set()
            await task

        asyncio.run(main())

    def subjects() -> set[str]:
        store = open_dsn(store_dsn)
        try:
            return store.all_targets()  # an IPv4 address is its own target
        finally:
            store.close()

    log.write_text(burst(100), encoding="utf-8")
    run_once()
    assert subjects() == set()  # 4 attempts: below every threshold
    store = open_dsn(store_dsn)
    try:
        position = store.source_position(f"netlog:sshd:{log}")
    finally:
        store.close()
    assert position is not None and position.lines == 4 and position.state
    assert "203.0.113.77" in position.state
    with log.open("a", encoding="utf-8") as f:
        f.write(burst(200))
    run_once()  # a new process: a new detector, its buckets from the saved state
    assert subjects() == {"203.0.113.77"}


def test_serve_hook_without_saved_buckets_starts_empty(tmp_path: Path) -> None:
    """The control for the test above: a state without buckets (an old position) counts afresh."""
    from reputable.evidence.detectors.net import NetDetector
    from reputable.evidence.sources.follow import Follower, Position
    from reputable.evidence.sources.netlog import resume_detector

    class Store:
        def __init__(self, state: str | None) -> None:
            self.state = state

        def source_position(self, name: str) -> Position | None:
            return Position(name, 0, 0, "0:x", 0, 0, self.state)

        def commit_source(self, position: Position, evidence: object) -> int:
            return 0

    for state in (
        None,
        "not json",
        '{"format": "sshd"}',
        '{"buckets": [{"192.0.2.1": [1.0, 0, 0, 1, 0, [], []]}]}',
    ):
        detector = NetDetector(NetSettings(), source="t")
        resume_detector(Follower(tmp_path / "x.log", Store(state), "n"), detector)
        restored = detector.state()
        assert bool(restored[0]) == (state is not None and "buckets" in state)

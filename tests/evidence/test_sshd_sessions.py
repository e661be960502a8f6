"""sshd multi-line sessions across batches: a line that names no client is attributed by its PID.

An sshd session logs its client once (``Connection from IP``, ``Failed password ... from IP``)
and later lines of the same PID may name none (``pam_unix(sshd:auth): check pass; user
unknown``). A follower reads a log in batches and may be restarted between them: the PID ->
address memory must go from one batch to the next and survive a restart (saved with the
position), for the netlog follower and the journal alike.

The default scenarios count only lines that name their client, so these tests pour the
PID-attributed message into a scenario of its own (capacity 0: one line is evidence).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from reputable.evidence.detectors.mail_config import MailParams
from reputable.evidence.detectors.net import NetDetector
from reputable.evidence.detectors.netconfig import NetSettings, Scenario
from reputable.evidence.parsers import sshd
from reputable.evidence.parsers.netbase import NetEvent
from reputable.evidence.sources.follow import Follower
from reputable.evidence.sources.journal import JournalRun
from reputable.evidence.sources.netlog import _follow_once, resume_detector
from reputable.store.sqlite import SQLiteStore

NOW = datetime(2026, 3, 5, tzinfo=UTC)
OPENED = (
    "Mar  4 10:00:00 h sshd[4242]: Connection from 203.0.113.5 port 5555 on 192.0.2.1 port 22\n"
)
NO_CLIENT = "Mar  4 10:00:01 h sshd[4242]: pam_unix(sshd:auth): check pass; user unknown\n"
OTHER_PID = "Mar  4 10:00:01 h sshd[999]: pam_unix(sshd:auth): check pass; user unknown\n"
SETTINGS = NetSettings(
    scenarios=(
        Scenario(
            name="pam_unknown", tags=frozenset({"pam_check_pass"}), capacity=0, leakspeed=60.0
        ),
    )
)


def _events(lines: list[str], sessions: sshd.Sessions | None) -> list[NetEvent]:
    return [e for e in sshd.parse(lines, now=NOW, sessions=sessions) if isinstance(e, NetEvent)]


def test_parse_carries_the_pid_memory_from_one_call_to_the_next() -> None:
    """With one Sessions for both calls the second call's line gets the first call's address."""
    sessions = sshd.Sessions()
    _events([OPENED], sessions)
    (later,) = _events([NO_CLIENT], sessions)
    assert (later.ip, later.via_pid, later.pid) == ("203.0.113.5", True, 4242)
    (alone,) = _events([NO_CLIENT], None)  # without it each call starts afresh (the control)
    assert alone.ip == "" and not alone.via_pid
    (stranger,) = _events([OTHER_PID], sessions)  # another PID is not that client
    assert stranger.ip == ""


def test_sessions_state_round_trips_and_refuses_other_shapes() -> None:
    """What state() saves restore() loads; a damaged state is ignored, never an exception."""
    sessions = sshd.Sessions()
    _events([OPENED], sessions)
    again = sshd.Sessions()
    again.restore(sessions.state())
    assert again.pids == {"4242": "203.0.113.5"}
    for bad in (None, "x", [["4242"]], [[4242, "203.0.113.5"]], [["pid", "203.0.113.5"]], {"a": 1}):
        fresh = sshd.Sessions()
        fresh.restore(bad)
        assert fresh.pids == {}


def test_saved_sessions_are_bounded_and_keep_the_newest() -> None:
    sessions = sshd.Sessions()
    lines = [
        f"Mar  4 10:00:00 h sshd[{pid}]: Connection from 198.51.100.{pid % 250} port 1 on 192.0.2.1 port 22"
        for pid in range(1, sshd.SAVED_SESSIONS + 101)
    ]
    _events(lines, sessions)
    saved = sessions.state()
    assert len(saved) == sshd.SAVED_SESSIONS
    assert saved[-1][0] == str(sshd.SAVED_SESSIONS + 100) and saved[0][0] == "101"


def test_netlog_follower_attributes_a_session_split_across_batches(tmp_path: Path) -> None:
    """The session's first line is in one batch, its no-client line in the next: still its client."""
    log = tmp_path / "auth.log"
    log.write_text(OPENED, encoding="utf-8")
    store = SQLiteStore(tmp_path / "s.db")
    try:
        follower = Follower(log, store, "netlog:sshd:auth")
        detector = NetDetector(SETTINGS, source="t")
        sessions = sshd.Sessions()
        assert _follow_once(follower, detector, "sshd", NOW, sessions=sessions) == 0
        with log.open("a", encoding="utf-8") as f:
            f.write(NO_CLIENT)
        assert _follow_once(follower, detector, "sshd", NOW, sessions=sessions) == 1
    finally:
        store.close()


def test_netlog_follower_attributes_a_session_split_across_a_restart(tmp_path: Path) -> None:
    """A new process resumes the PID memory saved with the position of the first batch."""
    log = tmp_path / "auth.log"
    log.write_text(OPENED, encoding="utf-8")
    db = tmp_path / "s.db"
    store = SQLiteStore(db)
    try:
        _follow_once(
            Follower(log, store, "n"), NetDetector(SETTINGS, source="t"), "sshd", NOW,
            sessions=sshd.Sessions(),
        )  # fmt: skip
    finally:
        store.close()
    with log.open("a", encoding="utf-8") as f:
        f.write(NO_CLIENT)
    store = SQLiteStore(db)
    try:
        follower = Follower(log, store, "n")
        detector = NetDetector(SETTINGS, source="t")
        sessions = sshd.Sessions()
        resume_detector(follower, detector, sessions)
        assert sessions.pids == {"4242": "203.0.113.5"}
        assert _follow_once(follower, detector, "sshd", NOW, sessions=sessions) == 1
    finally:
        store.close()


def _entry(at: int, message: str, pid: int = 4242) -> dict[bytes, bytes]:
    return {
        b"__CURSOR": f"s=1;i={at}".encode(),
        b"__REALTIME_TIMESTAMP": str(at * 1_000_000).encode(),
        b"SYSLOG_IDENTIFIER": b"sshd",
        b"_PID": str(pid).encode(),
        b"_HOSTNAME": b"h",
        b"MESSAGE": message.encode(),
    }


T0 = 1_772_618_400  # 2026-03-04T10:00:00Z


def test_journal_attributes_a_session_split_across_batches_and_runs() -> None:
    """Across flushes (batches), and across a run resumed from the saved state (a restart)."""
    opened = "Connection from 203.0.113.5 port 5555 on 192.0.2.1 port 22"
    no_client = "pam_unix(sshd:auth): check pass; user unknown"
    run = JournalRun(MailParams(), SETTINGS, NOW)
    run.add(_entry(T0, opened))
    assert run.flush() == []
    run.add(_entry(T0 + 1, no_client))
    found = run.flush()
    assert [str(e.subject) for e in found] == ["203.0.113.5"]

    first = JournalRun(MailParams(), SETTINGS, NOW)
    first.add(_entry(T0, opened))
    first.flush()
    saved = first.state()
    resumed = JournalRun(MailParams(), SETTINGS, NOW)
    resumed.restore(saved)
    assert resumed.cursor == f"s=1;i={T0}"
    resumed.add(_entry(T0 + 1, no_client))
    assert [str(e.subject) for e in resumed.flush()] == ["203.0.113.5"]

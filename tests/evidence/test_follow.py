"""The follower reads every complete line exactly once across rotation, copytruncate and crashes."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from reputable.core.cause import Cause
from reputable.evidence.detectors.mail_config import MailParams
from reputable.evidence.model import Evidence
from reputable.evidence.parsers.syslog_time import TimeParser
from reputable.evidence.sources.follow import Follower, Position
from reputable.evidence.sources.maillog import (
    FollowedLog,
    MaillogSettings,
    MailRun,
    ingest_files,
)
from reputable.store.dsn import open_dsn
from tests.evidence.maillog_gen import generate

AT = datetime(2026, 3, 2, tzinfo=UTC)


class Crash(Exception):
    """Stands in for the process dying."""


class CrashingStore:
    """A real store (on the test's back-end) whose Nth commit dies before anything is written."""

    def __init__(self, dsn: str, crash_at: int) -> None:
        self.store = open_dsn(dsn)
        self.crash_at = crash_at
        self.commits = 0

    def commit_source(self, position: Position, evidence: Iterable[Evidence]) -> int:
        """Die on the configured commit, else commit."""
        self.commits += 1
        if self.commits == self.crash_at:
            raise Crash
        return self.store.commit_source(position, evidence)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def _per_line(text: str) -> list[Evidence]:
    return [
        Evidence(
            subject=IPv4Address("192.0.2.1"), cause=Cause.SPAM, source="t", observed_at=AT, key=line
        )
        for line in text.splitlines()
    ]


def _drain(follower: Follower) -> None:
    for batch in follower.batches():
        follower.commit(batch, _per_line(batch.text), state=None)


def _stored(store: Any) -> list[str]:
    return sorted(k for (k,) in store._db.execute("SELECT key FROM evidence"))


def _write(path: Path, start: int, count: int, mode: str = "a") -> list[str]:
    lines = [f"line {i}" for i in range(start, start + count)]
    with path.open(mode, encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    return lines


def test_partial_last_line_waits_until_it_is_complete(tmp_path: Path, store_dsn: str) -> None:
    """A line without its newline is not read; once finished it is read whole, once."""
    log = tmp_path / "app.log"
    store = open_dsn(store_dsn)
    _write(log, 0, 3)
    with log.open("a") as f:
        f.write("line 3 half")
    follower = Follower(log, store, "t:app")
    _drain(follower)
    assert _stored(store) == ["line 0", "line 1", "line 2"]
    with log.open("a") as f:
        f.write(" done\n")
    _drain(follower)
    assert _stored(store)[-1] == "line 3 half done" and len(_stored(store)) == 4


def test_rename_rotation_drains_the_old_file_then_reads_the_new(
    tmp_path: Path, store_dsn: str
) -> None:
    """Lines appended to the old file just before it was renamed are read, then the new file."""
    log = tmp_path / "mail.log"
    store = open_dsn(store_dsn)
    expected = _write(log, 0, 100)
    follower = Follower(log, store, "t:mail")
    _drain(follower)
    expected += _write(log, 100, 50)
    log.rename(tmp_path / "mail.log.1")
    expected += _write(log, 150, 30, "w")
    _drain(follower)
    expected += _write(log, 180, 5)
    _drain(Follower(log, store, "t:mail"))  # a restart after rotation continues in the new file
    assert _stored(store) == sorted(expected)


def test_copytruncate_reads_the_rest_from_the_copy_then_the_truncated_file(
    tmp_path: Path, store_dsn: str
) -> None:
    """With copytruncate, the lines written before the truncation come from the copy, none twice."""
    log = tmp_path / "mail.log"
    store = open_dsn(store_dsn)
    expected = _write(log, 0, 100)
    follower = Follower(log, store, "t:mail")
    _drain(follower)
    expected += _write(log, 100, 40)
    shutil.copyfile(log, tmp_path / "mail.log.1")
    with log.open("w"):
        pass
    expected += _write(log, 140, 10)
    _drain(follower)
    assert _stored(store) == sorted(expected)


@pytest.mark.parametrize("crash_at", [1, 2, 5, 9])
def test_crash_at_any_commit_resumes_exactly(tmp_path: Path, crash_at: int, store_dsn: str) -> None:
    """A crash during any commit loses nothing and repeats nothing after the restart."""
    log = tmp_path / "mail.log"
    expected = _write(log, 0, 3000)
    crashing = CrashingStore(store_dsn, crash_at)
    follower = Follower(log, crashing, "t:mail", chunk_bytes=2048)
    with pytest.raises(Crash):
        _drain(follower)
    crashing.close()
    store = open_dsn(store_dsn)
    _drain(Follower(log, store, "t:mail", chunk_bytes=2048))
    assert _stored(store) == sorted(expected)
    position = store.source_position("t:mail")
    assert position is not None and position.lines == 3000 and position.offset == log.stat().st_size


def test_mail_follow_with_crashes_gives_the_batch_evidence(
    tmp_path: Path, new_store_dsn: Callable[[str], str]
) -> None:
    """Following a mail log through two crashes stores exactly the evidence one batch run finds."""
    text = io.StringIO()
    generate(text, 30_000, seed=5)
    log = tmp_path / "mail.log"
    log.write_text(text.getvalue(), encoding="utf-8")
    now = datetime(2026, 3, 20, tzinfo=UTC)
    batch_store = open_dsn(new_store_dsn("batch"))
    ingest_files(MailRun(MailParams(), TimeParser(now)), [log], batch_store.add_evidence)
    want = _stored(batch_store)
    settings = MaillogSettings(paths=(log,))
    for crash_at in (3, 7):
        store = CrashingStore(new_store_dsn("follow"), crash_at)
        followed = FollowedLog(log, store, settings, MailParams(), now, chunk_bytes=64 * 1024)
        with pytest.raises(Crash):
            followed.poll(now)
        store.close()
    store = CrashingStore(new_store_dsn("follow"), 0)
    followed = FollowedLog(log, store, settings, MailParams(), now, chunk_bytes=64 * 1024)
    position = followed.follower.position
    assert position is not None and position.state and json.loads(position.state)["format"]
    followed.poll(now)  # the rest of the log
    followed.poll(now)  # nothing new: every window ended long before *now* closes
    assert _stored(store) == want and len(want) > 5

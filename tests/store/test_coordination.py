"""Leader election and change notification between nodes sharing one store (issue 16).

PostgreSQL cases run against the real server on 127.0.0.1:5432 (a database of their own);
the SQLite lock is an flock, exercised across real processes as well.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from reputable.core.errors import StoreError
from reputable.store.coordination import (
    EVIDENCE_CHANNEL,
    SERIAL_CHANNEL,
    FileLeaderLock,
    PollingFeed,
    PostgresFeed,
    PostgresLeaderLock,
    advisory_key,
    change_feed,
    install_notify_triggers,
    leader_lock,
    redact,
)
from tests.store.pgnodes_db import fresh_database

#: A holder in another process: takes the lock, says so, then sleeps until killed.
HOLDER = """
import sys, time
from reputable.store.coordination import leader_lock
lock = leader_lock(sys.argv[1])
while not lock.try_acquire():
    time.sleep(0.05)
print("held", flush=True)
time.sleep(120)
"""


@contextmanager
def _holder(dsn: str) -> Iterator[subprocess.Popen[str]]:
    """Run a lock holder in another process for the block; kill it (if still alive) after."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, dsn], stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "held"
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()


def _takeover_seconds(lock: Any, holder: subprocess.Popen[str]) -> float:
    """SIGKILL *holder*, return how long *lock* then needs to become ours (fails after 15 s)."""
    assert not lock.try_acquire()  # held elsewhere: not ours
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    began = time.monotonic()
    while not lock.try_acquire():
        assert time.monotonic() - began < 15, "the dead holder's lock was never released"
        time.sleep(0.05)
    return time.monotonic() - began


# -- SQLite: flock ----------------------------------------------------------------------------
def test_file_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    first = FileLeaderLock(tmp_path / "db.leader")
    second = FileLeaderLock(tmp_path / "db.leader")
    try:
        assert first.try_acquire()
        assert first.try_acquire()  # still ours
        assert not second.try_acquire()
        first.release()
        assert second.try_acquire()
        assert (tmp_path / "db.leader").read_text().strip() == str(os.getpid())
    finally:
        first.release()
        second.release()


def test_file_lock_taken_over_after_sigkill(tmp_path: Path) -> None:
    dsn = f"sqlite:///{tmp_path / 'reputable.db'}"
    lock = leader_lock(dsn)
    try:
        with _holder(dsn) as holder:
            assert _takeover_seconds(lock, holder) < 1.0
    finally:
        lock.release()


def test_file_lock_in_unwritable_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open the leader lock file"):
        FileLeaderLock(tmp_path / "missing" / "db.leader")


def test_sqlite_feed_polls() -> None:
    feed = change_feed("sqlite:///x.db")
    assert isinstance(feed, PollingFeed)
    began = time.monotonic()
    assert asyncio.run(feed.wait(0.05)) is False
    assert time.monotonic() - began >= 0.05


def test_unknown_dsn_and_redaction() -> None:
    with pytest.raises(StoreError, match="no leader election"):
        leader_lock("mysql://a:b@127.0.0.1/x")
    assert redact("postgresql://rep:s3cret@127.0.0.1:5432/db") == (
        "postgresql://rep:***@127.0.0.1:5432/db"
    )
    assert redact("postgresql://rep@127.0.0.1/db") == "postgresql://rep@127.0.0.1/db"
    assert advisory_key("a") != advisory_key("b")
    assert -(2**63) <= advisory_key("a") < 2**63


# -- PostgreSQL -------------------------------------------------------------------------------
@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """A fresh database with the two tables the notify triggers hang on."""
    import psycopg

    with fresh_database() as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            conn.execute("INSERT INTO meta VALUES ('serial', '1') ON CONFLICT DO NOTHING")
            conn.execute("CREATE TABLE IF NOT EXISTS evidence (id SERIAL, key TEXT UNIQUE)")
        yield dsn


def _bump(dsn: str, *, commit: bool = True) -> None:
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute(
            "UPDATE meta SET value = (CAST(value AS INTEGER) + 1)::text WHERE key = 'serial'"
        )
        if commit:
            conn.commit()
        else:
            conn.rollback()


@pytest.mark.postgres
def test_advisory_lock_is_exclusive(pg_dsn: str) -> None:
    first, second = PostgresLeaderLock(pg_dsn), PostgresLeaderLock(pg_dsn)
    try:
        assert first.try_acquire()
        assert first.try_acquire()  # confirmed by a round trip, still ours
        assert not second.try_acquire()
        first.release()
        assert second.try_acquire()
        assert not first.try_acquire()
    finally:
        first.release()
        second.release()


@pytest.mark.serial  # a wall-clock limit: no other worker's test runs meanwhile
@pytest.mark.postgres
def test_advisory_lock_taken_over_after_sigkill(pg_dsn: str) -> None:
    lock = PostgresLeaderLock(pg_dsn)
    try:
        with _holder(pg_dsn) as holder:
            # The killed holder's kernel closes its socket; the server ends the session and
            # its lock with it, well within the seconds the issue allows.
            assert _takeover_seconds(lock, holder) < 3.0
    finally:
        lock.release()


@pytest.mark.postgres
def test_leader_notices_its_session_was_killed(pg_dsn: str) -> None:
    import psycopg

    lock, other = PostgresLeaderLock(pg_dsn), PostgresLeaderLock(pg_dsn)
    try:
        assert lock.try_acquire()
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks"
                " WHERE locktype = 'advisory' AND granted AND database ="
                " (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        assert other.try_acquire()  # the server released it with the session
        assert not lock.try_acquire()  # and the old holder knows it no longer leads
    finally:
        lock.release()
        other.release()


@pytest.mark.postgres
def test_unreachable_server_is_not_leadership() -> None:
    lock = PostgresLeaderLock("postgresql://postgres@127.0.0.1:1/none")
    assert lock.try_acquire() is False


@pytest.mark.serial  # a wall-clock limit: no other worker's test runs meanwhile
@pytest.mark.postgres
def test_notify_wakes_a_waiting_node(pg_dsn: str) -> None:
    async def scenario() -> tuple[bool, float, bool, bool]:
        feed = PostgresFeed(pg_dsn)
        try:
            assert await feed.wait(0.01) is False  # connects, installs triggers, listens
            assert feed.listening
            began = time.monotonic()
            waiter = asyncio.create_task(feed.wait(10))
            await asyncio.sleep(0.2)
            await asyncio.to_thread(_bump, pg_dsn)
            woke = await waiter
            latency = time.monotonic() - began - 0.2
            await asyncio.to_thread(_bump, pg_dsn, commit=False)  # rolled back: no wake-up
            silent = await feed.wait(0.5)
            # New evidence is not a serial change: the serial feed stays quiet.
            await asyncio.to_thread(_insert_evidence, pg_dsn, "k1")
            quiet = await feed.wait(0.5)
            return woke, latency, silent, quiet
        finally:
            await feed.close()

    woke, latency, silent, quiet = asyncio.run(scenario())
    assert woke and latency < 1.0
    assert silent is False
    assert quiet is False


def _insert_evidence(dsn: str, key: str) -> None:
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO evidence (key) VALUES (%s)", (key,))


@pytest.mark.postgres
def test_evidence_channel_wakes_the_leader(pg_dsn: str) -> None:
    async def scenario() -> bool:
        feed = PostgresFeed(pg_dsn, (EVIDENCE_CHANNEL,))
        try:
            await feed.wait(0.01)
            waiter = asyncio.create_task(feed.wait(10))
            await asyncio.sleep(0.2)
            await asyncio.to_thread(_insert_evidence, pg_dsn, "k2")
            return await waiter
        finally:
            await feed.close()

    assert asyncio.run(scenario()) is True


@pytest.mark.postgres
def test_feed_reconnects_after_its_session_is_killed(pg_dsn: str) -> None:
    import psycopg

    def kill_listeners() -> None:
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE query LIKE 'LISTEN%%' AND pid <> pg_backend_pid()"
                " AND datname = current_database()"
            )

    async def scenario() -> tuple[bool, bool, bool]:
        feed = PostgresFeed(pg_dsn, (SERIAL_CHANNEL,), retry=0.1)
        try:
            await feed.wait(0.01)
            assert feed.listening
            await asyncio.to_thread(kill_listeners)
            dropped = await feed.wait(1.0)  # the drop is seen: a timeout-like False
            await asyncio.sleep(0.2)
            await feed.wait(0.01)  # reconnects (past the retry delay)
            waiter = asyncio.create_task(feed.wait(10))
            await asyncio.sleep(0.2)
            await asyncio.to_thread(_bump, pg_dsn)
            return dropped, feed.listening, await waiter
        finally:
            await feed.close()

    dropped, listening, woke = asyncio.run(scenario())
    assert dropped is False
    assert listening and woke


def _in_schema(dsn: str, schema: str) -> str:
    """Return *dsn* with its search_path set to a new schema *schema* holding meta."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute(f"INSERT INTO {schema}.meta VALUES ('serial', '1')")
        conn.execute(f"CREATE TABLE {schema}.evidence (id SERIAL, key TEXT UNIQUE)")
    return f"{dsn}?options=-csearch_path%3D{schema}"


@pytest.mark.postgres
def test_installations_in_two_schemas_do_not_share_lock_or_notifications(pg_dsn: str) -> None:
    import psycopg

    other = _in_schema(pg_dsn, "neighbour")
    ours, theirs = PostgresLeaderLock(pg_dsn), PostgresLeaderLock(other)
    try:
        assert ours.try_acquire() and theirs.try_acquire()  # one leader per installation
    finally:
        ours.release()
        theirs.release()
    with psycopg.connect(other, autocommit=True) as conn:
        install_notify_triggers(conn)

    async def scenario() -> tuple[bool, bool]:
        feed = PostgresFeed(pg_dsn)
        try:
            await feed.wait(0.01)
            neighbour = asyncio.create_task(feed.wait(0.8))
            await asyncio.sleep(0.1)
            await asyncio.to_thread(_bump, other)  # the neighbour's change: not ours
            heard_theirs = await neighbour
            waiter = asyncio.create_task(feed.wait(10))
            await asyncio.sleep(0.1)
            await asyncio.to_thread(_bump, pg_dsn)
            return heard_theirs, await waiter
        finally:
            await feed.close()

    heard_theirs, heard_ours = asyncio.run(scenario())
    assert heard_theirs is False and heard_ours is True

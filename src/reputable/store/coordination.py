"""Several ``serve`` nodes on one store: who evaluates the policy, and when to rebuild.

Two parts, each with a SQLite and a PostgreSQL implementation:

* **Leader election** for the policy evaluator: exactly one node evaluates at a time.
  PostgreSQL: ``pg_try_advisory_lock`` held on a dedicated connection. The lock is a
  session lock, so it dies with the connection: a SIGKILLed holder's socket is closed by
  its kernel and the server releases the lock at once; a holder whose host vanished is
  cut off by the server's TCP keepalives (set on the session below: ~10 s). SQLite: the
  store is one file on one host, so an ``flock`` on a file next to it is the equivalent
  (the kernel drops it when the holder dies).
* **Change notification**: every node's publisher rebuilds its snapshot when the data
  changes. PostgreSQL: a trigger on the ``meta`` serial row sends ``NOTIFY`` in the same
  transaction as the bump (so it is delivered exactly when the change commits), and the
  policy leader also hears new evidence (a statement trigger on ``evidence``). If the
  listening connection drops, the caller's polling of the serial carries on alone and the
  feed reconnects on the next wait. SQLite: polling of the serial, as before.

psycopg is imported only by the PostgreSQL classes (the ``postgres`` extra).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from reputable.core import log
from reputable.core.errors import StoreError

if TYPE_CHECKING:
    import psycopg

#: Channels of the serial bump (payload "schema:serial") and of new evidence (payload "schema").
#: Channels are per database; the schema in the payload tells installations sharing one
#: database (a schema each, by search_path) apart.
SERIAL_CHANNEL: Final = "reputable_serial"
EVIDENCE_CHANNEL: Final = "reputable_evidence"


def advisory_key(name: str) -> int:
    """Return the signed 64-bit advisory-lock key of *name* (stable across versions)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


#: The policy evaluator's lock, per schema: advisory locks are per database, and two
#: installations may share one database in schemas of their own.
POLICY_LOCK: Final = "reputable:policy-leader"
#: Serialises installing the notify triggers when several nodes start at once.
_DDL_LOCK: Final = advisory_key("reputable:notify-ddl")

#: libpq connection options of the coordination connections: give up connecting after 5 s,
#: and let the client notice a dead server within ~10 s of silence (keepalives).
_CLIENT_OPTIONS: Final[dict[str, Any]] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "application_name": "reputable-coordination",
}
#: The same from the server's side, so it drops a vanished client's session (and its lock).
_SERVER_KEEPALIVES: Final = (
    "SET tcp_keepalives_idle = 5",
    "SET tcp_keepalives_interval = 2",
    "SET tcp_keepalives_count = 3",
)

_NOTIFY_DDL: Final = (
    "CREATE OR REPLACE FUNCTION reputable_serial_notify() RETURNS trigger"
    " LANGUAGE plpgsql AS $$ BEGIN"
    f" PERFORM pg_notify('{SERIAL_CHANNEL}', TG_TABLE_SCHEMA || ':' || NEW.value);"
    " RETURN NULL; END $$",
    "CREATE OR REPLACE TRIGGER reputable_serial_notify AFTER INSERT OR UPDATE ON meta"
    " FOR EACH ROW WHEN (NEW.key = 'serial') EXECUTE FUNCTION reputable_serial_notify()",
    "CREATE OR REPLACE FUNCTION reputable_evidence_notify() RETURNS trigger"
    " LANGUAGE plpgsql AS $$ BEGIN"
    f" PERFORM pg_notify('{EVIDENCE_CHANNEL}', TG_TABLE_SCHEMA); RETURN NULL; END $$",
    "CREATE OR REPLACE TRIGGER reputable_evidence_notify AFTER INSERT ON evidence"
    " FOR EACH STATEMENT EXECUTE FUNCTION reputable_evidence_notify()",
)


def is_postgres(dsn: str) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) DSN."""
    return dsn.startswith(("postgresql://", "postgres://"))


def redact(dsn: str) -> str:
    """Return *dsn* with its password replaced by ``***`` (for messages and logs)."""
    scheme, sep, rest = dsn.partition("://")
    creds, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in creds:
        return dsn
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"


# -- leader election --------------------------------------------------------------------------
class LeaderLock(Protocol):
    """Exactly one holder among all nodes of one store."""

    name: str

    def try_acquire(self) -> bool:
        """Take the lock without waiting, or confirm it is still ours; True while we hold it."""
        ...

    def release(self) -> None:
        """Give the lock up (and close what holds it)."""
        ...


class FileLeaderLock:
    """SQLite: ``flock`` on ``<database>.leader``; the kernel releases it when we die.

    The file is opened once, at construction (before serve drops privileges), and only
    locked and unlocked afterwards.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"flock {path}"
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreError(
                f"cannot open the leader lock file {path}: {exc.strerror};"
                " the folder of the store must be writable"
            ) from exc
        self._held = False

    def try_acquire(self) -> bool:
        if self._held:
            return True
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self._held = True
        with contextlib.suppress(OSError):  # who holds it, for people looking at the file
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)
        return True

    def release(self) -> None:
        if self._fd < 0:
            return
        if self._held:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._held = False
        os.close(self._fd)
        self._fd = -1


def _connect(dsn: str, *, autocommit: bool = True) -> psycopg.Connection[Any]:
    import psycopg

    try:
        conn = psycopg.connect(dsn, autocommit=autocommit, **_CLIENT_OPTIONS)
        for statement in _SERVER_KEEPALIVES:
            conn.execute(statement)
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to {redact(dsn)}: {exc}".strip()) from exc
    return conn


class PostgresLeaderLock:
    """PostgreSQL: a session advisory lock held on a connection of its own.

    :meth:`try_acquire` is called every policy round: while we hold the lock it checks that
    the connection (and so the lock) is still alive with one round trip; a dead connection
    means another node may already lead, so we report False and try again next round.
    """

    def __init__(self, dsn: str, name: str = POLICY_LOCK) -> None:
        self.dsn = dsn
        self.lock = name
        self.name = f"advisory lock {name!r} on {redact(dsn)}"
        self._conn: psycopg.Connection[Any] | None = None
        self._held = False

    def try_acquire(self) -> bool:
        import psycopg

        try:
            if self._held and self._conn is not None:
                self._conn.execute("SELECT 1")
                return True
            if self._conn is None or self._conn.closed:
                self._conn = _connect(self.dsn)
            row = self._conn.execute(
                "SELECT pg_try_advisory_lock(hashtextextended(%s || current_schema(), 0))",
                (self.lock + ":",),
            ).fetchone()
            self._held = bool(row and row[0])
            return self._held
        except (psycopg.Error, StoreError) as exc:
            if self._held:
                log.warning("policy_leadership_lost", lock=self.name, error=str(exc))
            self._drop()
            return False

    def _drop(self) -> None:
        self._held = False
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def release(self) -> None:
        # Unlock first: closing alone frees the lock only once the server has seen the
        # session end, a moment later (another node trying at once would still lose).
        if self._held and self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.execute(
                    "SELECT pg_advisory_unlock(hashtextextended(%s || current_schema(), 0))",
                    (self.lock + ":",),
                )
        self._drop()


class SoleLeader:
    """A store only this process can see (``memory:``): always the leader."""

    name = "sole process"

    def try_acquire(self) -> bool:
        return True

    def release(self) -> None:
        return None


def leader_lock(dsn: str) -> LeaderLock:
    """Return the policy leader lock for the store named by *dsn*."""
    if is_postgres(dsn):
        return PostgresLeaderLock(dsn)
    if dsn.startswith("sqlite:///"):
        db = Path(dsn.removeprefix("sqlite:///"))
        return FileLeaderLock(db.with_name(db.name + ".leader"))
    if dsn.startswith("memory:"):
        return SoleLeader()
    raise StoreError(f"store.dsn {redact(dsn)!r}: no leader election for this kind of store")


# -- change notification ----------------------------------------------------------------------
class ChangeFeed(Protocol):
    """Wakes a waiting node when the store changed (or when it is time to poll)."""

    async def wait(self, timeout: float) -> bool:
        """Wait up to *timeout* seconds; True if woken by a change, False on timeout."""
        ...

    async def close(self) -> None:
        """Stop listening."""
        ...


class PollingFeed:
    """SQLite: no notifications; the caller polls the serial each *timeout*."""

    async def wait(self, timeout: float) -> bool:
        await asyncio.sleep(timeout)
        return False

    async def close(self) -> None:
        return None


def install_notify_triggers(conn: psycopg.Connection[Any]) -> None:
    """Create (or refresh) the NOTIFY triggers on ``meta`` and ``evidence``; idempotent.

    Run by every listening node; the advisory transaction lock keeps two nodes starting at
    once from racing on the catalogue ("tuple concurrently updated").
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
        for statement in _NOTIFY_DDL:
            conn.execute(statement)


class PostgresFeed:
    """PostgreSQL: ``LISTEN`` on *channels*; reconnects on the next wait after a drop.

    While the connection is down, :meth:`wait` just sleeps its timeout (the caller polls
    the serial each round, so nothing is missed, only heard later). A reconnect attempt is
    made at most every *retry* seconds.
    """

    def __init__(
        self, dsn: str, channels: tuple[str, ...] = (SERIAL_CHANNEL,), *, retry: float = 2.0
    ) -> None:
        self.dsn = dsn
        self.channels = channels
        self.retry = retry
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._schema = ""
        self._next_attempt = 0.0
        self.notifications = 0
        self.listening = False

    async def _listen(self) -> psycopg.AsyncConnection[Any] | None:
        import psycopg

        if self._conn is not None and not self._conn.closed:
            return self._conn
        if time.monotonic() < self._next_attempt:
            return None
        self._next_attempt = time.monotonic() + self.retry
        try:
            await asyncio.to_thread(self._install)
            conn = await psycopg.AsyncConnection.connect(
                self.dsn, autocommit=True, **_CLIENT_OPTIONS
            )
            for statement in _SERVER_KEEPALIVES:
                await conn.execute(statement)
            for channel in self.channels:
                await conn.execute(f"LISTEN {channel}")
            cursor = await conn.execute("SELECT current_schema()")
            row = await cursor.fetchone()
            self._schema = str(row[0]) if row else ""
        except (psycopg.Error, StoreError) as exc:
            if self.listening:
                log.warning("change_feed_down", dsn=redact(self.dsn), error=str(exc))
            self.listening = False
            return None
        self._conn = conn
        if not self.listening:
            log.info("change_feed_listening", channels=",".join(self.channels))
        self.listening = True
        return conn

    def _install(self) -> None:
        conn = _connect(self.dsn)
        try:
            install_notify_triggers(conn)
        finally:
            conn.close()

    async def wait(self, timeout: float) -> bool:
        import psycopg

        conn = await self._listen()
        if conn is None:
            await asyncio.sleep(timeout)
            return False
        deadline = time.monotonic() + timeout
        try:
            while (left := deadline - time.monotonic()) > 0:
                async for note in conn.notifies(timeout=left, stop_after=1):
                    if note.payload.split(":", 1)[0] == self._schema:  # ours, not a neighbour's
                        self.notifications += 1
                        return True
        except psycopg.Error as exc:
            log.warning("change_feed_down", dsn=redact(self.dsn), error=str(exc))
            self.listening = False
            await self.close()
            return False
        return False

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


def change_feed(dsn: str, channels: tuple[str, ...] = (SERIAL_CHANNEL,)) -> ChangeFeed:
    """Return the change feed for the store named by *dsn* (LISTEN on PostgreSQL)."""
    if is_postgres(dsn):
        return PostgresFeed(dsn, channels)
    return PollingFeed()

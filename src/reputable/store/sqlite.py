"""The SQL store (every table mixin) and its embedded default back-end: SQLite in WAL mode.

PostgreSQL runs the same SQL through an adapter (store/postgres.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Iterator
from datetime import UTC, datetime
from itertools import repeat
from operator import add
from pathlib import Path
from typing import Any, NamedTuple, TypeAlias

from reputable.core.address import Domain, Subject, format_subject, parse_subject
from reputable.core.cause import Cause
from reputable.core.errors import StoreError
from reputable.listings.model import AllowEntry, Batch, Listing
from reputable.store.bulk import LISTING_UPSERT
from reputable.store.maintenance import StoreGauges, gauges_of, prune_evidence
from reputable.store.migrate import migrations, split_statements
from reputable.store.sqlite_changes import ChangeReads
from reputable.store.sqlite_evidence import EvidenceTables, PolicyWrites, RequestTables
from reputable.store.sqlite_exports import ExportReads
from reputable.store.sqlite_feeds import FeedTables
from reputable.store.sqlite_pages import PageReads
from reputable.store.sqlite_policy import PolicyReads
from reputable.store.sqlite_sources import SourceTables
from reputable.store.sqlite_tokens import TokenTables
from reputable.store.sqlite_tx import DB_ERRORS, transaction
from reputable.store.sqlite_webhooks import WebhookTables

RANGES = "%/%"  # the LIKE pattern of every CIDR listing (answered by _ranges)


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _family(subject: Subject) -> int:
    if isinstance(subject, Domain):
        return 0
    return subject.version


class SQLStore(
    EvidenceTables,
    PolicyWrites,
    RequestTables,
    FeedTables,
    SourceTables,
    TokenTables,
    WebhookTables,
    ExportReads,
    PageReads,
    PolicyReads,
    ChangeReads,
):
    """Listings, evidence and the rest in SQL; every write is one transaction that bumps the serial.

    The back-end is ``_db``: SQLite here (:class:`SQLiteStore`), PostgreSQL through the
    adapter of store/postgres.py (:class:`~reputable.store.postgres.PostgresStore`).
    """

    _range_cache: dict[int, tuple[int, list[Listing]]]

    # -- schema -------------------------------------------------------------------------------
    def _migrate(self) -> None:
        """Apply the migrations this database lacks, each in its own write transaction.

        The version is read again inside each transaction (which holds the writer lock), so
        two processes opening a new database at once apply each migration once.
        """
        db = self._db
        known = migrations(postgres=not isinstance(db, sqlite3.Connection))
        latest = known[-1].version if known else 0
        try:  # the usual case, an up-to-date schema, takes no write lock
            current = self._applied()
        except DB_ERRORS:  # no schema_version table yet
            current = 0
        if current > latest:
            raise StoreError(
                f"database {self.path} has schema version {current}, newer than this"
                f" reputable ({latest}); upgrade reputable"
            )
        if current == latest:
            return
        with transaction(db, f"cannot create the schema table in {self.path}"):
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        for migration in known:
            if migration.version <= current:
                continue
            with transaction(db, f"migration {migration.name} failed on {self.path}"):
                if self._applied() >= migration.version:
                    continue  # another process applied it while we waited for the lock
                for statement in split_statements(migration.sql):
                    db.execute(statement)
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (migration.version,))

    def _applied(self) -> int:
        row = self._db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def schema_version(self) -> int:
        """Return the applied schema version."""
        return int(self._db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0])

    # -- writes -------------------------------------------------------------------------------
    def apply(self, batch: Batch, *, actor: str, action: str) -> None:
        """Insert or replace every listing and allow entry of *batch* in one transaction."""
        with transaction(self._db, f"cannot write to {self.path}") as db:
            db.executemany(
                LISTING_UPSERT,  # the bulk loader's statement (store/bulk.py): one definition
                (
                    (
                        item.subject_text,
                        _family(item.subject),
                        item.cause.value,
                        item.reason,
                        item.source,
                        _ts(item.listed_at),
                        _ts(item.expires_at),
                    )
                    for item in batch.listings
                ),
            )
            db.executemany(
                "INSERT INTO allow (subject, family, note, source, created_at, expires_at)"
                " VALUES (?,?,?,?,?,?) ON CONFLICT (subject, source)"
                " DO UPDATE SET note = excluded.note, expires_at = excluded.expires_at",
                (
                    (
                        item.subject_text,
                        _family(item.subject),
                        item.note,
                        item.source,
                        _ts(item.created_at),
                        _ts(item.expires_at),
                    )
                    for item in batch.allows
                ),
            )
            if len(batch.listings) + len(batch.allows) <= 100:
                for listing in batch.listings:
                    self._audit(
                        actor, action, listing.subject_text, listing.cause.value, listing.reason
                    )
                for allow in batch.allows:
                    self._audit(actor, "allow", allow.subject_text, None, allow.note)
            else:
                self._audit(
                    actor,
                    action,
                    "*",
                    None,
                    f"{len(batch.listings)} listings, {len(batch.allows)} allowlist entries",
                )
            self._bump()

    def remove_listings(
        self, subject: Subject, *, cause: Cause | None, source: str | None, actor: str
    ) -> int:
        """Delete listings of exactly *subject* (optionally one cause/source); return how many."""
        text = format_subject(subject)
        sql = "DELETE FROM listings WHERE subject = ?"
        args: list[str] = [text]
        if cause is not None:
            sql += " AND cause = ?"
            args.append(cause.value)
        if source is not None:
            sql += " AND source = ?"
            args.append(source)
        return self._delete(sql, args, actor, "delist", text, cause)

    def remove_allow(self, subject: Subject, *, actor: str) -> int:
        """Delete allowlist entries of exactly *subject*; return how many."""
        text = format_subject(subject)
        return self._delete(
            "DELETE FROM allow WHERE subject = ?", [text], actor, "unallow", text, None
        )

    def _delete(
        self, sql: str, args: list[str], actor: str, action: str, text: str, cause: Cause | None
    ) -> int:
        with transaction(self._db, f"cannot write to {self.path}") as db:
            count = db.execute(sql, args).rowcount
            if count:
                self._audit(actor, action, text, cause.value if cause else None, f"{count} rows")
                self._bump()
        return int(count)

    # -- reads --------------------------------------------------------------------------------
    def listings(
        self, *, cause: Cause | None = None, active_at: datetime | None = None
    ) -> Iterator[Listing]:
        """Yield listings, optionally of one cause and only those active at *active_at*."""
        sql = "SELECT subject, cause, reason, source, listed_at, expires_at FROM listings"
        where: list[str] = []
        args: list[object] = []
        if cause is not None:
            where.append("cause = ?")
            args.append(cause.value)
        if active_at is not None:
            where.append("(expires_at IS NULL OR expires_at > ?)")
            args.append(active_at.timestamp())
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id"
        for subject, cause_text, reason, source, listed_at, expires_at in self._each(sql, args):
            yield Listing(
                subject=parse_subject(subject),
                cause=Cause(cause_text),
                reason=reason,
                source=source,
                listed_at=datetime.fromtimestamp(listed_at, UTC),
                expires_at=_dt(expires_at),
            )

    def listings_where(
        self,
        *,
        subjects: Collection[str] | None = None,
        like: str | None = None,
        family: int | None = None,
        source_prefix: str | None = None,
        active_at: datetime | None = None,
    ) -> list[Listing]:
        """Return listings filtered by exact subjects, a subject LIKE pattern, family, source."""
        if like == RANGES and subjects is None and source_prefix is None and family is not None:
            return self._ranges(family, active_at)
        where: list[str] = []
        args: list[object] = []
        if subjects is not None:
            if not subjects:
                return []
            where.append(f"subject IN ({','.join('?' * len(subjects))})")
            args.extend(subjects)
        if like is not None:
            head = like[:-1]
            if like.endswith("%") and not any(c in head for c in "%_") and head:
                # Subjects are stored canonical (lower-case), so a plain prefix is also an
                # index range: without it LIKE scans every listing (~0.3 s at 1M).
                where.append("subject >= ? AND subject < ?")
                args.extend([head, head[:-1] + chr(ord(head[-1]) + 1)])
            where.append("subject LIKE ?")
            args.append(like)
        if family is not None:
            where.append("family = ?")
            args.append(family)
        if source_prefix is not None:
            if source_prefix.startswith("policy") and source_prefix == source_prefix.lower():
                # The policy's sources are written lower-case: an index range narrows the
                # scan to them (the OR with LIKE below cannot use the index by itself).
                where.append("source >= ? AND source < ?")
                args.extend([source_prefix, source_prefix + ";"])  # ';' follows ':'
            where.append("(source = ? OR source LIKE ?)")
            args.extend([source_prefix, source_prefix + ":%"])
        if active_at is not None:
            where.append("(expires_at IS NULL OR expires_at > ?)")
            args.append(active_at.timestamp())
        sql = "SELECT subject, cause, reason, source, listed_at, expires_at FROM listings"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [
            Listing(
                subject=parse_subject(subject),
                cause=Cause(cause_text),
                reason=reason,
                source=source,
                listed_at=datetime.fromtimestamp(listed_at, UTC),
                expires_at=_dt(expires_at),
            )
            for subject, cause_text, reason, source, listed_at, expires_at in self._db.execute(
                sql, args
            )
        ]

    def _ranges(self, family: int, active_at: datetime | None) -> list[Listing]:
        """Return the range listings (CIDRs) of *family*, parsed once per store serial.

        ``explain`` and removal requests ask for every range on each call (to find those
        containing an address); parsing them all each time cost ~40 ms per thousand ranges.
        The partial index ``listings_ranges`` makes the re-read after a change cheap.
        """
        serial = self.serial()
        cached = self._range_cache.get(family)
        if cached is None or cached[0] != serial:
            rows = [
                Listing(
                    subject=parse_subject(subject),
                    cause=Cause(cause_text),
                    reason=reason,
                    source=source,
                    listed_at=datetime.fromtimestamp(listed_at, UTC),
                    expires_at=_dt(expires_at),
                )
                for subject, cause_text, reason, source, listed_at, expires_at in self._db.execute(
                    "SELECT subject, cause, reason, source, listed_at, expires_at FROM listings"
                    " WHERE instr(subject, '/') > 0 AND family = ?",
                    (family,),
                )
            ]
            cached = self._range_cache[family] = (serial, rows)
        if active_at is None:
            return list(cached[1])
        return [r for r in cached[1] if r.expires_at is None or r.expires_at > active_at]

    def source_rows(
        self, source_prefix: str, *, active_at: datetime
    ) -> Iterator[tuple[str, str, str, float, float | None]]:
        """Yield (subject, source, reason, listed_at, expires_at) of active listings by source."""
        yield from self._each(
            "SELECT subject, source, reason, listed_at, expires_at FROM listings"
            " WHERE (source = ? OR source LIKE ?) AND (expires_at IS NULL OR expires_at > ?)",
            (source_prefix, source_prefix + ":%", active_at.timestamp()),
        )

    def escalation_rows(
        self, causes: Collection[str], *, active_at: datetime
    ) -> Iterator[tuple[str, int, str, float | None]]:
        """Yield (subject, family, source, expires_at) of active listings of *causes*, cheaply."""
        marks = ",".join("?" * len(causes))
        yield from self._each(
            "SELECT subject, family, source, expires_at FROM listings"
            f" WHERE cause IN ({marks}) AND (expires_at IS NULL OR expires_at > ?)",
            [*causes, active_at.timestamp()],
        )

    def listing_rows(
        self, *, active_at: datetime
    ) -> Iterator[tuple[str, int, str, str, float, float | None]]:
        """Yield (subject, family, cause, reason, listed_at, expires_at) of active listings."""
        yield from self._each(
            "SELECT subject, family, cause, reason, listed_at, expires_at FROM listings"
            " WHERE expires_at IS NULL OR expires_at > ?",
            (active_at.timestamp(),),
        )

    def allow_rows(self, *, active_at: datetime) -> Iterator[tuple[str, int, str, float | None]]:
        """Yield (subject, family, note, expires_at) of active allowlist entries."""
        yield from self._each(
            "SELECT subject, family, note, expires_at FROM allow"
            " WHERE expires_at IS NULL OR expires_at > ?",
            (active_at.timestamp(),),
        )

    def allows(self, *, active_at: datetime | None = None) -> Iterator[AllowEntry]:
        """Yield allowlist entries, optionally only those active at *active_at*."""
        sql = "SELECT subject, note, source, created_at, expires_at FROM allow"
        args: list[object] = []
        if active_at is not None:
            sql += " WHERE expires_at IS NULL OR expires_at > ?"
            args.append(active_at.timestamp())
        for subject, note, source, created_at, expires_at in self._each(sql + " ORDER BY id", args):
            yield AllowEntry(
                subject=parse_subject(subject),
                note=note,
                source=source,
                created_at=datetime.fromtimestamp(created_at, UTC),
                expires_at=_dt(expires_at),
            )

    def serial(self) -> int:
        """Return the change counter; it increases on every committed change."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'serial'").fetchone()
        return int(row[0])

    def gauges(self, now: datetime) -> StoreGauges:
        """Return what /metrics and ``status`` report, read through this store's connection."""
        return gauges_of(self._db, now)

    def prune_batch(self, before: datetime, after_id: int) -> tuple[int, int]:
        """Delete one batch of evidence observed before *before* (see ``prune_evidence``)."""
        return prune_evidence(self._db, before, after_id=after_id)

    def close(self) -> None:
        """Release the connection."""
        raise NotImplementedError


#: Ids per window of `SQLiteStore.listing_chunks` (fewer rows where ids have gaps).
WINDOW = 8192
#: The first never-expiring row from an id on: where the next window starts, and what its
#: rows are compared with.
_HEAD_SQL = (
    "SELECT id, cause, reason, listed_at, subject FROM listings"
    " WHERE expires_at IS NULL AND id >= ? ORDER BY id LIMIT 1"
)
#: One window of never-expiring listings, checked and folded by SQLite: a flag for a row that
#: is no IPv4 host of the first row's cause and listed_at, one for a reason other than its
#: reason, and the subjects as one string. Comparing with the first row costs less than
#: min() and max() per column.
_WINDOW_SQL = (
    "SELECT count(*), max(family <> 4 OR cause <> ?2 OR listed_at <> ?4), max(reason <> ?3),"
    " group_concat(subject, char(0)){reasons} FROM listings NOT INDEXED"
    " WHERE id >= ?1 AND id < ?5 AND expires_at IS NULL"
)
_SHARED_SQL = _WINDOW_SQL.format(reasons="")
#: The same with the reasons as one string too: for windows of per-host reasons.
_OWN_SQL = _WINDOW_SQL.format(reasons=", group_concat(reason, char(0))")
#: The same where every reason should be ?6 || subject || ?7, the subject first found at
#: ?8: its third column flags a row whose reason is not (see `NamedReasons`).
_NAMED_SQL = _WINDOW_SQL.replace(
    "max(reason <> ?3)", "max(reason <> ?6 || subject || ?7 OR instr(reason, subject) <> ?8)"
).format(reasons="")
_ROWS = "SELECT subject, family, cause, reason, listed_at, expires_at FROM listings"
_ID_ROWS = _ROWS.replace("SELECT ", "SELECT id, ", 1)
#: A window's hosts of one cause and listed_at (?2, ?4) with the reason ?3 (one for all) or
#: ?6 || subject || ?7 (each naming its host, first found at ?8), as the queries above test.
_SHARED_HOST = "family = 4 AND cause = ?2 AND listed_at = ?4 AND instr(subject, '/') = 0"
_NAMED_HOST = f"{_SHARED_HOST} AND reason = ?6 || subject || ?7 AND instr(reason, subject) = ?8"
_SHARED_HOST += " AND reason = ?3"
#: A window's subjects in id order, each row that is no such host marked: its subject, char(1)
#: and its id. One pass, as the checks above.
_MARKED_SQL = (
    "SELECT count(*), group_concat(CASE WHEN {host} THEN subject"
    " ELSE subject || char(1) || id END, char(0)) FROM listings NOT INDEXED"
    " WHERE id >= ?1 AND id < ?5 AND expires_at IS NULL"
)
#: At most this share of a window's rows may be others for it to come as hosts with others.
OTHERS_SHARE = 4


class NamedReasons(NamedTuple):
    """The reasons of a window of hosts that all name their host alike: the reason of subject
    S is ``before + S + after``, S first found right after *before*."""

    before: str
    after: str


#: (subjects, cause, reasons, listed_at, others) of a window of never-expiring IPv4 hosts:
#: *others* are the window's rows that are no such host, each as (its place in *subjects*,
#: which holds every row's subject, its row); their items of *reasons* are not theirs.
HostColumns: TypeAlias = tuple[
    list[str], str, list[str] | NamedReasons, float, "list[tuple[int, ListingRow]]"
]
#: How a reader splits a host's reason around its subject (build.around), or None.
Around: TypeAlias = Callable[[str, str], "tuple[str, str] | None"]
ListingRow: TypeAlias = tuple[str, int, str, str, float, float | None]


def _mode(reasons: list[str], subjects: str, around: Around | None) -> str:
    """Return how the next window's reasons are likely read, from this window's."""
    if reasons.count(reasons[0]) == len(reasons):
        return "shared"
    if around is None:
        return "own"
    hosts = subjects.split("\0")
    parts = around(hosts[0], reasons[0])
    if parts is None or len(hosts) != len(reasons):
        return "own"
    before, after = parts
    joined = list(map(add, map(add, repeat(before), hosts), repeat(after)))
    return "named" if joined == reasons else "own"


class _Rule(NamedTuple):
    """What makes a row one of a window's hosts: IPv4, no ``/``, this cause and listed_at, and
    this *reason* for all (*named* None) or each reason naming its host (*named*: before,
    after)."""

    cause: str
    listed_at: float
    reason: str
    named: tuple[str, str] | None


def _with_others(db: sqlite3.Connection, low: int, high: int, rule: _Rule) -> HostColumns | None:
    """Return the window [*low*, *high*) as its hosts under *rule* with the few other rows
    among them, or None when they are more than a share of it (or a check fails).

    A file that mixes ranges with its hosts (rbldnsd) puts ~100 ranges in every window: read
    as rows, its 8,192 rows were tuples, and the build re-packed the runs between the ranges
    in Python (docs/benchmarks.md, "Ranges among an import's hosts, read apart"). One pass
    marks the others among the subjects; only they are read as rows, by id.
    """
    params: tuple[object, ...] = (low, rule.cause, rule.reason, rule.listed_at, high)
    if rule.named is None:  # SQLite wants exactly the parameters the statement numbers
        sql = _MARKED_SQL.format(host=_SHARED_HOST)
        before = after = ""
    else:
        before, after = rule.named
        params += (before, after, len(before) + 1)
        sql = _MARKED_SQL.format(host=_NAMED_HOST)
    n, joined = db.execute(sql, params).fetchone()
    if not n:
        return None
    places: list[int] = []
    ids: list[int] = []
    at, seen, mark = 0, 0, joined.find("\1")
    while mark >= 0 and len(places) <= n // OTHERS_SHARE:
        seen += joined.count("\0", at, mark)  # items before the marked one
        end = joined.find("\0", mark)
        at = len(joined) if end < 0 else end
        digits = joined[mark + 1 : at]
        if not (digits.isascii() and digits.isdigit()):
            return None  # a char(1) in a subject
        places.append(seen)
        ids.append(int(digits))
        mark = joined.find("\1", at)
    subjects = joined.split("\0")
    if mark >= 0 or len(subjects) != n:
        return None  # too many others, or a NUL in a subject
    rows: list[ListingRow] = []
    if ids:
        # The ids are ints parsed above, so writing them into the statement is safe; one
        # statement, where binding would need one variable each (SQLite allows 999 before 3.32).
        listed = ",".join(map(str, ids))
        found = db.execute(f"{_ID_ROWS} WHERE id IN ({listed}) ORDER BY id").fetchall()
        if [row[0] for row in found] != ids:
            return None
        rows = [row[1:] for row in found]
    for place, row, id_ in zip(places, rows, ids, strict=True):
        if subjects[place] != f"{row[0]}\1{id_}":
            return None
        subjects[place] = row[0]
    reasons = [rule.reason] * n if rule.named is None else NamedReasons(before, after)
    return subjects, rule.cause, reasons, rule.listed_at, list(zip(places, rows, strict=True))


class _Windows:
    """The windows of one `SQLiteStore.listing_chunks` read, each checked as its hosts in
    SQL, with what one window tells about the next."""

    def __init__(self, db: sqlite3.Connection, around: Around | None) -> None:
        self.db, self.around = db, around
        # How the last window's hosts' reasons were: one for all ("shared", not read),
        # each naming its host alike ("named", checked, not read) or else ("own", read);
        # "mixed": hosts under `rule` with a few other rows among them (`_with_others`).
        self.mode = "shared"
        self.rule: _Rule | None = None  # the hosts of the last window that came as hosts

    def hosts(self, head: tuple[Any, ...], high: int) -> HostColumns | None:
        """Return the window from *head* (`_HEAD_SQL`'s row) to *high* as `HostColumns`, or
        None when it comes as rows."""
        db, rule = self.db, self.rule
        low, cause, reason, listed_at, first = head
        if self.mode == "mixed" and rule is not None:  # one pass, whatever the first row
            chunk = _with_others(db, low, high, rule)
            if chunk is not None:
                return chunk
            self.mode = "shared" if rule.named is None else "named"
        params = (low, cause, reason, listed_at, high)
        reasons: list[str] | NamedReasons | None = None
        found: tuple[Any, ...] | None = None
        if self.mode == "shared":
            found = db.execute(_SHARED_SQL, params).fetchone()
            if not found[1] and not found[2]:
                reasons = [reason] * found[0]
        around = self.around if self.mode != "own" else None
        parts = around(first, reason) if around is not None else None
        if reasons is None and parts is not None and (found is None or not found[1]):
            before, after = parts
            named = (*params, before, after, len(before) + 1)
            found = db.execute(_NAMED_SQL, named).fetchone()
            if not found[1] and not found[2]:
                reasons, self.mode = NamedReasons(before, after), "named"
        if found is not None and (reasons is None or "/" in found[3]):
            # Hosts with a few other rows (ranges) among them: the hosts' rule from the
            # first row, or from the last hosts' window when that row is a range. A window
            # of ranges is not tried: its pass would be spent for nothing.
            guess = _Rule(cause, listed_at, reason, None if isinstance(reasons, list) else parts)
            if "/" in first and rule is not None:
                guess = rule
            few = found[3].count("/") <= found[0] // OTHERS_SHARE
            if few and (guess.named is not None or not found[2] or guess is rule):
                chunk = _with_others(db, low, high, guess)
                if chunk is not None:
                    self.rule, self.mode = guess, "mixed"
                    return chunk
        if reasons is None and (found is None or not found[1]):
            found = db.execute(_OWN_SQL, params).fetchone()
            if not found[1]:
                texts = found[4].split("\0")
                reasons, self.mode = texts, _mode(texts, found[3], self.around)
        assert found is not None  # one of the reads above ran
        n, other, _, subjects = found[:4]
        hosts = None if other or "/" in subjects else subjects.split("\0")
        # (a "\0" in a subject or reason shows as a count that differs)
        counted = isinstance(reasons, NamedReasons) or len(reasons or ()) == n
        if hosts is None or len(hosts) != n or reasons is None or not counted:
            return None
        if isinstance(reasons, NamedReasons):
            self.rule = _Rule(cause, listed_at, reason, (reasons.before, reasons.after))
        elif reasons.count(reason) == n:
            self.rule = _Rule(cause, listed_at, reason, None)
        return hosts, cause, reasons, listed_at, []


class SQLiteStore(SQLStore):
    """Listings in one SQLite file in WAL mode."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._range_cache = {}
        try:
            # One connection, used by one task at a time; the metrics thread only reads the serial.
            self._sqlite = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self._db = self._sqlite
            self._sqlite.execute("PRAGMA journal_mode=WAL")
            self._sqlite.execute("PRAGMA synchronous=NORMAL")
            self._sqlite.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from exc

    def close(self) -> None:
        """Release the connection."""
        self._sqlite.close()

    def listing_chunks(
        self, *, active_at: datetime, around: Around | None = None
    ) -> Iterator[list[ListingRow] | HostColumns]:
        """Yield the rows of `listing_rows`, in its order, in chunks for the snapshot build.

        A chunk is a list of rows, or `HostColumns` for a window of ids whose never-expiring
        rows are all IPv4 hosts of one cause and listed_at (a bulk import): SQLite checks
        that and joins their subjects and reasons, so no tuple or float is made per row. A
        window where a few rows are not such hosts (an rbldnsd file's ranges among its hosts)
        comes as `HostColumns` too, those rows beside it with their places.
        Iterating ``listing_rows`` over the 10M bench store cost 20.0 s CPU: ~11 s for six
        objects per row, ~8 s for its ``OR`` (every row found through the expires_at index,
        then a table seek; a table scan: 12.2 s) (docs/benchmarks.md, "Snapshot build at
        10M with ranges"). The order is the one SQLite gives that ``OR`` (atom ids follow
        it): never-expiring rows by id, then the others by (expires_at, id); one read
        transaction holds it all.
        """
        db = self._sqlite
        own = not db.in_transaction
        if own:
            db.execute("BEGIN")
        try:
            windows = _Windows(db, around)
            head = db.execute(_HEAD_SQL, (0,)).fetchone()
            while head is not None:
                low, high = head[0], head[0] + WINDOW
                chunk = windows.hosts(head, high)
                if chunk is None:
                    yield db.execute(
                        f"{_ROWS} NOT INDEXED WHERE id >= ? AND id < ? AND expires_at IS NULL",
                        (low, high),
                    ).fetchall()
                else:
                    yield chunk
                head = db.execute(_HEAD_SQL, (high,)).fetchone()
            cursor = db.execute(
                f"{_ROWS} WHERE expires_at > ? ORDER BY expires_at, id", (active_at.timestamp(),)
            )
            while rows := cursor.fetchmany(WINDOW):
                yield rows
        finally:
            if own:
                db.execute("COMMIT")

"""SQLite tables of stages 1-3 beyond listings: evidence, hosting map, policy periods, requests."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import chain
from typing import Final

from reputable.core.cause import Cause
from reputable.evidence.model import (
    HOSTED_CAUSES,
    Evidence,
    EvidenceRecord,
    EvidenceSubject,
    json_encoder,
    scoring_target,
)
from reputable.listings.model import AuditEntry, DelistRequest
from reputable.listings.policy import Period, PolicyChanges
from reputable.store.sqlite_tx import Connection, SQLiteTables, transaction

#: Page cache for evidence writes, in SQLite's negative-KiB form: 64 MiB.
_CACHE_KIB: Final = -65536
#: ``json.dumps(detail, sort_keys=True, default=str)`` without building an encoder per row.
_DETAIL_JSON: Final = json_encoder(", ", ": ")


def evidence_table_rows(items: Iterable[Evidence]) -> Iterator[tuple[object, ...]]:
    """Yield the evidence table's row of each item (subject texts computed once per subject)."""
    texts: dict[EvidenceSubject, tuple[str, str]] = {}
    for e in items:
        subject = e.subject
        known = texts.get(subject)
        if known is None:
            known = texts[subject] = (str(subject), scoring_target(subject, None))
        domain = e.related_domain
        detail = e.detail
        yield (
            e.key,
            known[0],
            domain.name if domain and e.cause in HOSTED_CAUSES else known[1],  # = e.target
            e.cause.value,
            e.source,
            e.observed_at.timestamp(),
            e.weight,
            domain.name if domain else None,
            "{}" if type(detail) is dict and not detail else _DETAIL_JSON(detail),
        )


def insert_evidence(db: Connection, items: Iterable[Evidence]) -> int:
    """Insert *items* inside the caller's transaction (repeated keys ignored); return how many were new.

    Every row goes into four B-trees (the unique key, target, subject, domain); the key is a
    digest, so its inserts land all over the index. With SQLite's default 2 MB page cache a
    large import re-reads index pages again and again: the connection's cache is raised to
    at least 64 MiB (measured: 1,000,000 rows 10.3 s -> 8.2 s). Journal and synchronous stay
    as the store set them (WAL, NORMAL: a commit survives a crash of the process).
    """
    _raise_cache(db)
    before = db.total_changes
    db.executemany(
        "INSERT OR IGNORE INTO evidence (key, subject, target, cause, source,"
        " observed_at, weight, domain, detail) VALUES (?,?,?,?,?,?,?,?,?)",
        evidence_table_rows(items),
    )
    return db.total_changes - before


def _raise_cache(db: Connection) -> None:
    """Raise SQLite's page cache to :data:`_CACHE_KIB` (PostgreSQL sizes its own buffers)."""
    if not isinstance(db, sqlite3.Connection):
        return
    if _CACHE_KIB < db.execute("PRAGMA cache_size").fetchone()[0] < 0:  # a size set in pages stays
        db.execute(f"PRAGMA cache_size = {_CACHE_KIB}")


class EvidenceTables(SQLiteTables):
    """Mixin for SQLiteStore."""

    # -- evidence ---------------------------------------------------------------------------
    def add_evidence_rows(self, rows: Iterable[tuple[object, ...]]) -> int:
        """Store rows made by :func:`evidence_table_rows` (e.g. in another process); return how many were new."""
        with transaction(self._db, f"cannot write evidence to {self.path}") as db:
            _raise_cache(db)
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO evidence (key, subject, target, cause, source,"
                " observed_at, weight, domain, detail) VALUES (?,?,?,?,?,?,?,?,?)",
                rows,
            )
            added = db.total_changes - before
        return added

    def add_evidence(self, items: Iterable[Evidence]) -> int:
        """Store *items* (a repeated idempotency key is ignored); return how many were new."""
        with transaction(self._db, f"cannot write evidence to {self.path}") as db:
            added = insert_evidence(db, items)
        return added

    def evidence_rows(
        self, targets: Collection[str] | None = None
    ) -> Iterator[tuple[str, str, float, float]]:
        """Yield (target, cause, observed_at, weight) of all evidence, or of *targets* only.

        The cursors are chained, not yielded from: no Python frame resumed per row.
        """
        sql = "SELECT target, cause, observed_at, weight FROM evidence"
        if targets is None:
            if getattr(self._db, "stream", None) is None:
                return iter(self._db.execute(sql))  # SQLite's cursor steps as it is read
            return self._each(sql)  # PostgreSQL: server-side batches, memory flat
        return chain.from_iterable(
            self._db.execute(f"{sql} WHERE target IN ({','.join('?' * len(chunk))})", chunk)
            for chunk in self._chunks(sorted(targets))
        )

    def evidence_targets_since(
        self, after_id: int, *, observed_by: float | None = None
    ) -> tuple[set[str], int]:
        """Return the targets of evidence stored after id *after_id*, and the new cursor.

        The cursor is the newest id, except that evidence observed after *observed_by* (a
        sender whose clock runs ahead, a replay) keeps it below itself: such evidence does not
        count yet, so its targets must come round again once it does.
        """
        rows = self._db.execute(
            "SELECT id, target, observed_at FROM evidence WHERE id > ?", (after_id,)
        ).fetchall()
        if not rows:
            return set(), after_id
        ahead = [i for i, _, at in rows if observed_by is not None and at > observed_by]
        cursor = min(ahead) - 1 if ahead else max(i for i, _, _ in rows)
        return {t for _, t, _ in rows}, cursor

    def evidence_cursor(self, after_id: int, *, observed_by: float) -> int:
        """Return the cursor :meth:`evidence_targets_since` would, without reading the rows.

        A full evaluation re-decides every target, so it only needs the position: the newest
        id, or the id before the first one observed after *observed_by*.
        """
        (ahead,) = self._db.execute(
            "SELECT MIN(id) FROM evidence WHERE id > ? AND observed_at > ?", (after_id, observed_by)
        ).fetchone()
        if ahead is not None:
            return int(ahead) - 1
        (newest,) = self._db.execute("SELECT MAX(id) FROM evidence").fetchone()
        return max(after_id, int(newest or 0))

    def all_targets(self) -> set[str]:
        """Return every target that has evidence."""
        return {t for (t,) in self._each("SELECT DISTINCT target FROM evidence")}

    def evidence_records(self, subjects: Sequence[str], limit: int = 200) -> list[EvidenceRecord]:
        """Return the newest evidence whose subject or target is one of *subjects*."""
        marks = ",".join("?" * len(subjects))
        rows = self._db.execute(
            "SELECT id, subject, target, cause, source, observed_at, weight, domain, detail"
            f" FROM evidence WHERE target IN ({marks}) OR (subject != target AND subject IN ({marks}))"
            " ORDER BY observed_at DESC LIMIT ?",
            [*subjects, *subjects, limit],
        ).fetchall()
        return [
            EvidenceRecord(
                i, s, t, Cause(c), src, datetime.fromtimestamp(at, UTC), w, d, json.loads(det)
            )
            for i, s, t, c, src, at, w, d, det in rows
        ]

    def clean_targets(self) -> set[str]:
        """Return the targets that have positive (clean) evidence."""
        return {
            t for (t,) in self._each("SELECT DISTINCT target FROM evidence WHERE cause = 'clean'")
        }

    def clean_targets_in(self, heads: Collection[str], *, ipv6: bool = False) -> set[str]:
        """Return the targets with positive evidence whose text starts with one of *heads*.

        A head ends in "." or ":" ("10.1.2.", "2001:db8:5:"): its targets are the range from
        the head to the head with its last character's successor in its place, read off the
        partial index of clean evidence (byte order on both stores). *ipv6*: every IPv6 one
        as well. An incremental evaluation reads the few networks that may escalate instead
        of every clean target (bench/policy_scale.py).
        """
        found: set[str] = set()
        sql = "SELECT DISTINCT target FROM evidence WHERE cause = 'clean' AND target >= ? AND target < ?"
        ranges = [(head, head[:-1] + chr(ord(head[-1]) + 1)) for head in sorted(heads)]
        if getattr(self._db, "stream", None) is not None:
            # PostgreSQL: one statement per 500 ranges (a BitmapOr of index ranges), not a round
            # trip per range (306 of them took 0.2-0.4 s of an incremental run). SQLite scans
            # the whole index for an OR of ranges: it keeps one search per range.
            for i in range(0, len(ranges), 500):
                part = ranges[i : i + 500]
                within = " OR ".join(["(target >= ? AND target < ?)"] * len(part))
                found.update(
                    t
                    for (t,) in self._db.execute(
                        "SELECT DISTINCT target FROM evidence WHERE cause = 'clean'"
                        f" AND ({within})",
                        [bound for pair in part for bound in pair],
                    )
                )
            ranges = []
        for head, end in ranges:
            found.update(t for (t,) in self._db.execute(sql, (head, end)))
        if ipv6:
            found.update(
                t
                for (t,) in self._db.execute(
                    "SELECT DISTINCT target FROM evidence WHERE cause = 'clean'"
                    " AND instr(target, ':') > 0"
                )
            )
        return found

    # -- shared hosting -------------------------------------------------------------------------
    def add_hosting(self, pairs: Iterable[tuple[str, str]]) -> int:
        """Record (ip, domain) pairs of the shared-hosting map; return how many were new."""
        with transaction(self._db, f"cannot write hosting map to {self.path}") as db:
            before = db.total_changes
            db.executemany("INSERT OR IGNORE INTO hosting (ip, domain) VALUES (?, ?)", pairs)
            added = db.total_changes - before
        return added

    def domains_on(self, ips: Collection[str]) -> dict[str, set[str]]:
        """Return, per IP, the domains it hosts: the hosting map and domains seen in its evidence."""
        out: dict[str, set[str]] = {ip: set() for ip in ips}
        for chunk in self._chunks(sorted(ips)):
            marks = ",".join("?" * len(chunk))
            for ip, domain in self._db.execute(
                f"SELECT ip, domain FROM hosting WHERE ip IN ({marks}) UNION SELECT subject, domain"
                f" FROM evidence WHERE domain IS NOT NULL AND subject != target AND subject IN ({marks})",
                [*chunk, *chunk],
            ):
                out[ip].add(domain)
        return out

    def ips_of(self, domains: Collection[str]) -> set[str]:
        """Return the IPs hosting any of *domains* (hosting map and evidence)."""
        found: set[str] = set()
        for chunk in self._chunks(sorted(domains)):
            marks = ",".join("?" * len(chunk))
            found.update(
                ip
                for (ip,) in self._db.execute(
                    f"SELECT ip FROM hosting WHERE domain IN ({marks}) UNION SELECT subject FROM"
                    f" evidence WHERE domain IN ({marks})",
                    [*chunk, *chunk],
                )
            )
        return found

    # -- policy periods and cursors -------------------------------------------------------------
    def periods(self, targets: Collection[str] | None) -> dict[tuple[str, Cause], list[Period]]:
        """Return the policy's listing periods per (target, cause), oldest first (None: all)."""
        out: dict[tuple[str, Cause], list[Period]] = {}
        sql = "SELECT subject, cause, listed_at, ends_at, ended_by, min_until FROM policy_periods"
        if targets is None:  # a full evaluation: one pass, no parameter lists
            batches: Iterable[tuple[str, Sequence[str]]] = [(f"{sql} ORDER BY listed_at", ())]
        else:
            batches = (
                (f"{sql} WHERE subject IN ({','.join('?' * len(chunk))}) ORDER BY listed_at", chunk)
                for chunk in self._chunks(sorted(targets))
            )
        causes = {c.value: c for c in Cause}
        for query, args in batches:
            for subject, cause, listed_at, ends_at, ended_by, min_until in self._each(query, args):
                out.setdefault((subject, causes[cause]), []).append(
                    Period(listed_at, min_until, ends_at, ended_by)
                )
        return out

    def granted_removals(self) -> dict[str, float]:
        """Return, per subject, when its latest granted removal request was decided."""
        return _granted(self._db)

    def cursor(self, name: str) -> int:
        """Return the saved position *name* (0 when never saved)."""
        row = self._db.execute("SELECT value FROM cursors WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    # -- delisting requests and history ---------------------------------------------------------
    def delist_requests(
        self, *, subject: str | None = None, status: str | None = None
    ) -> list[DelistRequest]:
        """Return removal requests, newest first, optionally for one subject or status."""
        sql = "SELECT id, subject, contact, note, created_at, status, decided_at, decided_by, why, kind FROM delist_requests"
        where, args = [], []
        if subject is not None:
            where.append("subject = ?")
            args.append(subject)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [
            DelistRequest(
                i,
                s,
                c,
                n,
                datetime.fromtimestamp(at, UTC),
                st,
                datetime.fromtimestamp(d, UTC) if d is not None else None,
                by,
                why,
                kind,
            )
            for i, s, c, n, at, st, d, by, why, kind in self._db.execute(
                sql + " ORDER BY id DESC", args
            )
        ]

    def history(self, subjects: Sequence[str], limit: int = 100) -> list[AuditEntry]:
        """Return the audit history of *subjects*, newest first."""
        marks = ",".join("?" * len(subjects))
        return [
            AuditEntry(datetime.fromtimestamp(at, UTC), actor, action, subject, cause, detail)
            for at, actor, action, subject, cause, detail in self._db.execute(
                f"SELECT at, actor, action, subject, cause, detail FROM audit WHERE subject IN ({marks})"
                " ORDER BY id DESC LIMIT ?",
                [*subjects, limit],
            )
        ]


class PolicyWrites(SQLiteTables):
    """Mixin for SQLiteStore: the policy engine's transactional writes."""

    def set_cursor(self, name: str, value: int) -> None:
        """Save position *name*."""
        self._db.execute(
            "INSERT INTO cursors (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def apply_policy(self, changes: PolicyChanges, *, actor: str, now: float) -> None:
        """Apply one evaluation's changes atomically and move the serial once."""
        if changes.empty():
            return
        with (
            _pages_in_memory(self._db),
            transaction(self._db, f"cannot apply policy to {self.path}") as db,
        ):
            moved = _moved_subjects(db, changes)
            # executemany: one statement per kind of change, not per row (bench/policy_scale.py).
            db.executemany(
                "DELETE FROM listings WHERE source = ?",
                [(source,) for subject, source in changes.drops if subject is None],
            )
            db.executemany(
                "DELETE FROM listings WHERE subject = ? AND source = ?",
                [(subject, source) for subject, source in changes.drops if subject is not None],
            )
            db.executemany(
                "UPDATE listings SET reason = ?, listed_at = ?, expires_at = ? WHERE source = ?",
                [(why, listed, until, source) for source, why, listed, until in changes.retimes],
            )
            db.executemany(
                "UPDATE listings SET expires_at = ? WHERE subject = ? AND cause = ? AND source = ?"
                " AND (expires_at IS NULL OR expires_at > ?)",
                [
                    (min(ended_at, now), subject, cause.value, source, now)
                    for subject, cause, source, ended_at, _ in changes.ends
                ],
            )
            _audits(db, actor, "delist", [(s, c.value, why) for s, c, _, _, why in changes.ends])
            db.executemany(
                "INSERT INTO listings (subject, family, cause, reason, source, listed_at, expires_at)"
                " VALUES (?,?,?,?,?,?,?) ON CONFLICT (subject, cause, source) DO UPDATE SET"
                " reason = excluded.reason, expires_at = excluded.expires_at, listed_at = excluded.listed_at",
                [
                    (subject, _family_of(subject), cause.value, reason, source, listed, until)
                    for subject, cause, reason, source, listed, until in changes.upserts
                ],
            )
            db.executemany(
                "INSERT INTO policy_periods (subject, cause, listed_at, min_until, ends_at, ended_by)"
                " VALUES (?,?,?,?,?,?)",
                [
                    (target, cause.value, p.listed_at, p.min_until, p.ends_at, p.ended_by)
                    for target, cause, p in changes.new_periods
                ],
            )
            _audits(
                db,
                actor,
                "list",
                [
                    (target, cause.value, "policy listing")
                    for target, cause, _ in changes.new_periods
                ],
            )
            db.executemany(
                "UPDATE policy_periods SET ends_at = ?, ended_by = ? WHERE subject = ? AND cause = ?"
                " AND listed_at = ?",
                [
                    (ends_at, ended_by, target, cause.value, listed_at)
                    for target, cause, listed_at, ends_at, ended_by in changes.period_updates
                ],
            )
            at = datetime.now(UTC).timestamp()
            db.execute(
                "INSERT INTO audit (at, actor, action, subject, cause, detail) VALUES (?,?,?,?,?,?)",
                (at, actor, MOVED, "", None, " ".join(moved)),
            )
            # Kept a day: only the rebuild after them reads them (by the subject index: ""),
            # and a base older than that compares whole zones (overlay.MOVED_KEPT).
            db.execute(
                "DELETE FROM audit WHERE subject = '' AND action = ? AND at < ?",
                (MOVED, at - MOVED_KEPT),
            )
            self._bump()


@contextmanager
def _pages_in_memory(db: Connection) -> Iterator[None]:
    """Keep SQLite's statement journals and dirty pages in memory for the block (PostgreSQL: no-op).

    Every upsert in a transaction keeps the pages it changes in a statement journal, a
    temporary file once past 64 KiB: an incremental run's 3,691 listing upserts wrote 6,656
    times to it (strace, bench/policy_scale.py). In memory they are the same copies without
    the system calls. Set before BEGIN (SQLite decides where at the start of a transaction)
    and put back after, so other reads keep sorting big results on disk.
    """
    if not isinstance(db, sqlite3.Connection):
        yield
        return
    # The transaction changes more pages than the default 2 MB cache holds (1,843 in the
    # incremental run): SQLite spilled them to the WAL mid-way and wrote most twice (6,254
    # WAL writes, 3,684 with the cache of an import). Raised once, as an import raises it.
    _raise_cache(db)
    (before,) = db.execute("PRAGMA temp_store").fetchone()
    db.execute("PRAGMA temp_store = MEMORY")
    try:
        yield
    finally:
        db.execute(f"PRAGMA temp_store = {int(before)}")


#: Audit action of the one row each policy transaction writes: its detail names every subject
#: whose listing rows the transaction deleted, retimed or wrote (space-separated), so a
#: snapshot rebuilt after it can say what changed (publication/snapshot/overlay.py) and a
#: zone transfer send just that (IXFR). Subject "": no subject's history shows it.
MOVED = "moved"
#: Seconds a ``moved`` row is kept (each may name thousands of subjects; one per policy run).
MOVED_KEPT = 86_400.0


def _moved_subjects(db: Connection, changes: PolicyChanges) -> list[str]:
    """Return the subjects *changes* touches, read before the deletes and retimes by source
    (whose rows name no subject)."""
    subjects: set[str] = set()
    by_source = {source for subject, source in changes.drops if subject is None}
    by_source.update(source for source, _, _, _ in changes.retimes)
    for source in sorted(by_source):
        subjects.update(
            str(s)
            for (s,) in db.execute(
                "SELECT DISTINCT subject FROM listings WHERE source = ?", (source,)
            )
        )
    subjects.update(subject for subject, _ in changes.drops if subject is not None)
    subjects.update(subject for subject, _, _, _, _ in changes.ends)
    subjects.update(row[0] for row in changes.upserts)
    subjects.update(target for target, _, _ in changes.new_periods)
    return sorted(subjects)


def _audits(db: Connection, actor: str, action: str, items: list[tuple[str, str, str]]) -> None:
    """Record (subject, cause, detail) audit entries of one *action* in one statement."""
    at = datetime.now(UTC).timestamp()
    db.executemany(
        "INSERT INTO audit (at, actor, action, subject, cause, detail) VALUES (?,?,?,?,?,?)",
        [(at, actor, action, subject, cause, detail) for subject, cause, detail in items],
    )


def _family_of(subject: str) -> int:
    if ":" in subject:
        return 6
    if subject.replace(".", "").replace("/", "").isdigit():
        return 4
    return 0


def _granted(db: Connection) -> dict[str, float]:
    return {
        s: float(t)
        for s, t in db.execute(
            "SELECT subject, MAX(decided_at) FROM delist_requests WHERE status = 'granted'"
            " AND kind = 'removal' GROUP BY subject"
        )
    }


class RequestTables(SQLiteTables):
    """Mixin for SQLiteStore: removal requests and ending listings early."""

    def last_evidence_at(self, subjects: Sequence[str]) -> float | None:
        """Return when the newest evidence about any of *subjects* was observed."""
        marks = ",".join("?" * len(subjects))
        row = self._db.execute(
            f"SELECT MAX(observed_at) FROM evidence WHERE target IN ({marks})"
            f" OR (subject != target AND subject IN ({marks}))",
            [*subjects, *subjects],
        ).fetchone()
        return None if row[0] is None else float(row[0])

    def add_delist_request(
        self, subject: str, contact: str, note: str, now: float, *, kind: str = "removal"
    ) -> int:
        """Record a pending removal (or carve-out) request; return its id."""
        row = self._db.execute(
            "INSERT INTO delist_requests (subject, contact, note, created_at, status, kind)"
            " VALUES (?,?,?,?,'pending',?) RETURNING id",
            (subject, contact, note, now, kind),
        ).fetchone()
        self._audit(contact, "delist_request", subject, None, note)
        return int(row[0])

    def decide_delist(self, request_id: int, *, status: str, by: str, why: str, now: float) -> None:
        """Mark request *request_id* granted or denied."""
        self._db.execute(
            "UPDATE delist_requests SET status = ?, decided_at = ?, decided_by = ?, why = ? WHERE id = ?",
            (status, now, by, why, request_id),
        )
        row = self._db.execute(
            "SELECT subject FROM delist_requests WHERE id = ?", (request_id,)
        ).fetchone()
        self._audit(by, f"delist_{status}", row[0] if row else "?", None, why)

    def end_listings(
        self,
        subject: str,
        *,
        now: float,
        actor: str,
        why: str,
        listed_before: float | None = None,
    ) -> int:
        """Expire the active listings of *subject* now and close its policy periods; return how many.

        With *listed_before*, only listings that began at or before it end (a decision on a
        removal request applies to the listings that existed when it was made).
        """
        before = now if listed_before is None else listed_before
        with transaction(self._db, f"cannot write to {self.path}") as db:
            count = db.execute(
                "UPDATE listings SET expires_at = ? WHERE subject = ? AND listed_at <= ?"
                " AND (expires_at IS NULL OR expires_at > ?)",
                (now, subject, before, now),
            ).rowcount
            db.execute(
                "UPDATE policy_periods SET ends_at = ?, ended_by = 'request' WHERE subject = ?"
                " AND listed_at <= ? AND ended_by IS NULL AND ends_at > ?",
                (now, subject, before, now),
            )
            if count:
                self._audit(actor, "delist", subject, None, why)
                self._bump()
        return int(count)

"""SQLite tables of imported feeds: definitions, sync state, and the atomic swap of their listings."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

from reputable.core.address import Domain
from reputable.core.errors import InputError, StoreError
from reputable.evidence.parsers.feed_model import (
    CsvMapping,
    FeedDefinition,
    FeedRecord,
    FeedState,
)
from reputable.listings.model import Listing
from reputable.store.sqlite_tx import DB_ERRORS, INTEGRITY_ERRORS, SQLiteTables, transaction

_COLUMNS = (
    "name, url, kind, refresh, options, etag, last_modified, content_hash,"
    " last_attempt, last_success, last_error, entries"
)


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _record(row: tuple[object, ...]) -> FeedRecord:
    name, url, kind, refresh, options, etag, lm, digest, attempt, success, error, entries = row
    opts = json.loads(str(options))
    definition = FeedDefinition(
        name=str(name),
        url=str(url),
        kind=str(kind),
        refresh=timedelta(seconds=float(refresh)),  # type: ignore[arg-type]  # REAL column
        csv=CsvMapping(**opts.get("csv", {})),
        broad=bool(opts.get("broad", False)),
    )
    state = FeedState(
        etag=etag if isinstance(etag, str) else None,
        last_modified=lm if isinstance(lm, str) else None,
        content_hash=digest if isinstance(digest, str) else None,
        last_attempt=_dt(attempt),  # type: ignore[arg-type]  # REAL column
        last_success=_dt(success),  # type: ignore[arg-type]  # REAL column
        last_error=error if isinstance(error, str) else None,
        entries=int(entries),  # type: ignore[call-overload]  # INTEGER column
    )
    return FeedRecord(definition=definition, state=state)


class FeedTables(SQLiteTables):
    """Mixin for SQLiteStore."""

    def _write(self, sql: str, args: Sequence[object]) -> int:
        try:
            return int(self._db.execute(sql, args).rowcount)
        except DB_ERRORS as exc:
            raise StoreError(f"cannot write feeds to {self.path}: {exc}") from exc

    def add_feed(self, feed: FeedDefinition, *, now: datetime) -> None:
        """Store a new feed definition; raise InputError if the name is taken."""
        options = json.dumps({"csv": asdict(feed.csv), "broad": feed.broad}, sort_keys=True)
        try:
            self._db.execute(
                "INSERT INTO feeds (name, url, kind, refresh, options, created_at)"
                " VALUES (?,?,?,?,?,?)",
                (feed.name, feed.url, feed.kind, feed.refresh.total_seconds(), options, _ts(now)),
            )
        except INTEGRITY_ERRORS as exc:
            raise InputError(
                f"feed {feed.name!r} exists; `reputable feed remove {feed.name}` first"
            ) from exc
        except DB_ERRORS as exc:
            raise StoreError(f"cannot write feeds to {self.path}: {exc}") from exc

    def feeds(self) -> list[FeedRecord]:
        """Return every stored feed, by name."""
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM feeds ORDER BY name").fetchall()
        return [_record(r) for r in rows]

    def feed(self, name: str) -> FeedRecord | None:
        """Return the feed called *name*, or None."""
        row = self._db.execute(f"SELECT {_COLUMNS} FROM feeds WHERE name = ?", (name,)).fetchone()
        return None if row is None else _record(row)

    def record_feed_state(self, name: str, state: FeedState) -> None:
        """Replace the sync state of feed *name*."""
        self._write(
            "UPDATE feeds SET etag = ?, last_modified = ?, content_hash = ?, last_attempt = ?,"
            " last_success = ?, last_error = ?, entries = ? WHERE name = ?",
            (
                state.etag,
                state.last_modified,
                state.content_hash,
                _ts(state.last_attempt),
                _ts(state.last_success),
                state.last_error,
                state.entries,
                name,
            ),
        )

    def replace_feed_listings(
        self, source: str, listings: Sequence[Listing], *, actor: str
    ) -> tuple[int, int]:
        """Make *listings* the listings of *source* in one transaction; return (added, removed).

        Entries already listed keep their ``listed_at``; every addition and removal is audited.
        """
        wanted = {(item.subject_text, item.cause.value): item for item in listings}
        with transaction(self._db, f"cannot write feed listings to {self.path}") as db:
            have = {
                (s, c): r
                for s, c, r in db.execute(
                    "SELECT subject, cause, reason FROM listings WHERE source = ?", (source,)
                )
            }
            gone = [key for key in have if key not in wanted]
            fresh = [item for key, item in wanted.items() if have.get(key) != item.reason]
            for subject, cause in gone:
                db.execute(
                    "DELETE FROM listings WHERE subject = ? AND cause = ? AND source = ?",
                    (subject, cause, source),
                )
                self._audit(actor, "delist", subject, cause, f"left {source}")
            db.executemany(
                "INSERT INTO listings (subject, family, cause, reason, source, listed_at,"
                " expires_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT (subject, cause, source)"
                " DO UPDATE SET reason = excluded.reason, expires_at = excluded.expires_at",
                (
                    (
                        item.subject_text,
                        0 if isinstance(item.subject, Domain) else item.subject.version,
                        item.cause.value,
                        item.reason,
                        source,
                        _ts(item.listed_at),
                        _ts(item.expires_at),
                    )
                    for item in fresh
                ),
            )
            added = [i for i in fresh if (i.subject_text, i.cause.value) not in have]
            for item in added:
                self._audit(actor, "list", item.subject_text, item.cause.value, item.reason)
            if gone or fresh:
                self._bump()
        return len(added), len(gone)

    def remove_feed(self, name: str, *, actor: str) -> int:
        """Delete feed *name* and its listings (audited); return how many listings went."""
        if self.feed(name) is None:
            raise InputError(f"no feed {name!r}; `reputable feed list` shows the feeds")
        _, removed = self.replace_feed_listings(f"feed:{name}", [], actor=actor)
        self._write("DELETE FROM feeds WHERE name = ?", (name,))
        return removed

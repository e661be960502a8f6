"""Reads for streamed exports: listings in batches of plain rows, memory flat at any size."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TypeAlias

from reputable.store.sqlite_tx import SQLiteTables

CHUNK = 2000

#: (subject, family, cause, reason, source, listed_at, expires_at), timestamps in seconds.
ListingRecord: TypeAlias = tuple[str, int, str, str, str, float, float | None]


class ExportReads(SQLiteTables):
    """Mixin for SQLiteStore."""

    def ip_subjects(self, *, active_at: datetime) -> Iterator[list[tuple[str, int, float]]]:
        """Yield chunks of (subject, family, newest listed_at) of active IP listings.

        One row per subject (several causes fold into one), walked in the order of the
        listings' unique index, so memory stays flat however many listings there are.
        """
        yield from self._batches(
            "SELECT subject, MAX(family), MAX(listed_at) FROM listings"
            " WHERE family IN (4, 6) AND (expires_at IS NULL OR expires_at > ?)"
            " GROUP BY subject ORDER BY subject",
            (active_at.timestamp(),),
            CHUNK,
        )

    def iter_listings(
        self, *, cause: str | None = None, active_at: datetime | None = None, batch: int = CHUNK
    ) -> Iterator[list[ListingRecord]]:
        """Yield the listings as batches of plain rows, in insertion order (as ``listings``).

        Optionally one *cause* (its value) and only those active at *active_at*. No object per
        listing and one cursor read *batch* rows at a time: `list show --json` and the exports
        stay flat in memory however many listings there are.
        """
        sql = "SELECT subject, family, cause, reason, source, listed_at, expires_at FROM listings"
        where: list[str] = []
        args: list[object] = []
        if cause is not None:
            where.append("cause = ?")
            args.append(cause)
        if active_at is not None:
            where.append("(expires_at IS NULL OR expires_at > ?)")
            args.append(active_at.timestamp())
        if where:
            sql += " WHERE " + " AND ".join(where)
        yield from self._batches(sql + " ORDER BY id", args, batch)

    def ip4_host_rows(self, *, active_at: datetime) -> Iterator[list[tuple[str, str, str, float]]]:
        """Yield batches of (subject, cause, reason, listed_at) of active IPv4 host listings.

        In subject order (the unique index's, no sort), so a host's listings come together:
        the streamed `export rbldnsd` writes them one host at a time.
        """
        yield from self._batches(
            "SELECT subject, cause, reason, listed_at FROM listings"
            " WHERE family = 4 AND instr(subject, '/') = 0"
            " AND (expires_at IS NULL OR expires_at > ?) ORDER BY subject",
            (active_at.timestamp(),),
            CHUNK,
        )

    def other_listing_rows(self, *, active_at: datetime) -> Iterator[ListingRecord]:
        """Yield the active listings that are not IPv4 hosts: ranges, IPv6 and domains."""
        yield from self._each(
            "SELECT subject, family, cause, reason, source, listed_at, expires_at FROM listings"
            " WHERE NOT (family = 4 AND instr(subject, '/') = 0)"
            " AND (expires_at IS NULL OR expires_at > ?) ORDER BY id",
            (active_at.timestamp(),),
        )

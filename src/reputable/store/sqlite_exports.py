"""Reads for streamed exports: listings in batches of plain rows, memory flat at any size."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from typing import TypeAlias

from reputable.store.sqlite_tx import SQLiteTables

CHUNK = 2000

#: (subject, family, cause, reason, source, listed_at, expires_at), timestamps in seconds.
ListingRecord: TypeAlias = tuple[str, int, str, str, str, float, float | None]


_KEY_FUNCTION = "reputable_ip_key"


def ip_sort_key(subject: str, family: int) -> bytes:
    """Return a key that sorts IP subjects by (family, network address, prefix length).

    SQLite compares blobs byte by byte, so ``ORDER BY`` this key walks the listings in
    numeric order with SQLite's own (disk-backed) sorter: no list of rows in Python.
    """
    address, _, plen = subject.partition("/")
    packed = socket.inet_pton(socket.AF_INET6 if family == 6 else socket.AF_INET, address)
    bits = len(packed) * 8
    return bytes((family,)) + packed.rjust(16, b"\0") + bytes((int(plen) if plen else bits,))


class ExportReads(SQLiteTables):
    """Mixin for SQLiteStore."""

    def ip_rows_sorted(self, *, active_at: datetime) -> Iterator[list[tuple[str, int, str]]]:
        """Yield chunks of (subject, family, cause) of active IP listings in numeric order.

        By family, network address, then prefix length (the key of `ip_sort_key`; on
        PostgreSQL the ``inet`` type's own order, which is the same), sorted by the database:
        the streamed firewall and RPZ exports merge them in one pass, in flat memory.
        """
        if isinstance(self._db, sqlite3.Connection):
            self._db.create_function(_KEY_FUNCTION, 2, ip_sort_key, deterministic=True)
            order = f"{_KEY_FUNCTION}(subject, family)"
        else:
            order = "family, CAST(subject AS inet)"
        yield from self._batches(
            "SELECT subject, family, cause FROM listings WHERE family IN (4, 6)"
            f" AND (expires_at IS NULL OR expires_at > ?) ORDER BY {order}",
            (active_at.timestamp(),),
        )

    def domain_rows_sorted(self, *, active_at: datetime) -> Iterator[list[tuple[str, str]]]:
        """Yield chunks of (subject, cause) of active domain listings in name order."""
        yield from self._batches(
            "SELECT subject, cause FROM listings WHERE family = 0"
            " AND (expires_at IS NULL OR expires_at > ?) ORDER BY subject",
            (active_at.timestamp(),),
        )

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
        )

    def other_listing_rows(self, *, active_at: datetime) -> Iterator[ListingRecord]:
        """Yield the active listings that are not IPv4 hosts: ranges, IPv6 and domains."""
        yield from self._each(
            "SELECT subject, family, cause, reason, source, listed_at, expires_at FROM listings"
            " WHERE NOT (family = 4 AND instr(subject, '/') = 0)"
            " AND (expires_at IS NULL OR expires_at > ?) ORDER BY id",
            (active_at.timestamp(),),
        )

"""Reads for streamed exports: active IP listings one subject at a time, in subject order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from reputable.store.sqlite_tx import SQLiteTables

CHUNK = 2000


class ExportReads(SQLiteTables):
    """Mixin for SQLiteStore."""

    def ip_subjects(self, *, active_at: datetime) -> Iterator[list[tuple[str, int, float]]]:
        """Yield chunks of (subject, family, newest listed_at) of active IP listings.

        One row per subject (several causes fold into one), walked in the order of the
        listings' unique index, so memory stays flat however many listings there are.
        """
        cursor = self._db.execute(
            "SELECT subject, MAX(family), MAX(listed_at) FROM listings"
            " WHERE family IN (4, 6) AND (expires_at IS NULL OR expires_at > ?)"
            " GROUP BY subject ORDER BY subject",
            (active_at.timestamp(),),
        )
        try:
            while rows := cursor.fetchmany(CHUNK):
                yield rows
        finally:
            cursor.close()

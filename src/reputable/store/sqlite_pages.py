"""Reads for the operator's dashboard: append-only tables read forward from a cursor.

The dashboard's daily counts are kept in memory by the web pages and advanced with these
reads (rows after the last id seen), so a view never scans all evidence or all listings.
"""

from __future__ import annotations

from reputable.store.sqlite_tx import SQLiteTables

CHUNK = 200_000  # rows grouped per call; the caller loops until it has caught up


class PageReads(SQLiteTables):
    """Incremental reads for dashboard aggregates, and the followers' positions."""

    def evidence_counts_after(self, after: int) -> tuple[int, list[tuple[int, str, str, int]]]:
        """Return the last evidence id read and (day, source, cause, count) of rows after *after*."""
        top = self._db.execute(
            "SELECT MAX(id) FROM (SELECT id FROM evidence WHERE id > ? ORDER BY id LIMIT ?) AS recent",
            (after, CHUNK),
        ).fetchone()[0]
        if top is None:
            return after, []
        rows = self._db.execute(
            "SELECT CAST(observed_at / 86400 AS INTEGER), source, cause, COUNT(*) FROM evidence"
            " WHERE id > ? AND id <= ? GROUP BY 1, 2, 3",
            (after, top),
        ).fetchall()
        return int(top), [(int(d), str(s), str(c), int(n)) for d, s, c, n in rows]

    def listing_counts_after(self, after: int) -> tuple[int, list[tuple[int, str, int]]]:
        """Return the last audit id read and (day, cause, count) of listings made after *after*."""
        top = self._db.execute(
            "SELECT MAX(id) FROM (SELECT id FROM audit WHERE id > ? ORDER BY id LIMIT ?) AS recent",
            (after, CHUNK),
        ).fetchone()[0]
        if top is None:
            return after, []
        rows = self._db.execute(
            "SELECT CAST(at / 86400 AS INTEGER), cause, COUNT(*) FROM audit"
            " WHERE id > ? AND id <= ? AND action = 'list' AND cause IS NOT NULL GROUP BY 1, 2",
            (after, top),
        ).fetchall()
        return int(top), [(int(d), str(c), int(n)) for d, c, n in rows]

    def follower_positions(self) -> list[tuple[str, int, float]]:
        """Return (name, bytes consumed, updated_at) of every log follower."""
        return [
            (str(n), int(o), float(u))
            for n, o, u in self._db.execute(
                'SELECT name, "offset", updated_at FROM source_positions ORDER BY name'
            )
        ]

    def evidence_by_prefix(self, prefix: str) -> list[tuple[str, int, float]]:
        """Return (target, count, last seen) of evidence whose target text starts with *prefix*.

        A range of the text index (``prefix`` up to ``prefix`` with its last character
        bumped), so a /16 reads only its own rows.
        """
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        return [
            (str(t), int(n), float(last))
            for t, n, last in self._db.execute(
                "SELECT target, COUNT(*), MAX(observed_at) FROM evidence"
                " WHERE target >= ? AND target < ? GROUP BY target",
                (prefix, upper),
            )
        ]

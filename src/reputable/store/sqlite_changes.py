"""Reads for the publisher's incremental overlay: what changed since a snapshot, per subject.

Every write that changes listings or the allowlist records an audit row in its transaction;
the overlay (publication/snapshot/overlay.py) reads the rows after a snapshot's audit cursor
to learn which subjects to re-answer, and the current rows of just those subjects.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from reputable.store.sqlite_tx import SQLiteTables


class ChangeReads(SQLiteTables):
    """Mixin for SQLiteStore (PostgreSQL through the same SQL)."""

    def audit_cursor(self) -> int:
        """Return the id of the newest audit row (0 when there is none)."""
        return int(self._db.execute("SELECT COALESCE(MAX(id), 0) FROM audit").fetchone()[0])

    def audit_after(self, after: int, limit: int) -> list[tuple[int, str, str, str]]:
        """Return up to *limit* audit rows (id, actor, action, subject) after id *after*."""
        return [
            (int(i), str(actor), str(action), str(subject))
            for i, actor, action, subject in self._db.execute(
                "SELECT id, actor, action, subject FROM audit WHERE id > ? ORDER BY id LIMIT ?",
                (after, limit),
            )
        ]

    def subject_rows(
        self, subjects: Collection[str], *, active_at: datetime
    ) -> tuple[
        list[tuple[str, int, str, str, float, float | None]],
        list[tuple[str, int, str, float | None]],
    ]:
        """Return the active listing rows and allow rows whose subject is one of *subjects*.

        The rows have the shapes of ``listing_rows`` and ``allow_rows``; both lookups use the
        subject column's indexes, so a few dozen subjects cost a few index probes.
        """
        if not subjects:
            return [], []
        names = list(subjects)
        marks = ",".join("?" * len(names))
        cut = active_at.timestamp()
        listings = [
            (str(s), int(f), str(c), str(r), float(at), None if until is None else float(until))
            for s, f, c, r, at, until in self._db.execute(
                "SELECT subject, family, cause, reason, listed_at, expires_at FROM listings"
                f" WHERE subject IN ({marks}) AND (expires_at IS NULL OR expires_at > ?)",
                (*names, cut),
            )
        ]
        allows = [
            (str(s), int(f), str(n), None if until is None else float(until))
            for s, f, n, until in self._db.execute(
                "SELECT subject, family, note, expires_at FROM allow"
                f" WHERE subject IN ({marks}) AND (expires_at IS NULL OR expires_at > ?)",
                (*names, cut),
            )
        ]
        return listings, allows

    def moved_after(self, after: int) -> list[str]:
        """Return the subjects the policy transactions after audit id *after* touched (their
        ``moved`` rows, store/sqlite_evidence.py), each once."""
        found: dict[str, None] = {}
        for (detail,) in self._db.execute(
            "SELECT detail FROM audit WHERE id > ? AND action = 'moved' ORDER BY id", (after,)
        ):
            found.update(dict.fromkeys(str(detail).split()))
        return list(found)

    def expired_subjects(self, after: float, until: float) -> list[str]:
        """Return the subjects of listings and allowlist entries that expired after *after*
        and by *until*: answers that moved with no write (listings by their expiry index)."""
        rows = self._db.execute(
            "SELECT subject FROM listings WHERE expires_at > ? AND expires_at <= ?"
            " UNION SELECT subject FROM allow WHERE expires_at > ? AND expires_at <= ?",
            (after, until, after, until),
        )
        return [str(s) for (s,) in rows]

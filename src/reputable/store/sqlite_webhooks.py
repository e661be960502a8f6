"""SQLite tables of the webhooks: what was last seen, and the durable delivery queue."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from reputable.store.sqlite_tx import SQLiteTables, transaction

AUDIT_CURSOR = "webhooks_audit"
BASELINE_CURSOR = "webhooks_baseline"
REMOVAL_ACTIONS = ("delist_request", "delist_granted", "delist_denied")


class WebhookTables(SQLiteTables):
    """The queue: rows are inserted with their bookmarks in one transaction, never deleted."""

    def webhook_known(self) -> set[tuple[str, str]]:
        """Return the (subject, cause) pairs the detector saw active last time."""
        return {(s, c) for s, c in self._db.execute("SELECT subject, cause FROM webhook_known")}

    def webhook_active(self, now: float) -> set[tuple[str, str]]:
        """Return the (subject, cause) pairs of the listings active at *now*."""
        return {
            (s, c)
            for s, c in self._db.execute(
                "SELECT subject, cause FROM listings WHERE expires_at IS NULL OR expires_at > ?",
                (now,),
            )
        }

    def webhook_reasons(
        self, keys: list[tuple[str, str]], now: float
    ) -> dict[tuple[str, str], str]:
        """Return the reason of each active (subject, cause) in *keys*."""
        found: dict[tuple[str, str], str] = {}
        wanted = set(keys)
        subjects = sorted({s for s, _ in keys})
        for i in range(0, len(subjects), 500):
            chunk = subjects[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for subject, cause, reason in self._db.execute(
                "SELECT subject, cause, reason FROM listings WHERE subject IN"
                f" ({marks}) AND (expires_at IS NULL OR expires_at > ?) ORDER BY listed_at",
                (*chunk, now),
            ):
                if (subject, cause) in wanted:
                    found[subject, cause] = reason
        return found

    def webhook_baselined(self) -> bool:
        """True once the detector has recorded its first view (no events for what was there)."""
        row = self._db.execute(
            "SELECT value FROM cursors WHERE name = ?", (BASELINE_CURSOR,)
        ).fetchone()
        return row is not None

    def webhook_audit_cursor(self) -> int:
        """Return the last audit id turned into removal events."""
        row = self._db.execute(
            "SELECT value FROM cursors WHERE name = ?", (AUDIT_CURSOR,)
        ).fetchone()
        if row is not None:
            return int(row[0])
        return int(self._db.execute("SELECT COALESCE(MAX(id), 0) FROM audit").fetchone()[0])

    def removal_audit(self, after: int) -> list[tuple[int, float, str, str, str]]:
        """Return audit rows (id, at, action, subject, detail) of removal requests after *after*."""
        marks = ",".join("?" * len(REMOVAL_ACTIONS))
        return list(
            self._db.execute(
                "SELECT id, at, action, subject, detail FROM audit"
                f" WHERE id > ? AND action IN ({marks}) ORDER BY id",
                (after, *REMOVAL_ACTIONS),
            )
        )

    def webhook_commit(
        self,
        *,
        added: Iterable[tuple[str, str]],
        removed: Iterable[tuple[str, str]],
        deliveries: Iterable[tuple[str, str, str]],
        audit_cursor: int,
        now: float,
        baseline: bool = False,
    ) -> int:
        """Move the bookmarks and queue (endpoint, event, body) rows in one transaction.

        *baseline*: first run; every listing active at *now* becomes known, without events.
        """
        with transaction(self._db, f"cannot queue webhooks in {self.path}") as db:
            if baseline:
                db.execute(
                    "INSERT OR IGNORE INTO webhook_known SELECT DISTINCT subject, cause"
                    " FROM listings WHERE expires_at IS NULL OR expires_at > ?",
                    (now,),
                )
            db.executemany("INSERT OR IGNORE INTO webhook_known VALUES (?, ?)", added)
            db.executemany("DELETE FROM webhook_known WHERE subject = ? AND cause = ?", removed)
            cur = db.executemany(
                "INSERT INTO webhook_queue (endpoint, event, body, created_at, next_at)"
                " VALUES (?, ?, ?, ?, ?)",
                ((e, k, b, now, now) for e, k, b in deliveries),
            )
            for name, value in ((AUDIT_CURSOR, audit_cursor), (BASELINE_CURSOR, 1)):
                db.execute(
                    "INSERT INTO cursors (name, value) VALUES (?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (name, value),
                )
            return int(cur.rowcount)

    def webhook_due(
        self, now: float, limit: int = 100
    ) -> list[tuple[int, str, str, str, int, float]]:
        """Return due deliveries (id, endpoint, event, body, attempts, created_at), oldest first."""
        return list(
            self._db.execute(
                "SELECT id, endpoint, event, body, attempts, created_at FROM webhook_queue"
                " WHERE delivered_at IS NULL AND dead_at IS NULL AND next_at <= ?"
                " ORDER BY id LIMIT ?",
                (now, limit),
            )
        )

    def webhook_delivered(self, delivery: int, now: float) -> None:
        """Mark *delivery* done (a 2xx answer came back)."""
        with transaction(self._db, f"cannot update webhooks in {self.path}") as db:
            db.execute(
                "UPDATE webhook_queue SET delivered_at = ?, attempts = attempts + 1,"
                " last_error = NULL WHERE id = ?",
                (now, delivery),
            )

    def webhook_failed(
        self, delivery: int, *, error: str, next_at: float | None, now: float
    ) -> None:
        """Record a failed attempt: retry at *next_at*, or give up when it is None."""
        with transaction(self._db, f"cannot update webhooks in {self.path}") as db:
            db.execute(
                "UPDATE webhook_queue SET attempts = attempts + 1, last_error = ?,"
                " next_at = COALESCE(?, next_at), dead_at = ?"
                " WHERE id = ?",
                (error[:500], next_at, now if next_at is None else None, delivery),
            )

    def webhook_rows(self) -> Iterator[tuple[int, str, str, int, float | None, float | None]]:
        """Yield every queued row (id, endpoint, event, attempts, delivered_at, dead_at)."""
        yield from self._db.execute(
            "SELECT id, endpoint, event, attempts, delivered_at, dead_at FROM webhook_queue"
            " ORDER BY id"
        )

"""SQLite table of followed sources: position and consumer state, committed with their evidence."""

from __future__ import annotations

import time
from collections.abc import Iterable

from reputable.evidence.model import Evidence
from reputable.evidence.sources.follow import Position
from reputable.store.sqlite_evidence import insert_evidence
from reputable.store.sqlite_tx import SQLiteTables, transaction


class SourceTables(SQLiteTables):
    """Mixin for SQLiteStore: expects ``_db`` and ``path``."""

    def source_position(self, name: str) -> Position | None:
        """Return where follower *name* stopped, or None when it never committed."""
        row = self._db.execute(
            'SELECT device, inode, head, "offset", lines, state FROM source_positions WHERE name = ?',
            (name,),
        ).fetchone()
        if row is None:
            return None
        device, inode, head, offset, lines, state = row
        return Position(name, int(device), int(inode), str(head), int(offset), int(lines), state)

    def commit_source(self, position: Position, evidence: Iterable[Evidence]) -> int:
        """Store *evidence* and *position* in one transaction; return how many evidence were new."""
        with transaction(self._db, f"cannot save position of {position.name} in {self.path}") as db:
            added = insert_evidence(db, evidence)
            db.execute(
                'INSERT INTO source_positions (name, device, inode, head, "offset", lines, state,'
                " updated_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (name) DO UPDATE SET"
                " device = excluded.device, inode = excluded.inode, head = excluded.head,"
                ' "offset" = excluded."offset", lines = excluded.lines, state = excluded.state,'
                " updated_at = excluded.updated_at",
                (
                    position.name,
                    position.device,
                    position.inode,
                    position.head,
                    position.offset,
                    position.lines,
                    position.state,
                    time.time(),
                ),
            )
        return added

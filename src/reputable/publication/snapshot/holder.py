"""The current snapshot for readers outside the DNS workers (HTTP API, pages, policy service).

One holder per process: it re-opens the snapshot file when the publisher has replaced it, and
looks for that at most every RECHECK seconds, so lookups cost no system call each.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Final

from reputable.core.errors import SnapshotError
from reputable.publication.snapshot.view import Snapshot

RECHECK: Final = 0.2  # seconds between looks for a replaced snapshot file


class SnapshotHolder:
    """The snapshot DNS answers from, swapped when the publisher replaces the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._snapshot: Snapshot | None = None
        self._identity: tuple[int, int] | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def current(self) -> Snapshot:
        """Return the newest snapshot (stat at most every RECHECK seconds); raise SnapshotError."""
        now = time.monotonic()
        snapshot = self._snapshot
        if snapshot is not None and now - self._checked < RECHECK:
            return snapshot
        with self._lock:
            self._checked = now
            try:
                st = os.stat(self.path)
            except OSError as exc:
                if self._snapshot is not None:
                    return self._snapshot
                raise SnapshotError(f"no snapshot at {self.path} yet: {exc.strerror}") from exc
            identity = (st.st_ino, st.st_mtime_ns)
            if self._snapshot is None or identity != self._identity:
                self._snapshot = Snapshot(self.path)
                self._identity = identity
            return self._snapshot

    def age(self) -> float | None:
        """Return seconds since the current snapshot was built (None when there is none)."""
        try:
            return max(0.0, time.time() - self.current().built_at)
        except SnapshotError:
            return None

"""The current snapshot for readers outside the DNS workers (HTTP API, pages, policy service).

One holder per process: it re-opens the snapshot file when the publisher has replaced it, and
looks for that at most every RECHECK seconds, so lookups cost no system call each.

It also attaches the snapshot's overlay (``<snapshot>.overlay``, overlay.py: the addresses
changed since the base was built), re-read when that file moves, exactly as the DNS workers
do; :mod:`reputable.publication.lookup` answers overlaid addresses from it. A new overlay gives
a new :class:`Snapshot` object over the same base mapping, so memos keyed by the snapshot
object (the policy service's) are emptied with it.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Final

from reputable.core.errors import SnapshotError
from reputable.publication.snapshot.overlay import overlay_path
from reputable.publication.snapshot.view import Snapshot

RECHECK: Final = 0.2  # seconds between looks for a replaced snapshot file


class SnapshotHolder:
    """The snapshot DNS answers from, swapped when the publisher replaces the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.overlay = overlay_path(path)
        self._snapshot: Snapshot | None = None
        self._identity: tuple[int, int] | None = None
        self._overlay_identity: tuple[int, int] | None = None
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
            overlay = _identity(self.overlay)
            current = self._snapshot
            if current is None or identity != self._identity:
                current = Snapshot(self.path)
                self._identity = identity
            elif overlay == self._overlay_identity:
                return current
            else:  # only the overlay moved: the same base mapping, new changed addresses
                current = Snapshot(self.path, mapped=current.file)
            current.attach_overlay(self.overlay)  # a stale or absent one attaches nothing
            self._overlay_identity = overlay
            self._snapshot = current
            return current

    def age(self) -> float | None:
        """Return seconds since the current snapshot was built (None when there is none)."""
        try:
            return max(0.0, time.time() - self.current().built_at)
        except SnapshotError:
            return None


def _identity(path: Path) -> tuple[int, int] | None:
    """Return (inode, mtime) of the file at *path*, None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns)

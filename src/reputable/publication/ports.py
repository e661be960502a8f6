"""What stage 4 needs from storage: active listings as cheap rows, and the change serial."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Protocol


class ListingSource(Protocol):
    """Read side of the listings for publication.

    A source may also have ``listing_chunks`` (``SQLiteStore``): the same rows in the same
    order, windows of plain IPv4 hosts as columns; ``publish`` uses it when present.
    """

    def listing_rows(
        self, *, active_at: datetime
    ) -> Iterator[tuple[str, int, str, str, float, float | None]]:
        """Yield (subject, family, cause, reason, listed_at, expires_at) of active listings."""
        ...

    def allow_rows(self, *, active_at: datetime) -> Iterator[tuple[str, int, str, float | None]]:
        """Yield (subject, family, note, expires_at) of active allowlist entries."""
        ...

    def serial(self) -> int:
        """Return the change counter."""
        ...

"""What stage 3 needs from storage."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Protocol

from reputable.core.address import Subject
from reputable.core.cause import Cause
from reputable.listings.model import AllowEntry, Batch, Listing


class ListingStore(Protocol):
    """Durable listings and allowlist, with a serial that moves on every change."""

    def apply(self, batch: Batch, *, actor: str, action: str) -> None:
        """Insert or replace every listing and allow entry of *batch* in one transaction."""
        ...

    def remove_listings(
        self, subject: Subject, *, cause: Cause | None, source: str | None, actor: str
    ) -> int:
        """Delete listings of exactly *subject* (optionally one cause/source); return how many."""
        ...

    def remove_allow(self, subject: Subject, *, actor: str) -> int:
        """Delete allowlist entries of exactly *subject*; return how many."""
        ...

    def listings(
        self, *, cause: Cause | None = None, active_at: datetime | None = None
    ) -> Iterator[Listing]:
        """Yield listings, optionally of one cause and only those active at *active_at*."""
        ...

    def allows(self, *, active_at: datetime | None = None) -> Iterator[AllowEntry]:
        """Yield allowlist entries, optionally only those active at *active_at*."""
        ...

    def serial(self) -> int:
        """Return the change counter; it increases on every committed change."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...

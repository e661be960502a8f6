"""Listing rows the policy writes: building them, reading them in chunks, comparing them."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from typing import Final

from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.listings.model import Listing
from reputable.listings.policy import Decision
from reputable.listings.ports import PolicyStore

#: Subjects per ``listings_where(subjects=...)`` call: well under SQLite's 32766 parameters.
CHUNK: Final = 5000


def stamp(ts: float) -> datetime:
    """Return epoch seconds as an aware UTC datetime, to the second (as the store keeps it)."""
    return datetime.fromtimestamp(round(ts), UTC)


def listing_row(
    target: str, cause: Cause, reason: str, source: str, listed_at: float, until: float
) -> Listing:
    """Return the listing the policy writes for *target*."""
    return Listing(
        subject=parse_subject(target),
        cause=cause,
        reason=reason,
        source=source,
        listed_at=stamp(listed_at),
        expires_at=stamp(until),
    )


def chunks(items: Collection[str]) -> Iterator[list[str]]:
    """Yield *items* sorted, in chunks small enough for one query."""
    ordered = sorted(items)
    for i in range(0, len(ordered), CHUNK):
        yield ordered[i : i + CHUNK]


def listings_of(
    store: PolicyStore,
    subjects: Collection[str],
    *,
    source_prefix: str | None = None,
    active_at: datetime | None = None,
) -> Iterator[Listing]:
    """Yield ``listings_where(subjects=...)`` for any number of subjects, a chunk per query."""
    for chunk in chunks(subjects):
        yield from store.listings_where(
            subjects=chunk, source_prefix=source_prefix, active_at=active_at
        )


def moved(old: tuple[str, float, float | None], new: Decision) -> bool:
    """True when *new* changes a stored (reason, listed_at, expires_at) row."""
    reason, listed_at, until = old
    return (
        abs((until if until is not None else float("inf")) - new.expires_at) >= 1
        or reason != new.reason
        or abs(listed_at - round(new.listed_at)) >= 1
    )


def differs(old: Listing, new: Decision, *, since: bool = True) -> bool:
    """True when *new* changes the stored listing (its start too, unless *since* is False)."""
    old_until = old.expires_at.timestamp() if old.expires_at else float("inf")
    return (
        abs(old_until - new.expires_at) >= 1
        or old.reason != new.reason
        or (since and abs(old.listed_at.timestamp() - round(new.listed_at)) >= 1)
    )

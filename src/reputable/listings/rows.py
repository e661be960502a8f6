"""Listing rows the policy writes: building them, reading them in chunks, comparing them."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Final

from reputable.core.address import format_subject, parse_subject
from reputable.core.cause import Cause
from reputable.listings.allowlist import IPV4_TEXT, ipv4_int
from reputable.listings.model import Listing
from reputable.listings.policy import Decision, ListingRow
from reputable.listings.ports import PolicyStore

#: Subjects per ``listings_where(subjects=...)`` call: well under SQLite's 32766 parameters.
CHUNK: Final = 5000


def canonical(target: str) -> str:
    """Return *target* as the store writes its subject (SubjectError if it is no subject).

    The policy's targets are the store's own canonical texts, so the common cases (a
    dotted-quad address, an IPv4 CIDR without host bits) are recognised without building an
    ``ipaddress`` object; anything else goes through the parser.
    """
    if IPV4_TEXT.fullmatch(target):
        return target
    address, slash, length = target.partition("/")
    if slash and length.isascii() and length.isdigit() and IPV4_TEXT.fullmatch(address):
        bits = int(length)
        if length == str(bits) and bits <= 32 and not ipv4_int(address) & ((1 << (32 - bits)) - 1):
            return address if bits == 32 else target
    return format_subject(parse_subject(target))


def listing_row(
    target: str, cause: Cause, reason: str, source: str, listed_at: float, until: float
) -> ListingRow:
    """Return the listing the policy writes for *target*, times to the second."""
    return ListingRow(canonical(target), cause, reason, source, round(listed_at), round(until))


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


def moved(old: tuple[str, float, float | None], new: Decision, *, reason: bool = True) -> bool:
    """True when *new* changes a stored (reason, listed_at, expires_at) row (its reason too,
    unless *reason* is False)."""
    words, listed_at, until = old
    return (
        abs((until if until is not None else float("inf")) - new.expires_at) >= 1
        or (reason and words != new.reason)
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

"""What stage 3 needs from storage."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Protocol

from reputable.core.address import Subject
from reputable.core.cause import Cause
from reputable.listings.model import AllowEntry, Batch, DelistRequest, Listing
from reputable.listings.policy import Period, PolicyChanges


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


class ListingReads(Protocol):
    """The reads that policy and explain share."""

    def listings_where(
        self,
        *,
        subjects: Collection[str] | None = None,
        like: str | None = None,
        family: int | None = None,
        source_prefix: str | None = None,
        active_at: datetime | None = None,
    ) -> list[Listing]:
        """Return listings filtered by subjects, a LIKE pattern, family and source."""
        ...

    def evidence_rows(
        self, targets: Collection[str] | None = None
    ) -> Iterator[tuple[str, str, float, float]]:
        """Yield (target, cause, observed_at, weight) of all evidence or of *targets*."""
        ...

    def domains_on(self, ips: Collection[str]) -> dict[str, set[str]]:
        """Return the domains each IP hosts."""
        ...


class PolicyStore(ListingStore, ListingReads, Protocol):
    """What the policy engine reads and writes."""

    def source_rows(
        self, source_prefix: str, *, active_at: datetime
    ) -> Iterator[tuple[str, str, str, float, float | None]]:
        """Yield (subject, source, reason, listed_at, expires_at) of active listings by source."""
        ...

    def escalation_rows(
        self, causes: Collection[str], *, active_at: datetime
    ) -> Iterator[tuple[str, int, str, float | None]]:
        """Yield (subject, family, source, expires_at) of active listings of *causes*."""
        ...

    def all_targets(self) -> set[str]:
        """Return every target that has evidence."""
        ...

    def evidence_targets_since(
        self, after_id: int, *, observed_by: float | None = None
    ) -> tuple[set[str], int]:
        """Return targets of evidence stored after *after_id* and the cursor to save."""
        ...

    def policy_targets_since(
        self, after_id: int, *, observed_by: float
    ) -> tuple[set[str], set[str], int]:
        """Return the targets of evidence after *after_id*: (to re-decide, clean only, cursor)."""
        ...

    def evidence_cursor(self, after_id: int, *, observed_by: float) -> int:
        """Return the cursor :meth:`evidence_targets_since` would return, without the targets."""
        ...

    def clean_targets(self) -> set[str]:
        """Return targets with positive evidence."""
        ...

    def clean_targets_in(self, heads: Collection[str], *, ipv6: bool = False) -> set[str]:
        """Return targets with positive evidence starting with a head ("10.1.2.", "2001:db8:5:");
        with *ipv6*, every IPv6 one too."""
        ...

    def ips_of(self, domains: Collection[str]) -> set[str]:
        """Return the IPs hosting any of *domains*."""
        ...

    def periods(self, targets: Collection[str] | None) -> dict[tuple[str, Cause], list[Period]]:
        """Return listing periods per (target, cause) of *targets* (None: all)."""
        ...

    def granted_removals(self) -> dict[str, float]:
        """Return, per subject, when its latest granted removal request was decided."""
        ...

    def removal_stops(self) -> dict[str, list[tuple[float, float]]]:
        """Return, per subject, (created_at, decided_at) of its granted removal requests."""
        ...

    def carve_out_grants(self) -> dict[str, float]:
        """Return, per address, when its latest carve-out from an escalated network was granted."""
        ...

    def delist_requests(
        self, *, subject: str | None = None, status: str | None = None
    ) -> list[DelistRequest]:
        """Return removal requests, newest first."""
        ...

    def decide_delist(self, request_id: int, *, status: str, by: str, why: str, now: float) -> None:
        """Decide a request."""
        ...

    def own_rows(
        self, subjects: Collection[str] | None, *, source: str, active_at: float
    ) -> Iterator[tuple[str, str, str, float, float | None]]:
        """Yield (subject, cause, reason, listed_at, expires_at) of active listings of exactly *source* (subjects None: all)."""
        ...

    def spam_senders(self, targets: Collection[str] | None = None) -> dict[str, set[str]]:
        """Return, per domain named in spam evidence, the targets that sent it."""
        ...

    def listing_starts(
        self, causes: Collection[str], *, active_at: float
    ) -> Iterator[tuple[str, str, float]]:
        """Yield (subject, source, listed_at) of the active listings of *causes*."""
        ...

    def active_rows_of(
        self, subjects: Collection[str], *, active_at: float
    ) -> Iterator[tuple[str, str, str, float, float | None]]:
        """Yield (subject, cause, source, listed_at, expires_at) of active listings of *subjects*."""
        ...

    def policy_source_rows(
        self, source_prefix: str, *, active_at: float
    ) -> list[tuple[str, str, str, float, float | None]]:
        """Return (subject, source, reason, listed_at, expires_at) of a lower-case policy source."""
        ...

    def escalation_members(
        self, causes: Collection[str], *, active_at: float
    ) -> list[tuple[str, int, str, float, float | None]]:
        """Return (subject, family, source, listed_at, expires_at) of active listings of *causes*."""
        ...

    def expired_between(self, after: float, until: float) -> set[str]:
        """Return the subjects of listings that expired after *after* and by *until*."""
        ...

    def requests_decided_since(self, after: float) -> tuple[set[str], float]:
        """Return the subjects of requests decided after *after*, and the newest decision time."""
        ...

    def probe_closures(
        self, targets: Collection[str] | None = None
    ) -> dict[str, list[tuple[float, str]]]:
        """Return, per target, (observed_at, probe kind) of probes that found a relay/proxy closed."""
        ...

    def evidence_labels(self, targets: Collection[str]) -> Iterator[tuple[str, str, float, str]]:
        """Yield (target, cause, observed_at, detector or source) of the evidence of *targets*."""
        ...

    def cursor(self, name: str) -> int:
        """Return a saved position."""
        ...

    def set_cursor(self, name: str, value: int) -> None:
        """Save a position."""
        ...

    def apply_policy(self, changes: PolicyChanges, *, actor: str, now: float) -> None:
        """Apply one evaluation's changes atomically."""
        ...

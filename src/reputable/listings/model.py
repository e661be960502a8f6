"""The values of stage 3: a listing and an allowlist entry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from reputable.core.address import Subject, format_subject
from reputable.core.cause import Cause


@dataclass(frozen=True, slots=True, kw_only=True)
class Listing:
    """A decision to answer for *subject* with the code of *cause* until *expires_at*."""

    subject: Subject
    cause: Cause
    reason: str
    source: str
    listed_at: datetime
    expires_at: datetime | None = None

    @property
    def subject_text(self) -> str:
        """The canonical text of the subject (bare address for a single host)."""
        return format_subject(self.subject)

    def active(self, now: datetime) -> bool:
        """True while the listing has not expired at *now*."""
        return self.expires_at is None or self.expires_at > now


@dataclass(frozen=True, slots=True, kw_only=True)
class AllowEntry:
    """A subject never listed (rbldnsd ``!`` exclusion); it answers on the allowlist zone."""

    subject: Subject
    note: str
    source: str
    created_at: datetime
    expires_at: datetime | None = None

    @property
    def subject_text(self) -> str:
        """The canonical text of the subject."""
        return format_subject(self.subject)

    def active(self, now: datetime) -> bool:
        """True while the entry has not expired at *now*."""
        return self.expires_at is None or self.expires_at > now


@dataclass(frozen=True, slots=True, kw_only=True)
class Batch:
    """Listings and allowlist entries applied together, all or nothing."""

    listings: tuple[Listing, ...] = ()
    allows: tuple[AllowEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class DelistRequest:
    """A removal request and its fate."""

    id: int
    subject: str
    contact: str
    note: str
    created_at: datetime
    status: str  # pending, granted, denied, ended (the listing ended before a decision)
    decided_at: datetime | None
    decided_by: str | None
    why: str | None
    kind: str = "removal"  # or "carve_out": take one address out of an escalated network


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of a subject's history."""

    at: datetime
    actor: str
    action: str
    subject: str
    cause: str | None
    detail: str

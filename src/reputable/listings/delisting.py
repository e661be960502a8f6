"""Removal requests: granted at once when the evidence has stopped, else reviewed by an operator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from reputable.core.address import Domain, format_subject, parse_subject
from reputable.core.clock import format_instant
from reputable.core.errors import InputError, ListingRefused
from reputable.evidence.model import scoring_target
from reputable.listings.model import DelistRequest, Listing
from reputable.listings.policy import PolicyParams


class RequestStore(Protocol):
    """What removal requests need from storage."""

    def listings_where(self, *, subjects: list[str], active_at: datetime) -> list[Listing]:
        """Return active listings of exactly *subjects*."""
        ...

    def delist_requests(
        self, *, subject: str | None = None, status: str | None = None
    ) -> list[DelistRequest]:
        """Return removal requests."""
        ...

    def last_evidence_at(self, subjects: list[str]) -> float | None:
        """Return the newest evidence time about *subjects*."""
        ...

    def add_delist_request(self, subject: str, contact: str, note: str, now: float) -> int:
        """Record a pending request."""
        ...

    def decide_delist(self, request_id: int, *, status: str, by: str, why: str, now: float) -> None:
        """Decide a request."""
        ...

    def end_listings(self, subject: str, *, now: float, actor: str, why: str) -> int:
        """Expire a subject's listings now."""
        ...


@dataclass(frozen=True, slots=True)
class RequestResult:
    """What became of a removal request."""

    request_id: int
    subject: str
    status: str  # granted or pending
    message: str


def subject_names(text: str) -> list[str]:
    """Return the canonical text of a subject, then its scored target when that differs (an IPv6 /64)."""
    subject = parse_subject(text)
    canonical = format_subject(subject)
    names = [canonical]
    if not isinstance(subject, Domain) and subject.prefixlen == subject.max_prefixlen:
        target = scoring_target(subject.network_address, None)
        if target != canonical:
            names.append(target)
    return names


def request_removal(
    store: RequestStore,
    subject_text: str,
    *,
    contact: str,
    note: str,
    params: PolicyParams,
    now: datetime,
) -> RequestResult:
    """File a removal request for *subject_text*; grant it at once when the evidence is quiet."""
    if "@" not in contact:
        raise InputError(f"--contact {contact!r}: give an email address we can answer")
    subjects = subject_names(subject_text)
    listed = store.listings_where(subjects=subjects, active_at=now)
    if not listed:
        raise InputError(f"{subject_text} is not listed; nothing to remove")
    since = now - params.self_removal_window
    recent = [r for r in store.delist_requests(subject=subjects[0]) if r.created_at >= since]
    if len(recent) >= params.self_removals:
        raise ListingRefused(
            f"{subject_text}: {len(recent)} removal requests in the last"
            f" {params.self_removal_window.days} days, the limit; write to the list operator"
        )
    ts = now.timestamp()
    request_id = store.add_delist_request(subjects[0], contact, note, ts)
    last = store.last_evidence_at(subjects)
    quiet = last is None or last <= ts - params.quiet_period.total_seconds()
    self_service = all(item.source.startswith("policy") for item in listed)
    if quiet and self_service:
        store.decide_delist(
            request_id, status="granted", by="self-service", why="evidence stopped", now=ts
        )
        for subject in subjects:
            store.end_listings(subject, now=ts, actor=contact, why=f"removal request #{request_id}")
        return RequestResult(
            request_id,
            subjects[0],
            "granted",
            "granted: nothing new has been seen for the quiet period; the listing is removed"
            " and only new evidence can list it again",
        )
    if not self_service:
        why = "an operator or a feed made this listing, so an operator reviews the request"
    else:
        why = f"evidence was still seen at {format_instant(datetime.fromtimestamp(last or 0, now.tzinfo))}; an operator reviews the request"
    return RequestResult(request_id, subjects[0], "pending", f"pending: {why}")


def decide_request(
    store: RequestStore, request_id: int, *, grant: bool, by: str, why: str, now: datetime
) -> str:
    """Grant (removing the listings) or deny request *request_id*; return the subject."""
    pending = [r for r in store.delist_requests(status="pending") if r.id == request_id]
    if not pending:
        raise InputError(f"no pending removal request #{request_id}; see `reputable delist list`")
    subject = pending[0].subject
    ts = now.timestamp()
    store.decide_delist(request_id, status="granted" if grant else "denied", by=by, why=why, now=ts)
    if grant:
        for name in subject_names(subject):
            store.end_listings(name, now=ts, actor=by, why=f"removal request #{request_id}: {why}")
    return subject

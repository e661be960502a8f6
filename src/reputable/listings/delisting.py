"""Removal requests: granted at once when the evidence has stopped, else reviewed by an operator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from reputable.core.address import Domain, Subject, format_subject, parse_subject
from reputable.core.cause import Cause
from reputable.core.clock import format_instant
from reputable.core.errors import InputError, ListingRefused
from reputable.evidence.model import scoring_target
from reputable.listings.model import DelistRequest, Listing
from reputable.listings.policy import PolicyParams

#: Causes a re-probe can clear (listings/reprobe.py): a request for them triggers one.
REPROBED: Final = frozenset({Cause.OPEN_RELAY, Cause.OPEN_PROXY})


class SettleStore(Protocol):
    """What closing lapsed requests needs from storage."""

    def listings_where(
        self,
        *,
        subjects: list[str] | None = None,
        like: str | None = None,
        family: int | None = None,
        source_prefix: str | None = None,
        active_at: datetime,
    ) -> list[Listing]:
        """Return active listings of exactly *subjects*, or by pattern, family, source prefix."""
        ...

    def delist_requests(
        self, *, subject: str | None = None, status: str | None = None
    ) -> list[DelistRequest]:
        """Return removal requests."""
        ...

    def decide_delist(self, request_id: int, *, status: str, by: str, why: str, now: float) -> None:
        """Decide a request."""
        ...


class RequestStore(SettleStore, Protocol):
    """What removal requests need from storage: what settling needs, and more."""

    def last_evidence_at(self, subjects: list[str]) -> float | None:
        """Return the newest evidence time about *subjects*."""
        ...

    def add_delist_request(
        self, subject: str, contact: str, note: str, now: float, *, kind: str = "removal"
    ) -> int:
        """Record a pending request (a removal, or a carve-out from an escalated network)."""
        ...

    def end_listings(
        self,
        subject: str,
        *,
        now: float,
        actor: str,
        why: str,
        listed_before: float | None = None,
    ) -> int:
        """Expire a subject's listings now (only those listed at or before *listed_before*)."""
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


def _refusal_contact(params: PolicyParams) -> str:
    """Return how a refused requester reaches the list operator."""
    if params.contact:
        return f"write to the list operator at {params.contact}"
    return "write to the list operator (their address is on the lookup page)"


def _covering_range(store: SettleStore, subject: Subject, now: datetime) -> Listing | None:
    """Return an active range listing that covers host *subject* (a policy escalation first)."""
    if isinstance(subject, Domain) or subject.prefixlen != subject.max_prefixlen:
        return None
    found: list[Listing] = []
    for item in store.listings_where(like="%/%", family=subject.version, active_at=now):
        whole = item.subject
        if not isinstance(whole, Domain) and subject.subnet_of(whole):  # type: ignore[arg-type]
            found.append(item)
    found.sort(key=lambda item: (not item.source.startswith("policy"), item.subject_text))
    return found[0] if found else None


def settle_requests(store: SettleStore, now: datetime) -> int:
    """Close pending removal requests whose listings have ended meanwhile; return how many."""
    ts = now.timestamp()
    closed = 0
    for request in store.delist_requests(status="pending"):
        names = subject_names(request.subject)
        if store.listings_where(subjects=names, active_at=now):
            continue
        if _covering_range(store, parse_subject(request.subject), now) is not None:
            continue
        store.decide_delist(
            request.id,
            status="ended",
            by="policy",
            why="the listing ended before the request was decided; nothing left to remove",
            now=ts,
        )
        closed += 1
    return closed


def request_removal(
    store: RequestStore,
    subject_text: str,
    *,
    contact: str,
    note: str,
    params: PolicyParams,
    now: datetime,
) -> RequestResult:
    """File a removal request for *subject_text*; grant it at once when the evidence is quiet.

    Only granted requests count toward the self-removal limit. An address listed only through
    an escalated network asks for a carve-out instead: granted at once when its own record
    is clean, else reviewed.
    """
    if "@" not in contact:
        raise InputError(f"--contact {contact!r}: give an email address we can answer")
    subjects = subject_names(subject_text)
    settle_requests(store, now)
    listed = store.listings_where(subjects=subjects, active_at=now)
    covering = None if listed else _covering_range(store, parse_subject(subjects[0]), now)
    if not listed and covering is None:
        raise InputError(f"{subject_text} is not listed; nothing to remove")
    escalation = covering if covering and covering.source.startswith("policy") else None
    since = now - params.self_removal_window
    granted = [
        r
        for r in store.delist_requests(subject=subjects[0], status="granted")
        if r.created_at >= since
    ]
    if len(granted) >= params.self_removals:
        raise ListingRefused(
            f"{subject_text}: {len(granted)} removals granted in the last"
            f" {params.self_removal_window.days} days, the limit; {_refusal_contact(params)}"
        )
    ts = now.timestamp()
    last = store.last_evidence_at(subjects)
    quiet = last is None or last <= ts - params.quiet_period.total_seconds()
    seen = format_instant(datetime.fromtimestamp(last or 0, now.tzinfo))
    if escalation is not None:
        request_id = store.add_delist_request(subjects[0], contact, note, ts, kind="carve_out")
        if quiet:
            store.decide_delist(
                request_id, status="granted", by="self-service", why="own record clean", now=ts
            )
            return RequestResult(
                request_id,
                subjects[0],
                "granted",
                f"granted: {subjects[0]} is listed only as part of {escalation.subject_text}"
                " and its own record is clean; it is carved out of the network listing",
            )
        return RequestResult(
            request_id,
            subjects[0],
            "pending",
            f"pending: {subjects[0]} is listed as part of {escalation.subject_text}; evidence"
            f" about it was seen at {seen}, so an operator reviews the carve-out",
        )
    request_id = store.add_delist_request(subjects[0], contact, note, ts)
    if covering is not None:  # inside an operator's or a feed's range
        return RequestResult(
            request_id,
            subjects[0],
            "pending",
            f"pending: {subjects[0]} is listed as part of {covering.subject_text}"
            f" ({covering.source}); an operator reviews the request (a carve-out is"
            f" `reputable allow add {subjects[0]}`)",
        )
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
    elif any(item.cause in REPROBED for item in listed):
        why = (
            "the relay/proxy is probed again within minutes; if it is closed the listing ends"
            " at once, otherwise an operator reviews the request"
        )
    else:
        why = f"evidence was still seen at {seen}; an operator reviews the request"
    return RequestResult(request_id, subjects[0], "pending", f"pending: {why}")


def decide_request(
    store: RequestStore, request_id: int, *, grant: bool, by: str, why: str, now: datetime
) -> str:
    """Grant or deny request *request_id*; return the subject.

    A grant applies to the listings that existed when the request was made: a newer listing,
    made for newer evidence, stays. A granted carve-out takes the address out of the network
    listing at the next evaluation.
    """
    settle_requests(store, now)
    pending = [r for r in store.delist_requests(status="pending") if r.id == request_id]
    if not pending:
        known = [r for r in store.delist_requests() if r.id == request_id]
        if known:
            raise InputError(
                f"removal request #{request_id} is {known[0].status} ({known[0].why});"
                " see `reputable delist list --status ''`"
            )
        raise InputError(f"no pending removal request #{request_id}; see `reputable delist list`")
    request = pending[0]
    ts = now.timestamp()
    store.decide_delist(request_id, status="granted" if grant else "denied", by=by, why=why, now=ts)
    if grant and request.kind != "carve_out":
        for name in subject_names(request.subject):
            store.end_listings(
                name,
                now=ts,
                actor=by,
                why=f"removal request #{request_id}: {why}",
                listed_before=request.created_at.timestamp(),
            )
    return request.subject

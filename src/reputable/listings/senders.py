"""Domains that send spam from many listed IPs are listed on the domain zone too.

Sending behaviour belongs to the IP that did it (evidence/model.py, ``scoring_target``), so a
spam run naming a domain lists the sending IPs, not the domain. When one domain is seen in the
spam of at least ``domain_senders`` distinct listed IPs, the domain itself is listed for spam
with source ``policy:senders``: from when the N-th of those listings began until fewer than N
remain.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from reputable.core.cause import Cause
from reputable.listings.escalation import is_ip
from reputable.listings.policy import Decision

SOURCE = "policy:senders"


@dataclass(frozen=True, slots=True)
class SenderListing:
    """A domain listed because enough of its sending IPs are."""

    domain: str
    since: float
    until: float
    reason: str


def decide_senders(
    domain: str,
    senders: Collection[str],
    listed: Mapping[str, tuple[float, float]],
    *,
    threshold: int,
    now: float,
) -> SenderListing | None:
    """List *domain* when at least *threshold* of its *senders* are listed for spam at *now*.

    *listed* maps a listed sender to (since, until) of its spam listing.
    """
    live = {ip: listed[ip] for ip in senders if is_ip(ip) and ip in listed and listed[ip][1] > now}
    if len(live) < threshold:
        return None
    since = sorted(s for s, _ in live.values())[threshold - 1]
    until = sorted((u for _, u in live.values()), reverse=True)[threshold - 1]
    shown = sorted(live)
    names = ", ".join(shown[:3]) + (f" and {len(shown) - 3} more" if len(shown) > 3 else "")
    reason = f"spam: sent from {len(live)} listed addresses: {names}"
    return SenderListing(domain, since, until, reason[:160])


def spam_listings(
    decided: Mapping[tuple[str, Cause], Decision],
    stored: Collection[tuple[str, str, str, float, float | None]],
    chosen: Collection[str],
) -> dict[str, tuple[float, float]]:
    """Return listed sender -> (since, until) of its spam listing, this round's decisions first."""
    out: dict[str, tuple[float, float]] = {}
    for subject, cause, _, since, until in stored:
        if cause == Cause.SPAM.value and subject not in chosen:
            out[subject] = (since, until if until is not None else float("inf"))
    for (target, cause), decision in decided.items():
        if cause is Cause.SPAM:
            out[target] = (decision.listed_at, decision.expires_at)
    return out

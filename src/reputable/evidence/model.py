"""The value of stage 1: one piece of evidence."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import IPv4Address, IPv6Address, IPv6Network
from typing import Any, TypeAlias

from reputable.core.address import Domain
from reputable.core.cause import Cause

EvidenceSubject: TypeAlias = IPv4Address | IPv6Address | Domain

#: IPv6 evidence is scored per /64: one host, one /64 (a customer usually gets a whole /64).
IPV6_HOST_PREFIX = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """One fact about one subject: what was seen, why it matters, when, and how much."""

    subject: EvidenceSubject
    cause: Cause
    source: str
    observed_at: datetime
    weight: float = 1.0
    related_domain: Domain | None = None
    detail: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    key: str = ""

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", evidence_key(self))

    @property
    def target(self) -> str:
        """What this evidence is scored against (shared hosting: the domain comes first)."""
        return scoring_target(self.subject, self.related_domain)


def scoring_target(subject: EvidenceSubject, related_domain: Domain | None) -> str:
    """Return the scored subject: the related domain, else the IPv6 /64, else the subject."""
    if related_domain is not None:
        return related_domain.name
    if isinstance(subject, IPv6Address):
        return str(IPv6Network(f"{subject}/{IPV6_HOST_PREFIX}", strict=False))
    return str(subject)


def evidence_key(item: Evidence) -> str:
    """Return a stable idempotency key derived from every field of *item*."""
    raw = json.dumps(
        [
            str(item.subject),
            item.cause.value,
            item.source,
            item.observed_at.timestamp(),
            item.weight,
            item.related_domain.name if item.related_domain else None,
            item.detail,
        ],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    """A stored piece of evidence, as explain shows it."""

    id: int
    subject: str
    target: str
    cause: Cause
    source: str
    observed_at: datetime
    weight: float
    domain: str | None
    detail: dict[str, object]

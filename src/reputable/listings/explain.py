"""`reputable explain`: listed or not, since when and until when, why, and how to get off."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, Protocol

from reputable.core.address import Domain, parse_subject
from reputable.core.cause import Cause
from reputable.core.clock import format_instant
from reputable.evidence.model import EvidenceRecord
from reputable.listings.allowlist import Allowlist
from reputable.listings.delisting import subject_names
from reputable.listings.model import AllowEntry, AuditEntry, DelistRequest, Listing
from reputable.listings.policy import PolicyParams, network_of
from reputable.listings.ports import ListingReads
from reputable.listings.remediation import remediation
from reputable.reputation.aggregate import count_by_origin, load_pfx2as
from reputable.reputation.scoring import ReputationParams, accumulate, reputation


class ZoneCodes(Protocol):
    """A published zone as explain sees it: its return code per cause."""

    @property
    def codes(self) -> Mapping[Cause, IPv4Address]:
        """The A record answered for each cause."""
        ...


class ExplainConfig(Protocol):
    """The part of the configuration explain reads (reputable.config.Config has it)."""

    @property
    def ip_zone(self) -> ZoneCodes:
        """The IPv4 + IPv6 zone."""
        ...

    @property
    def domain_zone(self) -> ZoneCodes:
        """The domain zone."""
        ...

    @property
    def policy(self) -> PolicyParams:
        """The listing policy."""
        ...

    @property
    def reputation(self) -> ReputationParams:
        """The scoring parameters."""
        ...

    @property
    def pfx2as(self) -> Path | None:
        """The CAIDA prefix-to-AS table, if configured."""
        ...


class ExplainStore(ListingReads, Protocol):
    """What explain reads."""

    def allows(self, *, active_at: datetime | None = None) -> Iterator[AllowEntry]:
        """Yield allowlist entries active at *active_at*."""
        ...

    def evidence_records(self, subjects: Sequence[str], limit: int = 200) -> list[EvidenceRecord]:
        """Return the newest evidence about subjects."""
        ...

    def history(self, subjects: Sequence[str], limit: int = 100) -> list[AuditEntry]:
        """Return audit history."""
        ...

    def delist_requests(
        self, *, subject: str | None = None, status: str | None = None
    ) -> list[DelistRequest]:
        """Return removal requests."""
        ...


@dataclass(frozen=True, slots=True)
class Explanation:
    """Everything `explain` says about one subject."""

    subject: str
    listed: bool
    listings: list[dict[str, Any]]
    score: int
    bucket: str
    evidence: dict[str, Any]
    network: dict[str, Any] | None
    collateral: list[str]
    remediation: list[str]
    history: list[dict[str, Any]] = field(default_factory=list)
    allowlisted: bool = False  # DNS does not answer for it, whatever covers it

    def to_json(self) -> dict[str, Any]:
        """Return the documented JSON shape (docs/policy.md)."""
        return {
            "subject": self.subject,
            "listed": self.listed,
            "listings": self.listings,
            "score": self.score,
            "bucket": self.bucket,
            "evidence": self.evidence,
            "network": self.network,
            "collateral": self.collateral,
            "remediation": self.remediation,
            "history": self.history,
            "allowlisted": self.allowlisted,
        }


def ending_words(listing: Listing, now: datetime) -> str:
    """Say in words when *listing* ends if nothing new is seen."""
    if listing.expires_at is None:
        return "does not end by itself: an operator removes it"
    left = listing.expires_at - now
    days, rest = divmod(int(left.total_seconds()), 86400)
    hours = rest // 3600
    span = f"{days} d {hours} h" if days else f"{hours} h {rest % 3600 // 60} min"
    return f"ends {format_instant(listing.expires_at)} (in {span}) if nothing new is seen"


def _code(config: ExplainConfig, listing: Listing) -> str:
    zone = config.domain_zone if isinstance(listing.subject, Domain) else config.ip_zone
    return str(zone.codes[listing.cause])


def explain(
    store: ExplainStore, config: ExplainConfig, subject_text: str, now: datetime
) -> Explanation:
    """Return the explanation of *subject_text* at *now*."""
    subject = parse_subject(subject_text)
    names = subject_names(subject_text)
    canonical = names[0]
    is_host = not isinstance(subject, Domain) and subject.prefixlen == subject.max_prefixlen
    # Listings that cover the subject as DNS answers for it: its own, its /64, every range
    # that contains it (operator and feed ranges, escalations, prefixes), its parent domains.
    covering = [item for item in store.listings_where(subjects=names, active_at=now)]
    net = network_of(names[-1]) if not isinstance(subject, Domain) else None
    if not isinstance(subject, Domain):
        for item in store.listings_where(like="%/%", family=subject.version, active_at=now):
            whole = item.subject
            inside = not isinstance(whole, Domain) and whole.version == subject.version
            if inside and subject.subnet_of(whole) and item not in covering:  # type: ignore[arg-type]
                covering.append(item)
    if isinstance(subject, Domain):
        parents = [p.name for p in subject.parents()[1:]]
        covering.extend(store.listings_where(subjects=parents, active_at=now))
    allowlisted = Allowlist(store.allows(active_at=now)).covers(canonical)
    listings: list[dict[str, Any]] = [
        {
            "cause": item.cause.value,
            "code": _code(config, item),
            "since": format_instant(item.listed_at),
            "until": format_instant(item.expires_at),
            "reason": item.reason,
            "source": item.source,
            "subject": item.subject_text,
            "ends": ending_words(item, now),
        }
        for item in covering
    ]
    scores = accumulate(store.evidence_rows(names), config.reputation, now.timestamp()).get(
        names[-1], {}
    )
    if len(names) > 1:
        scores = {
            **accumulate(store.evidence_rows(names[:1]), config.reputation, now.timestamp()).get(
                names[0], {}
            ),
            **scores,
        }
    score, bucket = reputation(scores, config.policy.list_thresholds())
    records = store.evidence_records(names)
    by_cause = {
        cause.value: {
            "count": s.count,
            "score": round(s.value, 2),
            "first": format_instant(datetime.fromtimestamp(s.first_at, now.tzinfo)),
            "last": format_instant(datetime.fromtimestamp(s.last_at, now.tzinfo)),
        }
        for cause, s in scores.items()
    }
    sources = Counter(r.source for r in records)
    evidence = {
        "total": sum(s.count for s in scores.values()),
        "by_cause": by_cause,
        "sources": dict(sources.most_common()),
        "recent": [
            {
                "at": format_instant(r.observed_at),
                "cause": r.cause.value,
                "source": r.source,
                "weight": r.weight,
                "domain": r.domain,
                "detail": r.detail,
            }
            for r in records[:10]
        ],
        "attributed_to_domains": sorted({r.domain for r in records if r.domain}),
    }
    network = None
    if net is not None:
        members = [
            item.subject_text
            for item in store.listings_where(
                like=net.rsplit(".", 1)[0] + ".%" if ":" not in net else None,
                family=4 if ":" not in net else 6,
                active_at=now,
            )
            if item.cause in config.policy.escalate_causes
        ]
        network = {
            "network": net,
            "listed_members": len(set(members)),
            "threshold": config.policy.escalate_v4 if ":" not in net else config.policy.escalate_v6,
            "escalated": any(item["source"].startswith("policy:network") for item in listings),
        }
    if config.pfx2as is not None and not isinstance(subject, Domain):
        network = {**(network or {}), **_origin(store, config, subject, now)}
    collateral: list[str] = []
    if is_host:
        collateral = sorted(store.domains_on([canonical]).get(canonical, set()))
    history = [
        {
            "at": format_instant(h.at),
            "actor": h.actor,
            "action": h.action,
            "cause": h.cause,
            "detail": h.detail,
        }
        for h in store.history(names)
    ]
    history += [
        {
            "at": format_instant(r.created_at),
            "actor": r.contact,
            "action": f"removal request #{r.id}",
            "cause": None,
            "detail": f"{r.status}: {r.note}" + (f" ({r.why})" if r.why else ""),
        }
        for r in store.delist_requests(subject=canonical)
    ]
    causes = list(dict.fromkeys(Cause(item["cause"]) for item in listings))
    return Explanation(
        subject=canonical,
        listed=bool(listings) and not allowlisted,
        allowlisted=allowlisted,
        listings=listings,
        score=score,
        bucket=bucket.value,
        evidence=evidence,
        network=network,
        collateral=collateral,
        remediation=remediation(causes),
        history=history,
    )


def _origin(
    store: ExplainStore, config: ExplainConfig, subject: Any, now: datetime
) -> dict[str, Any]:
    """Return the announced prefix and ASN of *subject* and how many listings each holds."""
    if config.pfx2as is None:
        return {}
    table = load_pfx2as(config.pfx2as)
    found = table.lookup(subject)
    if found is None:
        return {"announced_prefix": None, "asn": None}
    family = subject.version
    listed = [item.subject for item in store.listings_where(family=family, active_at=now)]
    by_prefix, by_asn = count_by_origin(table, listed)  # type: ignore[arg-type]
    return {
        "announced_prefix": str(found.prefix),
        "asn": list(found.asns),
        "listed_in_prefix": by_prefix.get(str(found.prefix), 0),
        "listed_in_asn": {str(a): by_asn.get(a, 0) for a in found.asns},
    }

"""The policy engine: evidence scores in, policy listings out (the I/O around listings/policy.py).

``evaluate`` recomputes the listings of a set of targets (all of them for a full run, the
ones touched by new evidence for an incremental one), then the shared-hosting IPs and the
escalation networks those targets belong to, diffs the result against the store and
applies the difference in one transaction. Running it twice changes nothing the second time.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from reputable.core.address import Domain, format_subject, parse_subject
from reputable.core.cause import Cause
from reputable.listings.model import AllowEntry, Listing
from reputable.listings.policy import (
    Decision,
    Escalation,
    Period,
    PolicyChanges,
    PolicyParams,
    decide,
    escalate,
    hosting_decision,
    network_of,
)
from reputable.listings.ports import PolicyStore
from reputable.reputation.scoring import (
    Bucket,
    CauseScore,
    ReputationParams,
    accumulate,
    reputation,
)

SOURCE = "policy"
NETWORK_SOURCE = "policy:network"
HOSTING_SOURCE = "policy:hosting"
CURSOR = "policy_evidence"


@dataclass(slots=True)
class Outcome:
    """What one evaluation decided and changed."""

    targets: int = 0
    decisions: list[Decision] = field(default_factory=list)
    escalations: dict[str, Escalation | None] = field(default_factory=dict)
    hosting: dict[str, Decision | None] = field(default_factory=dict)
    changes: PolicyChanges = field(default_factory=PolicyChanges)
    seconds: float = 0.0


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(round(ts), UTC)


class Allowlist:
    """Fast membership tests against the active allowlist (allowlist always wins)."""

    def __init__(self, entries: Iterable[AllowEntry]) -> None:
        self.domains: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in entries:
            if isinstance(entry.subject, Domain):
                self.domains.add(entry.subject.name)
            else:
                self.networks.append(entry.subject)

    def covers(self, target: str) -> bool:
        """True when *target* (address, network or domain) is allowlisted."""
        subject = parse_subject(target)
        if isinstance(subject, Domain):
            return any(p.name in self.domains for p in subject.parents())
        return any(
            subject.version == n.version and subject.subnet_of(n)  # type: ignore[arg-type]
            for n in self.networks
        )


def _listing(
    target: str, cause: Cause, reason: str, source: str, listed_at: float, until: float
) -> Listing:
    return Listing(
        subject=parse_subject(target),
        cause=cause,
        reason=reason,
        source=source,
        listed_at=_dt(listed_at),
        expires_at=_dt(until),
    )


def evaluate(
    store: PolicyStore,
    policy: PolicyParams,
    rep: ReputationParams,
    now_dt: datetime,
    targets: Collection[str] | None = None,
    *,
    apply: bool = True,
) -> Outcome:
    """Evaluate *targets* (None: every target with evidence) at *now_dt*; apply unless told not to."""
    started = time.perf_counter()
    now = now_dt.timestamp()
    full = targets is None
    chosen = store.all_targets() if targets is None else set(targets)
    scores = accumulate(store.evidence_rows(None if full else chosen), rep, now)
    allow = Allowlist(store.allows(active_at=now_dt))
    periods = store.periods(chosen)
    removals = store.granted_removals()
    outcome = Outcome(targets=len(chosen))

    # 1. Individual decisions.
    decided: dict[tuple[str, Cause], Decision] = {}
    new_periods: list[tuple[str, Cause, Period]] = []
    period_updates: list[tuple[str, Cause, float, float, str | None]] = []
    for target in chosen:
        by_cause = scores.get(target, {})
        causes = {c for c in by_cause if c in policy.rules} | {
            c for (t, c) in periods if t == target and c in policy.rules
        }
        for cause in causes:
            history = periods.get((target, cause), [])
            current = next(
                (p for p in reversed(history) if p.ended_by is None and p.ends_at > now), None
            )
            decision = None
            if not allow.covers(target):
                decision = decide(
                    target,
                    cause,
                    by_cause.get(cause, CauseScore()),
                    half_life=rep.seconds(cause),
                    rule=policy.rules[cause],
                    current=current,
                    history=history,
                    relist_after=removals.get(target),
                    params=policy,
                    now=now,
                )
            if decision is not None:
                decided[(target, cause)] = decision
                if current is None:
                    new_periods.append(
                        (
                            target,
                            cause,
                            Period(decision.listed_at, decision.min_until, decision.expires_at),
                        )
                    )
                elif abs(current.ends_at - decision.expires_at) >= 1:
                    period_updates.append(
                        (target, cause, current.listed_at, decision.expires_at, None)
                    )
            elif current is not None:
                period_updates.append(
                    (
                        target,
                        cause,
                        current.listed_at,
                        now,
                        "allowlist" if allow.covers(target) else "decay",
                    )
                )
    outcome.decisions = list(decided.values())

    existing = {
        (item.subject_text, item.cause): item
        for item in store.listings_where(
            subjects=sorted(chosen), source_prefix=SOURCE, active_at=now_dt
        )
        if item.source == SOURCE
    }
    upserts = [
        _listing(d.target, d.cause, d.reason, SOURCE, d.listed_at, d.expires_at)
        for key, d in decided.items()
        if key not in existing or _differs(existing[key], d)
    ]
    ends = [(t, c, SOURCE) for (t, c) in existing if (t, c) not in decided]
    drops: list[tuple[str | None, str]] = []

    # 2. Shared hosting: IPs whose listed domains may have changed.
    domains = {t for t in chosen if not _is_ip(t)}
    hosting_ips = store.ips_of(domains) if domains else set()
    if full:
        hosting_ips |= {
            item.subject_text for item in store.listings_where(source_prefix=HOSTING_SOURCE)
        }
    if hosting_ips:
        on = store.domains_on(hosting_ips)
        all_domains = {d for ds in on.values() for d in ds}
        listed = _listed_domains(store, all_domains, decided, chosen, now_dt)
        for ip in sorted(hosting_ips):
            mine = {d: listed[d] for d in on.get(ip, ()) if d in listed}
            decision = (
                None
                if allow.covers(ip)
                else hosting_decision(ip, mine, threshold=policy.hosting_domains, now=now)
            )
            outcome.hosting[ip] = decision
            old = store.listings_where(
                subjects=[ip], source_prefix=HOSTING_SOURCE, active_at=now_dt
            )
            if decision is None:
                if old:
                    drops.append((ip, HOSTING_SOURCE))
            elif not old or old[0].cause is not decision.cause or _differs(old[0], decision):
                drops.append((ip, HOSTING_SOURCE))
                upserts.append(
                    _listing(
                        ip,
                        decision.cause,
                        decision.reason,
                        HOSTING_SOURCE,
                        old[0].listed_at.timestamp() if old else now,
                        decision.expires_at,
                    )
                )

    # 3. Network escalation of the /24s and /48s the targets live in.
    networks = {n for t in chosen if _is_ip(t) and (n := network_of(t))}
    if full:
        networks |= {
            item.source.split(":", 2)[2]
            for item in store.listings_where(source_prefix=NETWORK_SOURCE)
        }
    if networks:
        clean = store.clean_targets()
        for network in sorted(networks):
            members = _members(store, network, policy, decided, chosen, now_dt)
            threshold = policy.escalate_v4 if ":" not in network else policy.escalate_v6
            carve = _carve_outs(store, network, clean, policy, rep, now)
            result = (
                None
                if allow.covers(network)
                else escalate(network, members, carve, threshold=threshold, now=now)
            )
            outcome.escalations[network] = result
            source = f"{NETWORK_SOURCE}:{network}"
            old = store.listings_where(source_prefix=source, active_at=now_dt)
            if result is None:
                if old:
                    drops.append((None, source))
                continue
            unchanged = (
                {item.subject_text for item in old} == set(result.cidrs)
                and all(
                    abs(item.expires_at.timestamp() - result.expires_at) < 1
                    for item in old
                    if item.expires_at
                )
                and all(item.reason == result.reason for item in old)
            )
            if not unchanged:
                since = min((item.listed_at.timestamp() for item in old), default=now)
                drops.append((None, source))
                upserts.extend(
                    _listing(cidr, Cause.NETWORK, result.reason, source, since, result.expires_at)
                    for cidr in result.cidrs
                )

    outcome.changes = PolicyChanges(
        upserts=tuple(upserts),
        ends=tuple(ends),
        drops=tuple(drops),
        new_periods=tuple(new_periods),
        period_updates=tuple(period_updates),
    )
    if apply:
        store.apply_policy(outcome.changes, actor="policy", now=now)
    outcome.seconds = time.perf_counter() - started
    return outcome


def evaluate_new(
    store: PolicyStore, policy: PolicyParams, rep: ReputationParams, now: datetime
) -> Outcome:
    """Evaluate only the targets touched by evidence stored since the last call (incremental)."""
    after = store.cursor(CURSOR)
    targets, newest = store.evidence_targets_since(after)
    outcome = evaluate(store, policy, rep, now, targets)
    store.set_cursor(CURSOR, newest)
    return outcome


def _is_ip(target: str) -> bool:
    return ":" in target or target.replace(".", "").replace("/", "").isdigit()


def _differs(old: Listing, new: Decision) -> bool:
    old_until = old.expires_at.timestamp() if old.expires_at else float("inf")
    return abs(old_until - new.expires_at) >= 1 or old.reason != new.reason


def _listed_domains(
    store: PolicyStore,
    domains: set[str],
    decided: dict[tuple[str, Cause], Decision],
    chosen: Collection[str],
    now_dt: datetime,
) -> dict[str, tuple[Cause, float]]:
    """Return listed domains -> (cause, expiry), this round's decisions overriding the store."""
    out: dict[str, tuple[Cause, float]] = {}
    for listing in store.listings_where(subjects=sorted(domains), active_at=now_dt):
        if listing.source == SOURCE and listing.subject_text in chosen:
            continue  # re-decided this round
        until = listing.expires_at.timestamp() if listing.expires_at else float("inf")
        out[listing.subject_text] = (listing.cause, until)
    for (target, cause), decision in decided.items():
        if target in domains:
            out[target] = (cause, decision.expires_at)
    return out


def _members(
    store: PolicyStore,
    network: str,
    policy: PolicyParams,
    decided: dict[tuple[str, Cause], Decision],
    chosen: Collection[str],
    now_dt: datetime,
) -> dict[str, float]:
    """Return the listed members (address or /64) of *network* -> latest expiry."""
    net = ipaddress.ip_network(network)
    host_len = 32 if net.version == 4 else 64
    if net.version == 4:
        candidates = store.listings_where(
            like=network.rsplit(".", 1)[0] + ".%", family=4, active_at=now_dt
        )
    else:
        candidates = store.listings_where(family=6, active_at=now_dt)
    members: dict[str, float] = {}
    for listing in candidates:
        subject = listing.subject
        if listing.cause not in policy.escalate_causes or isinstance(subject, Domain):
            continue
        if subject.prefixlen != host_len or not subject.subnet_of(net):  # type: ignore[arg-type]
            continue
        if listing.source == SOURCE and listing.subject_text in chosen:
            continue
        until = listing.expires_at.timestamp() if listing.expires_at else float("inf")
        members[listing.subject_text] = max(members.get(listing.subject_text, 0.0), until)
    for (target, cause), decision in decided.items():
        if cause in policy.escalate_causes and _is_ip(target):
            sub = parse_subject(target)
            if not isinstance(sub, Domain) and sub.prefixlen == host_len and sub.subnet_of(net):  # type: ignore[arg-type]
                members[format_subject(sub)] = max(members.get(target, 0.0), decision.expires_at)
    return members


def _carve_outs(
    store: PolicyStore,
    network: str,
    clean: set[str],
    policy: PolicyParams,
    rep: ReputationParams,
    now: float,
) -> list[str]:
    """Return the members of *network* whose reputation is good: they are spared."""
    net = ipaddress.ip_network(network)
    inside = []
    for target in clean:
        if not _is_ip(target):
            continue
        sub = ipaddress.ip_network(target, strict=False)
        if sub.version == net.version and sub.subnet_of(net):  # type: ignore[arg-type]
            inside.append(target)
    if not inside:
        return []
    scores = accumulate(store.evidence_rows(inside), rep, now)
    thresholds = policy.list_thresholds()
    return [t for t in inside if reputation(scores.get(t, {}), thresholds)[1] is Bucket.GOOD]

"""The policy engine: evidence scores in, policy listings out (the I/O around listings/policy.py).

``evaluate`` recomputes the listings of a set of targets (all of them for a full run, the
ones touched by new evidence for an incremental one), then the shared-hosting IPs and the
escalation networks those targets belong to, diffs the result against the store and
applies the difference in one transaction. Running it twice changes nothing the second time.

Speed (bench/policy_scale.py, docs/benchmarks.md): the store is read a bounded number of
times per evaluation, never once per target or per network, and the per-network inputs
(listed members, carve-out candidates, old escalations) are grouped in one pass each.
"""

from __future__ import annotations

import gc
import ipaddress
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from reputable.core.cause import Cause
from reputable.listings.allowlist import Allowlist
from reputable.listings.delisting import settle_requests, subject_names
from reputable.listings.escalation import (
    carve_outs,
    escalation_threshold,
    members,
    networks_of,
)
from reputable.listings.hosted import decide_hosting, decide_sending_domains
from reputable.listings.individual import (
    Individual,
    decide_individual,
    replay_all,
    with_reasons,
)
from reputable.listings.policy import (
    Decision,
    Escalation,
    ListingRow,
    PolicyChanges,
    PolicyParams,
    escalate,
)
from reputable.listings.ports import PolicyStore
from reputable.listings.prefixes import prefix_changes, prefix_escalations
from reputable.listings.reason import reason_count
from reputable.listings.rows import listing_row, moved
from reputable.listings.timeline import Span, Stop
from reputable.reputation.aggregate import PrefixTable
from reputable.reputation.scoring import (
    CauseScore,
    ReputationParams,
    accumulate_events,
)

SOURCE = "policy"
NETWORK_SOURCE = "policy:network"
CURSOR = "policy_evidence"
REQUEST_CURSOR = "policy_requests"
TIME_CURSOR = "policy_time"  # when the last evaluation ran (epoch seconds)

Decided = dict[tuple[str, Cause], Decision]
PeriodUpdate = tuple[str, Cause, float, float, str | None]


@dataclass(slots=True)
class Outcome:
    """What one evaluation decided and changed."""

    targets: int = 0  # re-decided, and those whose networks only were (new clean evidence)
    decisions: list[Decision] = field(default_factory=list)
    escalations: dict[str, Escalation | None] = field(default_factory=dict)
    hosting: dict[str, Decision | None] = field(default_factory=dict)
    changes: PolicyChanges = field(default_factory=PolicyChanges)
    seconds: float = 0.0


def evaluate(
    store: PolicyStore,
    policy: PolicyParams,
    rep: ReputationParams,
    now_dt: datetime,
    targets: Collection[str] | None = None,
    *,
    apply: bool = True,
    prefixes: PrefixTable | None = None,
    neighbours: Collection[str] = (),
) -> Outcome:
    """Evaluate *targets* (None: every target with evidence) at *now_dt*; apply unless told not to.

    *neighbours*: targets whose own listings stand but whose networks (escalations and
    their carve-outs) are re-decided as well, e.g. targets with new clean evidence only.
    """
    started = time.perf_counter()
    with _gc_paused():
        outcome = _evaluate(
            store, policy, rep, now_dt, targets, apply=apply, prefixes=prefixes, nearby=neighbours
        )
    outcome.seconds = time.perf_counter() - started
    return outcome


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Hold off Python's cyclic garbage collector for the block.

    An evaluation allocates millions of small acyclic objects (a full run keeps an event
    tuple per evidence row); each allocation burst set off full collections that walked them
    all again: 40 % of the scoring pass over 1,000,000 rows (5.0 s -> 2.8-3.1 s CPU,
    bench/policy_scale.py). Nothing the engine builds is cyclic; the collector runs as usual
    once the block is over.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _evaluate(
    store: PolicyStore,
    policy: PolicyParams,
    rep: ReputationParams,
    now_dt: datetime,
    targets: Collection[str] | None,
    *,
    apply: bool,
    prefixes: PrefixTable | None,
    nearby: Collection[str],
) -> Outcome:
    now = now_dt.timestamp()
    full = targets is None
    chosen = store.all_targets() if targets is None else set(targets)
    scores = accumulate_events(store.evidence_rows(None if full else chosen), rep, now)
    allow = Allowlist(store.allows(active_at=now_dt))
    outcome = Outcome(targets=len(chosen) + len(nearby))

    # 1. Individual decisions, in event time (listings/timeline.py).
    ind = _individual(store, chosen, scores, allow, policy, rep, now, full=full)
    decided = ind.decided
    # Plain rows, not Listing objects: incremental runs read thousands (bench/policy_scale.py).
    causes = {c.value: c for c in Cause}
    existing = {
        (subject, causes[cause]): (reason, listed_at, until)
        for subject, cause, reason, listed_at, until in store.own_rows(
            None if full else chosen, source=SOURCE, active_at=now
        )
        if subject in chosen
    }
    # Reasons count the evidence of each period. A stored listing with the same start, end
    # and count keeps its words (its evidence is the same); others are counted again.
    stale = {
        key: d
        for key, d in decided.items()
        if key not in existing
        or moved(existing[key], d, reason=False)
        or reason_count(existing[key][0]) != ind.spans[key][-1].count
    }
    if stale:
        labels = store.evidence_labels({t for t, _ in stale})
        decided.update(with_reasons(stale, ind.spans, labels))
    for key, d in decided.items():
        if key not in stale:
            decided[key] = Decision(
                d.target, d.cause, d.listed_at, d.min_until, d.expires_at, existing[key][0]
            )
    outcome.decisions = list(decided.values())
    upserts = [
        listing_row(d.target, d.cause, d.reason, SOURCE, d.listed_at, d.expires_at)
        for key, d in decided.items()
        if key not in existing or moved(existing[key], d)
    ]
    ends = [
        (t, c, SOURCE, *_ending(ind.spans.get((t, c), []), allow.covers(t), now))
        for (t, c) in existing
        if (t, c) not in decided
    ]
    new_periods, period_updates = ind.new_periods, ind.period_updates
    drops: list[tuple[str | None, str]] = []
    retimes: list[tuple[str, str, float, float]] = []

    # 2. Shared hosting: IPs whose listed domains may have changed.
    decide_hosting(
        store, policy, allow, decided, chosen, now_dt, full, outcome.hosting, upserts, drops
    )

    # 2b. Domains that send spam from enough listed IPs.
    spammers = None if full else {t for t in chosen if Cause.SPAM in scores.get(t, {})}
    decide_sending_domains(store, policy, allow, decided, spammers, chosen, now, upserts, drops)

    # 3. Network escalation of the /24s and /48s the targets live in.
    networks = networks_of(chosen) | networks_of(nearby)
    if full:
        networks |= {
            item.source.split(":", 2)[2]
            for item in store.listings_where(source_prefix=NETWORK_SOURCE)
        }
    if networks:
        _escalations(
            store,
            networks,
            policy,
            rep,
            scores,
            allow,
            decided,
            chosen,
            now_dt,
            outcome,
            upserts,
            drops,
            retimes,
        )

    # 4. Opt-in: whole announced prefixes (pfx2as) with too many listed addresses.
    if prefixes is not None and policy.escalate_prefix > 0:
        results, stored = prefix_escalations(
            store, prefixes, policy, allow, decided, chosen, now_dt, full=full, own_source=SOURCE
        )
        outcome.escalations.update(results)
        more, dropped = prefix_changes(results, stored, now, listing_row)
        upserts.extend(more)
        drops.extend(dropped)

    outcome.changes = PolicyChanges(
        upserts=tuple(upserts),
        ends=tuple(ends),
        drops=tuple(drops),
        new_periods=tuple(new_periods),
        period_updates=tuple(period_updates),
        retimes=tuple(retimes),
    )
    if apply:
        store.apply_policy(outcome.changes, actor="policy", now=now)
        if full:  # everything was re-decided: the next incremental run starts from here
            store.set_cursor(TIME_CURSOR, int(now))
    return outcome


def _individual(
    store: PolicyStore,
    chosen: Collection[str],
    scores: dict[str, dict[Cause, CauseScore]],
    allow: Allowlist,
    policy: PolicyParams,
    rep: ReputationParams,
    now: float,
    *,
    full: bool,
) -> Individual:
    """Replay the evidence of every (target, cause) that could list; decide from the periods."""
    stops: dict[str, list[Stop]] = {}
    for subject, grants in store.removal_stops().items():
        for name in subject_names(subject):
            stops.setdefault(name, []).extend(
                Stop(decided, created, "request") for created, decided in grants
            )
    # Only targets with relay/proxy evidence can have a listing a re-probe ends.
    probed = {t for t, by in scores.items() if Cause.OPEN_RELAY in by or Cause.OPEN_PROXY in by}
    closures = store.probe_closures(probed) if probed else {}
    spans = replay_all(scores, stops, closures, policy, rep, now)
    return decide_individual(chosen, spans, store.periods(None if full else chosen), allow, now)


def _ending(spans: list[Span], covered: bool, now: float) -> tuple[float, str]:
    """Return when and why a stored listing with no decision any more ended."""
    if covered:
        return now, "allowlisted"
    if spans and not spans[-1].open:
        last = spans[-1]
        return min(last.until, now), _ENDED.get(
            last.ended_by, "score fell below the delisting threshold"
        )
    return now, "no evidence supports it any more"


_ENDED: Final = {
    "decay": "score fell below the delisting threshold",
    "quiet": "nothing new was seen for the maximum quiet time",
    "minimum": "minimum listing time over and the score has decayed",
    "request": "removal request granted",
    "probe": "a re-probe found it closed",
}


def _escalations(
    store: PolicyStore,
    networks: set[str],
    policy: PolicyParams,
    rep: ReputationParams,
    scores: dict[str, dict[Cause, CauseScore]],
    allow: Allowlist,
    decided: Decided,
    chosen: Collection[str],
    now_dt: datetime,
    outcome: Outcome,
    upserts: list[ListingRow],
    drops: list[tuple[str | None, str]],
    retimes: list[tuple[str, str, float, float]],
) -> None:
    """Re-decide the escalation of every network in *networks*."""
    now = now_dt.timestamp()
    causes = sorted(c.value for c in policy.escalate_causes)
    rows = store.escalation_members(causes, active_at=now)
    listed = members(rows, networks, policy, decided, chosen, source=SOURCE)
    # escalate() lists nothing below its threshold of live members, carve-outs or not: look
    # for carve-outs only in the networks that reach it.
    reaching = {
        network
        for network, mine in listed.items()
        if sum(1 for until in mine.values() if until > now) >= escalation_threshold(policy, network)
    }
    carve = carve_outs(store, reaching, policy, rep, scores, now) if reaching else {}
    # When each member's listing began (event time): the stored one, this round's decision.
    # Only the members of the networks that reach the threshold are asked for (escalate()).
    starts: dict[str, float] = {}
    if reaching:
        wanted = {member for network in reaching for member in listed[network]}
        for subject, _, src, listed_at, _ in rows:
            if subject in wanted and not (src == SOURCE and subject in chosen):  # re-decided
                starts[subject] = min(starts.get(subject, listed_at), listed_at)
        for (target, cause), decision in decided.items():
            if target in wanted and cause in policy.escalate_causes:
                starts[target] = min(starts.get(target, decision.listed_at), decision.listed_at)
    # (subject, reason, listed_at, expires_at) of the stored escalation CIDRs, per source.
    olds: dict[str, list[tuple[str, str, float, float | None]]] = {}
    for subject, src, why, listed_at, expires_at in store.policy_source_rows(
        NETWORK_SOURCE, active_at=now
    ):
        olds.setdefault(src.lower(), []).append(
            (subject, why, listed_at, expires_at)
        )  # LIKE ignores ASCII case
    # The networks below the threshold (most of an incremental run's thousands) list nothing:
    # only a stored escalation of theirs has to go.
    stored = {src[len(NETWORK_SOURCE) + 1 :] for src in olds}
    for network in sorted(networks):
        if network not in reaching:
            outcome.escalations[network] = None
            if network.lower() in stored:
                drops.append((None, f"{NETWORK_SOURCE}:{network}"))
            continue
        threshold = escalation_threshold(policy, network)
        result = (
            None
            if allow.covers(network)
            else escalate(
                network,
                listed.get(network, {}),
                carve.get(network, []) + _allowed_in(allow, network),
                threshold=threshold,
                now=now,
                starts=starts,
            )
        )
        outcome.escalations[network] = result
        source = f"{NETWORK_SOURCE}:{network}"
        old = olds.get(source.lower(), [])
        if result is None:
            if old:
                drops.append((None, source))
            continue
        # Stored subjects are canonical (a /32 is a bare address): compare like with like.
        if {subject for subject, _, _, _ in old} != {_canonical(cidr) for cidr in result.cidrs}:
            drops.append((None, source))
            upserts.extend(
                listing_row(
                    cidr, Cause.NETWORK, result.reason, source, result.since, result.expires_at
                )
                for cidr in result.cidrs
            )
        elif not (
            all(abs(until - result.expires_at) < 1 for _, _, _, until in old if until is not None)
            and all(why == result.reason for _, why, _, _ in old)
            and all(abs(listed_at - round(result.since)) < 1 for _, _, listed_at, _ in old)
        ):  # the same CIDRs, listed from or until another time or for other members
            retimes.append((source, result.reason, round(result.since), round(result.expires_at)))


def _allowed_in(allow: Allowlist, network: str) -> list[str]:
    """Return the allowlisted networks inside *network*: cut out of its escalation as well."""
    if not allow.networks:
        return []
    net = ipaddress.ip_network(network)
    return [
        str(n)
        for n in allow.networks
        if n.version == net.version and n.subnet_of(net)  # type: ignore[arg-type]
    ]


def evaluate_new(
    store: PolicyStore,
    policy: PolicyParams,
    rep: ReputationParams,
    now: datetime,
    *,
    prefixes: PrefixTable | None = None,
) -> Outcome:
    """Evaluate only the targets touched by evidence stored since the last call (incremental)."""
    after = store.cursor(CURSOR)
    # Targets whose only new evidence is clean keep their own listings (clean evidence never
    # lists, and only a re-probe's ends one): their networks' carve-outs are re-decided.
    targets, clean_only, newest = store.policy_targets_since(after, observed_by=now.timestamp())
    # Decided removal and carve-out requests re-decide their subjects (and networks) too.
    decided, latest = store.requests_decided_since(store.cursor(REQUEST_CURSOR))
    for subject in decided:
        targets.update(subject_names(subject))
    # Listings that expired since the last run re-decide the networks and shared-hosting IPs
    # they counted towards: an escalation at T names the members live at T, whatever ran.
    ts = now.timestamp()
    last_run = store.cursor(TIME_CURSOR) or int(ts - 86400)
    targets.update(store.expired_between(last_run, ts))
    outcome = evaluate(
        store, policy, rep, now, targets, prefixes=prefixes, neighbours=clean_only - targets
    )
    store.set_cursor(CURSOR, newest)
    store.set_cursor(REQUEST_CURSOR, int(latest))
    store.set_cursor(TIME_CURSOR, int(ts))
    settle_requests(store, now)
    return outcome


def _canonical(cidr: str) -> str:
    """Return a CIDR as the store writes its subject: a single address without /32 or /128."""
    return cidr.removesuffix("/128" if ":" in cidr else "/32")

"""Listing policy (pure): thresholds with hysteresis, minimum time, recidivism, escalation, hosting.

All times are epoch seconds; every function takes *now*. The engine (listings/engine.py)
gathers the inputs from the store and applies the decisions.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple

from reputable.core.cause import Cause
from reputable.reputation.scoring import CauseScore, crossing_time

DAY: Final = 86400.0


@dataclass(frozen=True, slots=True)
class CauseRule:
    """When one cause lists and delists: list at *list_at*, delist below *delist_at*."""

    list_at: float
    delist_at: float
    min_listing: timedelta


DEFAULT_RULES: Final[dict[Cause, CauseRule]] = {
    Cause.SPAM: CauseRule(2.5, 1.0, timedelta(hours=24)),
    Cause.HARVEST: CauseRule(2.5, 1.0, timedelta(hours=24)),
    Cause.COMPROMISED: CauseRule(2.5, 1.0, timedelta(hours=24)),
    Cause.OPEN_RELAY: CauseRule(1.0, 0.5, timedelta(days=2)),
    Cause.OPEN_PROXY: CauseRule(1.0, 0.5, timedelta(days=2)),
    Cause.MALWARE_HOST: CauseRule(1.0, 0.5, timedelta(hours=24)),
    Cause.RDNS: CauseRule(1.0, 0.5, timedelta(days=7)),
    Cause.MANUAL: CauseRule(1.0, 0.5, timedelta(days=7)),
}


#: How long a listing outlives its last evidence at most (None: until its score decays).
#: Spam-like causes follow the public lists (UCEPROTECT level 1: 7 days; SpamCop: 24 hours);
#: relays and proxies end sooner when a re-probe finds them closed.
DEFAULT_MAX_QUIET: Final[dict[Cause, timedelta | None]] = {
    Cause.SPAM: timedelta(days=7),
    Cause.HARVEST: timedelta(days=7),
    Cause.COMPROMISED: timedelta(days=7),
    Cause.OPEN_RELAY: timedelta(days=30),
    Cause.OPEN_PROXY: timedelta(days=30),
    Cause.MALWARE_HOST: timedelta(days=3),
    Cause.RDNS: timedelta(days=30),
    Cause.MANUAL: None,
}


@dataclass(frozen=True, slots=True)
class PolicyParams:
    """Every threshold of the listing policy (documented in docs/policy.md)."""

    rules: Mapping[Cause, CauseRule] = field(default_factory=lambda: dict(DEFAULT_RULES))
    recidivism_window: timedelta = timedelta(days=90)
    max_listing: timedelta = timedelta(days=180)
    escalate_v4: int = 8  # listed addresses in one IPv4 /24
    escalate_v6: int = 8  # listed /64s in one IPv6 /48
    escalate_causes: frozenset[Cause] = frozenset({Cause.SPAM, Cause.COMPROMISED})
    hosting_domains: int = 2  # listed domains on one IP before the IP is listed
    escalate_prefix: int = (
        0  # opt-in: listed addresses in one announced prefix (pfx2as) that list it
    )
    quiet_period: timedelta = timedelta(days=7)
    self_removals: int = 3
    self_removal_window: timedelta = timedelta(days=30)
    interval: timedelta = timedelta(seconds=5)
    max_quiet: Mapping[Cause, timedelta | None] = field(
        default_factory=lambda: dict(DEFAULT_MAX_QUIET)
    )
    domain_senders: int = 3  # distinct listed IPs sending spam for one domain that list it
    contact: str = ""  # how a listed party reaches the list operator (refusals quote it)
    reprobe_every: timedelta = timedelta(days=1)  # serve re-probes probe-made listings

    def list_thresholds(self) -> dict[Cause, float]:
        """Return the listing threshold of every cause that can list."""
        return {c: r.list_at for c, r in self.rules.items()}


@dataclass(frozen=True, slots=True)
class Period:
    """One listing period the policy made (for hysteresis, minimum time and recidivism)."""

    listed_at: float
    min_until: float
    ends_at: float
    ended_by: str | None = None  # None while open


@dataclass(frozen=True, slots=True)
class Decision:
    """List *target* for *cause* from *listed_at* until *expires_at*, with a reason."""

    target: str
    cause: Cause
    listed_at: float
    min_until: float
    expires_at: float
    reason: str


def required_duration(
    rule: CauseRule, history: Sequence[Period], params: PolicyParams, now: float
) -> float:
    """Return the minimum length of a new listing: doubled for each recent one, capped."""
    base = rule.min_listing.total_seconds()
    window = params.recidivism_window.total_seconds()
    ended = [p for p in history if p.ended_by is not None or p.ends_at <= now]
    recent = [p for p in ended if p.ends_at >= now - window]
    if not recent:
        return base
    last = max(recent, key=lambda p: p.listed_at)
    return min(max(base, 2 * (last.ends_at - last.listed_at)), params.max_listing.total_seconds())


def decide(
    target: str,
    cause: Cause,
    score: CauseScore,
    *,
    half_life: float,
    rule: CauseRule,
    current: Period | None,
    history: Sequence[Period],
    relist_after: float | None,
    params: PolicyParams,
    now: float,
) -> Decision | None:
    """Return the listing *target* should have for *cause* at *now*, or None.

    Listed when the score reaches ``list_at``; once listed, it stays until the score decays
    below ``delist_at`` (hysteresis) and at least until ``min_until``. After a removal on
    request (*relist_after*), only evidence newer than the removal can list it again.
    """
    last = (
        datetime.fromtimestamp(score.last_at, UTC).strftime("%Y-%m-%dT%H:%MZ")
        if score.count
        else "-"
    )
    reason = f"{cause.value}: {score.count} piece(s) of evidence, last seen {last}"
    if current is not None and current.ended_by is None and current.ends_at > now:
        until = max(crossing_time(score.value, rule.delist_at, half_life, now), current.min_until)
        if until <= now:
            return None
        return Decision(target, cause, current.listed_at, current.min_until, until, reason)
    if score.value < rule.list_at:
        return None
    if relist_after is not None and score.last_at <= relist_after:
        return None
    min_until = now + required_duration(rule, history, params, now)
    until = max(crossing_time(score.value, rule.delist_at, half_life, now), min_until)
    return Decision(target, cause, now, min_until, until, reason)


def network_of(target: str) -> str | None:
    """Return the escalation network of an address target: its IPv4 /24 or IPv6 /48."""
    try:
        net = ipaddress.ip_network(target, strict=False)
    except ValueError:
        return None
    prefix = 24 if net.version == 4 else 48
    if net.prefixlen < prefix:
        return None
    return str(net.supernet(new_prefix=prefix))


@dataclass(frozen=True, slots=True)
class Escalation:
    """A network listed because too many of its members are: the CIDRs left after carve-outs."""

    network: str
    cidrs: tuple[str, ...]
    members: tuple[str, ...]
    carved: tuple[str, ...]
    expires_at: float
    reason: str
    since: float = 0.0  # when the threshold-th of the live members' listings began


def escalate(
    network: str,
    members: Mapping[str, float],
    carve_out: Sequence[str],
    *,
    threshold: int,
    now: float,
    starts: Mapping[str, float] | None = None,
) -> Escalation | None:
    """Return the escalation of *network* when at least *threshold* members are listed.

    *members* maps each listed member (address or /64) to its listing's expiry. Members with
    good reputation (*carve_out*) are cut out of the network listing like rbldnsd ``!``
    exclusions. The escalation lasts until fewer than *threshold* members remain listed and
    began when the *threshold*-th of the live members' listings did (*starts*: member -> since;
    without it, *now*).
    """
    live = {m: t for m, t in members.items() if t > now}
    if len(live) < threshold:
        return None
    fast = _v4_cut(network, carve_out)
    if fast is not None:
        cidrs, spared, version = fast
    else:
        net = ipaddress.ip_network(network)
        holes = sorted(
            {ipaddress.ip_network(c, strict=False) for c in carve_out},
            key=lambda n: (int(n.network_address), n.prefixlen),
        )
        cidrs = _cut(net, [h for h in holes if h.version == net.version and h.subnet_of(net)])  # type: ignore[arg-type]
        spared, version = [str(h) for h in holes], net.version
    expiry = sorted(live.values(), reverse=True)[threshold - 1]
    ordered = sorted(live)
    shown = ", ".join(ordered[:10]) + (" ..." if len(live) > 10 else "")
    unit = "addresses" if version == 4 else "/64s"
    reason = f"{len(live)} listed {unit} in {network} (threshold {threshold}): {shown}"
    if spared:
        reason += f"; spared for good reputation: {', '.join(spared)}"
    since = _kth_start(live, starts, threshold, now)
    return Escalation(network, tuple(cidrs), tuple(ordered), tuple(spared), expiry, reason, since)


#: A dotted quad with an optional prefix length, as the store writes IPv4 subjects.
_V4_CIDR: Final = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:/(\d{1,2}))?")


def _v4_int(text: str) -> tuple[int, int] | None:
    """Return (network integer, prefix length) of an IPv4 address or CIDR text, else None.

    Host bits are cleared (``ip_network(strict=False)``); anything unusual returns None.
    """
    found = _V4_CIDR.fullmatch(text)
    if found is None:
        return None
    *texts, length = found.groups()
    if any(len(t) > 1 and t[0] == "0" for t in texts):
        return None  # ipaddress refuses leading zeros: let it say so
    octets = [int(t) for t in texts]
    bits = 32 if length is None else int(length)
    if max(octets) > 255 or bits > 32 or (length is not None and length != str(bits)):
        return None
    value = (octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]
    return value & ~((1 << (32 - bits)) - 1) & 0xFFFFFFFF, bits


def _v4_cut(network: str, carve_out: Sequence[str]) -> tuple[list[str], list[str], int] | None:
    """Return :func:`escalate`'s (CIDRs, spared texts, 4) for an IPv4 network, else None.

    The same cut as the ``ipaddress`` path without an object per member or hole: every
    incremental run re-decides hundreds of escalations (bench/policy_scale.py). None (IPv6,
    a leading zero, anything else) sends the caller the general way.
    """
    net = _v4_int(network)
    if net is None or ":" in network:
        return None
    holes: set[tuple[int, int]] = set()
    for text in carve_out:
        hole = _v4_int(text)
        if hole is None:
            return None
        holes.add(hole)
    ordered = sorted(holes)
    lo, bits = net
    hi = lo + (1 << (32 - bits))
    inside = [(h, 1 << (32 - b)) for h, b in ordered if h >= lo and h + (1 << (32 - b)) <= hi]
    return (
        _cut_ints(lo, hi, inside, 32),
        [f"{_v4_text(h)}/{b}" for h, b in ordered],
        4,
    )


def _kth_start(
    live: Collection[str], starts: Mapping[str, float] | None, threshold: int, now: float
) -> float:
    """Return when the *threshold*-th of *live*'s listings began (event time), else *now*."""
    if starts is None:
        return now
    began = sorted(starts.get(m, now) for m in live)
    return began[threshold - 1] if len(began) >= threshold else now


def _cut(
    net: ipaddress.IPv4Network | ipaddress.IPv6Network,
    holes: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network],
) -> list[str]:
    """Return *net* minus *holes* as the fewest aligned CIDRs, in address order.

    Integer arithmetic instead of ``address_exclude``: escalations are re-decided for every
    touched network on each incremental run (bench/policy_scale.py).
    """
    start = int(net.network_address)
    return _cut_ints(
        start,
        start + net.num_addresses,
        [(int(h.network_address), h.num_addresses) for h in holes],
        net.max_prefixlen,
    )


def _cut_ints(start: int, end: int, holes: Sequence[tuple[int, int]], bits: int) -> list[str]:
    """Return [start, end) minus *holes* ((first, size) in address order) as aligned CIDRs."""
    gaps: list[tuple[int, int]] = []
    cursor = start
    for lo, size in holes:
        hi = lo + size
        if lo > cursor:
            gaps.append((cursor, lo))
        cursor = max(cursor, hi)
    if cursor < end:
        gaps.append((cursor, end))
    out: list[str] = []
    text = _v4_text if bits == 32 else _v6_text  # not str(cls(...)): 90 % of the cut's time
    for lo, hi in gaps:
        pos = lo
        while pos < hi:
            size = (pos & -pos).bit_length() - 1 if pos else bits  # alignment of pos
            while (1 << size) > hi - pos:
                size -= 1
            out.append(f"{text(pos)}/{bits - size}")
            pos += 1 << size
    return out


def _v4_text(value: int) -> str:
    """Return the dotted quad of an IPv4 address given as an integer."""
    return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"


def _v6_text(value: int) -> str:
    """Return the compressed text of an IPv6 address given as an integer."""
    return str(ipaddress.IPv6Address(value))


def hosting_decision(
    ip: str,
    listed_domains: Mapping[str, tuple[Cause, float]],
    *,
    threshold: int,
    now: float,
    starts: Mapping[str, float] | None = None,
) -> Decision | None:
    """List a shared-hosting IP when at least *threshold* distinct domains on it are listed.

    *listed_domains* maps each listed domain on the IP to (cause, expiry). The IP takes the
    most common cause among them and stays listed until fewer than *threshold* remain.
    """
    live = {d: v for d, v in listed_domains.items() if v[1] > now}
    if len(live) < threshold:
        return None
    cause = Counter(c for c, _ in live.values()).most_common(1)[0][0]
    expiry = sorted((t for _, t in live.values()), reverse=True)[threshold - 1]
    names = ", ".join(sorted(live))
    reason = (
        f"{len(live)} domains hosted on this address are listed (threshold {threshold}): {names}"
    )
    since = _kth_start(live, starts, threshold, now)
    return Decision(ip, cause, since, since, expiry, reason)


class ListingRow(NamedTuple):
    """A listing the policy writes, as the store keeps it.

    Plain values, not a :class:`~reputable.listings.model.Listing`: an evaluation writes
    thousands of them and the store wants text anyway (parsing each subject into an
    ``ipaddress`` object and formatting it back cost ~45 us a row, bench/policy_scale.py).
    """

    subject: str  # canonical text: bare address for a single host, else CIDR, or a domain
    cause: Cause
    reason: str
    source: str
    listed_at: float  # epoch seconds, whole
    expires_at: float | None  # epoch seconds, whole; None: until removed


@dataclass(frozen=True, slots=True)
class PolicyChanges:
    """What one evaluation changes in the store, applied in one transaction."""

    upserts: tuple[ListingRow, ...] = ()
    ends: tuple[tuple[str, Cause, str, float, str], ...] = ()
    # (subject, cause, source, when it ended, why) of listings to expire
    drops: tuple[tuple[str | None, str], ...] = ()  # (subject or any, source) rows to delete
    new_periods: tuple[tuple[str, Cause, Period], ...] = ()
    period_updates: tuple[tuple[str, Cause, float, float, str | None], ...] = ()
    # (target, cause, listed_at of the period, new ends_at, ended_by or None)
    retimes: tuple[tuple[str, str, float, float], ...] = ()
    # (source, reason, listed_at, expires_at) for every listing of source: an escalation
    # whose CIDRs stay while its members' listings move (one UPDATE, not a delete and inserts)

    def count(self) -> int:
        """Return how many changes there are."""
        return (
            len(self.upserts)
            + len(self.ends)
            + len(self.drops)
            + len(self.new_periods)
            + len(self.period_updates)
            + len(self.retimes)
        )

    def empty(self) -> bool:
        """True when nothing changes."""
        return self.count() == 0

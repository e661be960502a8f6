"""Network escalation inputs, gathered in one pass per evaluation (the I/O for policy.escalate).

For every network the engine re-decides: its listed members (address or IPv6 /64 -> latest
expiry, from the store and from this round's decisions) and its clean members whose good
reputation carves them out. One query per escalating cause and one for the clean targets,
grouped here, instead of a LIKE scan of the listings per network.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Final

from reputable.core.address import Domain, format_subject, parse_subject
from reputable.core.cause import Cause
from reputable.listings.allowlist import IPV4_TEXT
from reputable.listings.policy import Decision, PolicyParams, network_of
from reputable.listings.ports import PolicyStore
from reputable.reputation.scoring import (
    Bucket,
    CauseScore,
    ReputationParams,
    accumulate,
    reputation,
)

#: The first three groups of an IPv6 address written without "::" among them.
_HEAD48: Final = re.compile(r"([0-9a-fA-F]{1,4}):([0-9a-fA-F]{1,4}):([0-9a-fA-F]{1,4}):")
#: The prefix length of one escalation member: an IPv4 address, an IPv6 /64.
_HOST_LEN: Final = {4: 32, 6: 64}


def is_ip(target: str) -> bool:
    """True when *target* is written as an address or network rather than a domain."""
    return ":" in target or target.replace(".", "").replace("/", "").isdigit()


def network_key(target: str) -> str | None:
    """Return :func:`~reputable.listings.policy.network_of` *target* (a store target's text).

    Without ``ipaddress`` for the common cases: a plain IPv4 address, and an IPv6 address or
    /64 whose /48 is read off its text (the /48's own text is made once per /48).
    """
    if IPV4_TEXT.fullmatch(target):
        return target[: target.rfind(".")] + ".0/24"
    if ":" in target and (p48 := _prefix48(target)) >= 0:
        known = _NET48.get(p48)
        if known is None:
            known = _NET48[p48] = str(ipaddress.IPv6Network((p48 << 80, 48)))
        return known
    return network_of(target)


#: /48 (top 48 bits) -> its network text, as network_of writes it.
_NET48: dict[int, str] = {}


def networks_of(targets: Iterable[str]) -> set[str]:
    """Return the escalation networks (:func:`network_key`) of the address targets of *targets*.

    A dotted quad, the common case, is keyed off its text without the :func:`is_ip` test.
    """
    out: set[str] = set()
    fullmatch = IPV4_TEXT.fullmatch
    for target in targets:
        if fullmatch(target):
            out.add(target[: target.rfind(".")] + ".0/24")
        elif is_ip(target) and (network := network_key(target)):
            out.add(network)
    return out


def escalation_threshold(policy: PolicyParams, network: str) -> int:
    """Return how many listed members escalate *network* (/24 or /48)."""
    return policy.escalate_v4 if ":" not in network else policy.escalate_v6


def members(
    rows: Iterable[tuple[str, int, str, float, float | None]],
    networks: Collection[str],
    policy: PolicyParams,
    decided: Mapping[tuple[str, Cause], Decision],
    chosen: Collection[str],
    *,
    source: str,
) -> dict[str, dict[str, float]]:
    """Return, per network in *networks*, its listed members (address or /64) -> latest expiry.

    *rows* are the store's ``escalation_members`` (subject, family, source, listed_at,
    expires_at). Listings made by *source* for targets in *chosen* give way to this round's
    *decided*.
    """
    members: dict[str, dict[str, float]] = {}
    wanted = set(networks)
    # "10.1.2" -> "10.1.2.0/24": a listed address's /24 is looked up without making its text.
    heads = {n[:-5]: n for n in wanted if n.endswith(".0/24")}
    # Plain rows, no Listing objects: an incremental run touching thousands of networks
    # reads every escalating listing once (bench/policy_scale.py).
    for text, family, listing_source, _, expires_at in rows:
        if family == 4:
            if "/" in text:
                continue  # a range, not a host
            network: str | None = heads.get(text[: text.rfind(".")])
            if network is None:
                continue
        elif family == 6 and text.endswith("/64"):
            network = network_key(text)
        else:
            continue
        if network not in wanted:
            continue
        if listing_source == source and text in chosen:
            continue  # re-decided this round
        mine = members.setdefault(network, {})
        until = expires_at if expires_at is not None else float("inf")
        mine[text] = max(mine.get(text, 0.0), until)
    for (target, cause), decision in decided.items():
        if cause not in policy.escalate_causes or not is_ip(target):
            continue
        if IPV4_TEXT.fullmatch(target):
            text, network = target, target[: target.rfind(".")] + ".0/24"
        else:
            sub = parse_subject(target)
            if isinstance(sub, Domain) or sub.prefixlen != _HOST_LEN[sub.version]:
                continue
            text, network = format_subject(sub), network_key(target)
        if network is None or network not in networks:
            continue
        mine = members.setdefault(network, {})
        mine[text] = max(mine.get(target, 0.0), decision.expires_at)
    return members


def carve_outs(
    store: PolicyStore,
    networks: Collection[str],
    policy: PolicyParams,
    rep: ReputationParams,
    scores: dict[str, dict[Cause, CauseScore]],
    now: float,
) -> dict[str, list[str]]:
    """Return, per network, its members that are spared: good reputation or a granted carve-out.

    A carve-out granted on request holds until new bad evidence about the address arrives.
    """
    granted = store.carve_out_grants()
    heads: set[str] = set()
    for network in networks:
        heads.update(text_heads(network))
    clean = store.clean_targets_in(heads - {""}, ipv6="" in heads)
    inside = _clean_inside(networks, clean | set(granted))
    if not inside:
        return {}
    missing = [t for ts in inside.values() for t in ts if t not in scores]
    known = accumulate(store.evidence_rows(missing), rep, now) if missing else {}
    thresholds = policy.list_thresholds()

    def good(target: str) -> bool:
        by_cause = scores[target] if target in scores else known.get(target, {})
        if target in granted:
            bad_since = max((s.last_at for c, s in by_cause.items() if c.lists), default=0.0)
            if bad_since <= granted[target]:
                return True
        return reputation(by_cause, thresholds)[1] is Bucket.GOOD

    return {network: [t for t in ts if good(t)] for network, ts in inside.items()}


def text_heads(network: str) -> list[str]:
    """Return text prefixes that every canonical subject inside *network* (/24, /48) starts with.

    A /24's subjects share its text up to the last dot. A /48's are written with its first
    three groups, except where "::" swallows a zero third group ("2001:db8::5"); when a zero
    second group can start the "::" ("::5:1:2:3:4:5", "2001::1:2:3:4:5"), [""] (every text)
    is returned.
    """
    if ":" not in network:
        return [network[: network.rfind(".") + 1]]
    top = int(ipaddress.IPv6Network(network).network_address) >> 80
    g1, g2, g3 = top >> 32, (top >> 16) & 0xFFFF, top & 0xFFFF
    if not g2 and not (g1 and g3):
        return [""]
    if g3:
        return [f"{g1:x}:{g2:x}:{g3:x}:"]
    return [f"{g1:x}:{g2:x}:0:", f"{g1:x}:{g2:x}::"]


def _clean_inside(networks: Collection[str], clean: Collection[str]) -> dict[str, list[str]]:
    """Return, per network in *networks* (/24s and /48s), the targets of *clean* inside it.

    A /24's addresses share the text up to its last dot: they are found by bisecting the
    sorted targets, not by mapping each of the tens of thousands of clean targets to its
    network (bench/policy_scale.py). IPv6 targets are mapped, and only when a /48 is asked.
    """
    inside: dict[str, list[str]] = {}
    v4 = [n for n in networks if ":" not in n]
    if v4:
        ordered = sorted(t for t in clean if ":" not in t)
        for network in v4:
            head = network[: network.rfind(".") + 1]  # "10.1.2." of "10.1.2.0/24"
            lo = bisect.bisect_left(ordered, head)
            hi = bisect.bisect_left(ordered, head[:-1] + "/")  # "/" sorts right after "."
            found = [t for t in ordered[lo:hi] if network_key(t) == network]
            if found:
                inside[network] = found
    v6 = {int(ipaddress.IPv6Network(n).network_address) >> 80: n for n in networks if ":" in n}
    if v6:
        for target in clean:
            if ":" in target and (net48 := v6.get(_prefix48(target))) is not None:
                inside.setdefault(net48, []).append(target)
    return inside


def _prefix48(target: str) -> int:
    """Return the top 48 bits of an IPv6 target (address or network of /48 or longer), or -1."""
    address, _, length = target.partition("/")
    if length and not (length.isascii() and length.isdigit() and 48 <= int(length) <= 128):
        return -1
    head = _HEAD48.match(address)
    if head:  # three leading groups written out (no "::" among them): they are the /48
        a, b, c = head.groups()
        return (int(a, 16) << 32) | (int(b, 16) << 16) | int(c, 16)
    try:
        return int(ipaddress.IPv6Address(address)) >> 80
    except ValueError:
        return -1

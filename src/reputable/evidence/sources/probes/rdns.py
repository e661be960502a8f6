"""The reverse-DNS probe: PTR present? forward-confirmed (FCrDNS)? generic/dynamic-looking?

Lookups go only to the configured nameserver. A generic name is one a provider gives a pool of
addresses: the address's own digits in the host part (``192-0-2-7``, ``c0000207``) or words
such as dyn, dsl, pool, dhcp, cable, ppp, customer (the registrable domain is not judged).
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address
from typing import Final

from reputable.core.address import Domain, IPAddress
from reputable.evidence.parsers.feed_url import registrable
from reputable.evidence.sources.probes.model import ERROR, FAIL, PASS, ProbeResult, Transcript
from reputable.evidence.sources.resolver import ResolveError, Resolver

KIND: Final = "rdns"
_WORDS: Final = re.compile(
    r"(?:^|[^a-z])(dyn|dynamic|dynamicip|dsl|adsl|vdsl|xdsl|pool|dhcp|cable|ppp|pppoe|customer|"
    r"cust|dial|dialup|dialin|broadband|cpe|client|subscriber|residential|nat)(?=[^a-z]|$)"
)
#: rdns evidence weight per problem; the policy lists at 1.0 by default (docs/feeds-and-probes.md).
WEIGHTS: Final = {"no_ptr": 1.0, "not_confirmed": 0.7, "generic": 0.5}


def _host_part(name: str) -> str:
    domain = registrable(Domain(name)) if name else None
    if domain is None or domain.name == name:
        return name
    return name[: -len(domain.name) - 1]


def generic_reasons(name: str, address: IPAddress) -> list[str]:
    """Return why *name* looks like a generic pool name for *address* (empty: it does not)."""
    host = _host_part(name.lower().rstrip("."))
    reasons: list[str] = []
    if isinstance(address, IPv4Address):
        octets = str(address).split(".")
        tokens = {str(int(t)) for t in re.split(r"[^0-9]+", host) if t and len(t) <= 3}
        if len(tokens & set(octets)) >= min(3, len(set(octets))):
            reasons.append("the address's digits are in the name")
        elif address.packed.hex() in host or "".join(o.zfill(3) for o in octets) in host:
            reasons.append("the address, in hex or zero-padded, is in the name")
    else:
        nibbles = address.exploded.replace(":", "")
        if nibbles[-8:] in host.replace("-", "").replace(".", ""):
            reasons.append("the address's last nibbles are in the name")
    words = sorted({m.group(1) for m in _WORDS.finditer(host)})
    if words:
        reasons.append(f"dynamic-pool words: {', '.join(words)}")
    return reasons


async def probe_rdns(address: IPAddress, resolver: Resolver) -> ProbeResult:
    """Look up the PTR of *address*, confirm it forward, and judge whether it looks generic."""
    log = Transcript()
    facts: dict[str, object] = {}
    try:
        log.sent(f"PTR {address}")
        names = await resolver.names(address)
        log.received(", ".join(names) or "(no PTR)")
        forward: dict[str, list[str]] = {}
        for name in names[:5]:
            log.sent(f"A/AAAA {name}")
            forward[name] = [str(a) for a in await resolver.addresses(name)]
            log.received(", ".join(forward[name]) or "(no address)")
    except ResolveError as exc:
        log.note(f"error: {exc}")
        return ProbeResult(
            kind=KIND,
            address=address,
            port=None,
            result=ERROR,
            transcript=tuple(log.lines),
            reason=str(exc),
        )
    confirmed = [n for n, found in forward.items() if str(address) in found]
    generic = {n: generic_reasons(n, address) for n in names}
    problems: list[str] = []
    if not names:
        problems.append("no_ptr")
    elif not confirmed:
        problems.append("not_confirmed")
    if names and all(generic.values()):
        problems.append("generic")
    facts = {
        "ptr": names,
        "forward": forward,
        "confirmed": bool(confirmed),
        "generic": {n: r for n, r in generic.items() if r},
        "problems": problems,
    }
    if problems:
        reason = "; ".join(
            {
                "no_ptr": f"{address} has no PTR record",
                "not_confirmed": f"no PTR name of {address} resolves back to it (FCrDNS)",
                "generic": f"the PTR name looks generic/dynamic ({names[0] if names else ''})",
            }[p]
            for p in problems
        )
    else:
        reason = f"PTR {confirmed[0]} resolves back to {address} and is not generic"
    result = FAIL if problems else PASS
    log.note(f"{result}: {reason}")
    return ProbeResult(
        kind=KIND,
        address=address,
        port=None,
        result=result,
        transcript=tuple(log.lines),
        facts=facts,
        reason=reason,
        rdns_weight=min(1.0, sum(WEIGHTS[p] for p in problems)),
    )

"""The reverse-DNS probe: PTR present? forward-confirmed (FCrDNS)? generic/dynamic-looking?

Lookups go only to the configured nameserver. Whether a name looks generic (a provider's pool
name) is the one rule in core/ptrname.py, shared with the checker.
"""

from __future__ import annotations

from typing import Final

from reputable.core.address import IPAddress
from reputable.core.ptrname import generic_reasons
from reputable.evidence.sources.probes.model import ERROR, FAIL, PASS, ProbeResult, Transcript
from reputable.evidence.sources.resolver import ResolveError, Resolver

KIND: Final = "rdns"
#: rdns evidence weight per problem; the policy lists at 1.0 by default (docs/feeds-and-probes.md).
WEIGHTS: Final = {"no_ptr": 1.0, "not_confirmed": 0.7, "generic": 0.5}


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

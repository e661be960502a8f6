"""Reverse DNS diagnostics: PTR present, forward-confirmed (FCrDNS), not generic, matching HELO."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace
from ipaddress import ip_address
from typing import Final

import dns.reversename

from reputable.checker.model import Finding, Severity
from reputable.checker.transport import Lookup, Outcome, Resolver
from reputable.core.address import IPAddress
from reputable.core.cause import Cause
from reputable.core.ptrname import looks_generic

CHECK: Final = "rdns"


def assess(
    address: IPAddress,
    ptr_names: Sequence[str],
    forward: Mapping[str, Sequence[str]],
    helo: str = "",
) -> list[Finding]:
    """Return the rDNS findings for *address* given its PTR names and their forward addresses."""
    if not ptr_names:
        return [
            Finding(
                check=CHECK,
                cause=Cause.RDNS,
                severity=Severity.ERROR,
                message=f"{address} has no reverse DNS (PTR) record",
                remediation="Ask whoever owns the address block (your hosting provider or"
                " ISP) to set a PTR record to the server's mail host name, e.g."
                " mail.example.net, and give that name an A/AAAA record back to"
                f" {address}.",
            )
        ]
    findings: list[Finding] = []
    confirmed = [n for n in ptr_names if str(address) in forward.get(n, ())]
    if len(ptr_names) > 1:
        findings.append(
            Finding(
                check=CHECK,
                cause=Cause.RDNS,
                severity=Severity.WARNING,
                message=f"{address} has {len(ptr_names)} PTR records: {', '.join(ptr_names)}",
                remediation="Keep exactly one PTR record per sending address.",
            )
        )
    if confirmed:
        findings.append(
            Finding(
                check=CHECK,
                cause=Cause.RDNS,
                severity=Severity.OK,
                message=f"PTR {confirmed[0]} resolves back to {address} (FCrDNS)",
            )
        )
    else:
        findings.append(
            Finding(
                check=CHECK,
                cause=Cause.RDNS,
                severity=Severity.ERROR,
                message=f"PTR {ptr_names[0]} does not resolve back to {address}"
                " (forward-confirmed reverse DNS fails)",
                remediation=f"Add an A/AAAA record {ptr_names[0]} -> {address},"
                " or change the PTR to a name that already points at it.",
            )
        )
    for name in ptr_names:
        if looks_generic(name, address):
            findings.append(
                Finding(
                    check=CHECK,
                    cause=Cause.RDNS,
                    severity=Severity.WARNING,
                    message=f"PTR {name} looks generic (dynamic/pool naming);"
                    " many receivers treat such senders as end-user machines",
                    remediation="Set a PTR naming the mail server (e.g."
                    " mail.example.net) instead of the provider's default.",
                )
            )
    if helo:
        findings.append(_helo_finding(helo.rstrip(".").lower(), ptr_names, forward, address))
    return findings


def _helo_finding(
    helo: str, ptr_names: Sequence[str], forward: Mapping[str, Sequence[str]], address: IPAddress
) -> Finding:
    if helo in ptr_names:
        return Finding(
            check="helo",
            cause=Cause.RDNS,
            severity=Severity.OK,
            message=f"HELO {helo} matches the PTR name",
        )
    if str(address) in forward.get(helo, ()):
        return Finding(
            check="helo",
            cause=Cause.RDNS,
            severity=Severity.INFO,
            message=f"HELO {helo} resolves to {address} but differs from the PTR {ptr_names[0]}",
            remediation="Use the PTR name as HELO/EHLO name for the cleanest result.",
        )
    return Finding(
        check="helo",
        cause=Cause.RDNS,
        severity=Severity.WARNING,
        message=f"HELO {helo} neither matches the PTR {ptr_names[0]} nor resolves to {address}",
        remediation=f"Set the mail server's HELO name (Postfix: smtp_helo_name /"
        f" myhostname) to {ptr_names[0]} or to a name whose A record is {address}.",
    )


def _failure(lookup: Lookup) -> str:
    if lookup.outcome in (Outcome.ANSWER, Outcome.NXDOMAIN, Outcome.NODATA):
        return ""
    return f"{lookup.outcome} {lookup.detail}".rstrip()


async def resolve(resolver: Resolver, name: str) -> tuple[tuple[str, ...], str]:
    """Return the IPv4 and IPv6 addresses of *name* (both asked at once) and why a lookup failed.

    The reason is "" when both lookups were answered (records, NXDOMAIN or NODATA).
    """
    lookups = await asyncio.gather(resolver.lookup(name, "A"), resolver.lookup(name, "AAAA"))
    found = [str(ip_address(r)) for x in lookups if x.outcome is Outcome.ANSWER for r in x.records]
    failures = [_failure(x) for x in lookups if _failure(x)]
    return tuple(found), "; ".join(failures) if not found else ""


async def addresses(resolver: Resolver, name: str) -> tuple[str, ...]:
    """Return the IPv4 and IPv6 addresses of *name*, normalised."""
    found, _ = await resolve(resolver, name)
    return found


def _inconclusive(message: str) -> Finding:
    return Finding(
        check=CHECK,
        cause=Cause.RDNS,
        severity=Severity.WARNING,
        message=message,
        remediation="Nothing is known to be wrong with the PTR: the nameserver gave no usable"
        " answer. Check that --nameserver answers reverse and forward lookups, then check again.",
        inconclusive=True,
    )


async def diagnose(resolver: Resolver, address: IPAddress, helo: str = "") -> list[Finding]:
    """Look up PTR, its forward addresses and the HELO name (at once), and assess them."""
    ptr = await resolver.lookup(dns.reversename.from_address(str(address)).to_text(), "PTR")
    if _failure(ptr):
        return [_inconclusive(f"could not check the PTR of {address}: {_failure(ptr)}")]
    names = [r.rstrip(".").lower() for r in ptr.records]
    helo_name = helo.rstrip(".").lower()
    asked = list(dict.fromkeys([*names, *([helo_name] if helo_name else [])]))
    answers = await asyncio.gather(*(resolve(resolver, n) for n in asked))
    forward = {n: found for n, (found, _) in zip(asked, answers, strict=True)}
    failed = {n: why for n, (_, why) in zip(asked, answers, strict=True) if why}
    confirmed = any(str(address) in forward[n] for n in names)
    if names and not confirmed and any(n in failed for n in names):
        name = next(n for n in names if n in failed)
        return [
            _inconclusive(
                f"could not check whether PTR {name} resolves back to {address}: {failed[name]}"
            )
        ]
    findings = assess(address, names, forward, helo)
    if helo_name in failed and helo_name not in names:
        findings = [
            f
            if f.check != "helo" or f.severity is not Severity.WARNING
            else replace(
                _inconclusive(f"could not check HELO {helo_name}: {failed[helo_name]}"),
                check="helo",
            )
            for f in findings
        ]
    return findings

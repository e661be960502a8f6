"""Reverse DNS diagnostics: PTR present, forward-confirmed (FCrDNS), not generic, matching HELO."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace
from ipaddress import ip_address
from typing import Final

import dns.reversename

from reputable.checker.model import Finding, Severity
from reputable.core.address import IPAddress
from reputable.core.cause import Cause
from reputable.core.dnsclient import Lookup, Outcome, Resolver
from reputable.core.ptrname import looks_generic

CHECK: Final = "rdns"


def assess(
    address: IPAddress,
    ptr_names: Sequence[str],
    forward: Mapping[str, Sequence[str]],
    helo: str = "",
) -> list[Finding]:
    """Return the rDNS findings for *address* given its PTR names and their forward addresses."""
    helo_name = helo.rstrip(".").lower()
    helo_findings = [_helo_finding(helo_name, ptr_names, forward, address)] if helo_name else []
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
            ),
            *helo_findings,
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
    return findings + helo_findings


def _helo_finding(
    helo: str, ptr_names: Sequence[str], forward: Mapping[str, Sequence[str]], address: IPAddress
) -> Finding:
    """Judge the HELO name against the PTR names and its own forward addresses.

    Made with or without a PTR: receivers check HELO on its own (Postfix
    reject_unknown_helo_hostname rejects a name without A/AAAA record, RFC 5321 §4.1.1.1 asks
    for the client's fully qualified name).
    """
    fix_to = ptr_names[0] if ptr_names else "the server's mail host name"
    if helo in ptr_names:
        return Finding(
            check="helo",
            cause=Cause.RDNS,
            severity=Severity.OK,
            message=f"HELO {helo} matches the PTR name",
        )
    if "." not in helo:
        return Finding(
            check="helo",
            cause=Cause.RDNS,
            severity=Severity.WARNING,
            message=f"HELO {helo} is not a fully qualified domain name",
            remediation=f"Set the HELO name (Postfix: smtp_helo_name / myhostname) to {fix_to}"
            f", a fully qualified name whose A/AAAA record is {address}.",
        )
    found = forward.get(helo, ())
    if not found:
        return Finding(
            check="helo",
            cause=Cause.RDNS,
            severity=Severity.WARNING,
            message=f"HELO {helo} does not resolve (no A/AAAA record)",
            remediation=f"Publish an A/AAAA record {helo} -> {address}, or set the HELO name"
            f" (Postfix: smtp_helo_name / myhostname) to {fix_to}; receivers reject HELO"
            " names that do not resolve.",
        )
    if str(address) in found:
        if not ptr_names:
            return Finding(
                check="helo",
                cause=Cause.RDNS,
                severity=Severity.OK,
                message=f"HELO {helo} resolves to {address}",
            )
        return Finding(
            check="helo",
            cause=Cause.RDNS,
            severity=Severity.INFO,
            message=f"HELO {helo} resolves to {address} but differs from the PTR {ptr_names[0]}",
            remediation="Use the PTR name as HELO/EHLO name for the cleanest result.",
        )
    elsewhere = f"resolves to {', '.join(found)}, not to {address}"
    return Finding(
        check="helo",
        cause=Cause.RDNS,
        severity=Severity.WARNING,
        message=f"HELO {helo} {elsewhere}"
        + (f" and does not match the PTR {ptr_names[0]}" if ptr_names else ""),
        remediation=f"Set the mail server's HELO name (Postfix: smtp_helo_name /"
        f" myhostname) to {fix_to} or to a name whose A record is {address}.",
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
    # A HELO name without a dot is judged as such; asking for it could reach a search domain.
    helo_asked = [helo_name] if "." in helo_name else []
    asked = list(dict.fromkeys([*names, *helo_asked]))
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

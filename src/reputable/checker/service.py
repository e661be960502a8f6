"""One check of one subject: DNS lists plus the diagnostics that apply, assembled into a Report."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv6Address, ip_network

import dns.resolver

from reputable.checker import mailauth, rdns, smtp
from reputable.checker.catalogue import Zone
from reputable.checker.dnsbl import check_zones
from reputable.checker.model import Finding, Report, ZoneResult
from reputable.checker.transport import Resolver
from reputable.core.address import Domain, IPAddress, looks_like_ip, parse_address, parse_domain
from reputable.core.errors import ReputableError

#: MX hosts whose addresses a domain check also runs through the IP lists.
MAX_MX_ADDRESSES = 4
_PROBE_HELO = "reputable-check.invalid"


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """What to check: the subject and the optional sending context of a mail server."""

    subject: str
    domain: str = ""
    helo: str = ""
    dkim_selectors: tuple[str, ...] = ()
    diagnostics: bool = True
    smtp_port: int = 0  # 0: no SMTP probe; else probe the checked IP (and only it) on this port


def parse_target(text: str) -> IPAddress | Domain:
    """Return *text* as an address or domain; raises SubjectError with the fix."""
    return parse_address(text) if looks_like_ip(text) else parse_domain(text)


async def _mail_auth(
    domain: str, address: IPAddress | None, helo: str, sync: dns.resolver.Resolver | None
) -> list[Finding]:
    if sync is None:
        return []
    return await asyncio.to_thread(mailauth.spf_dmarc, domain, address, helo, sync)


async def check_ip(
    address: IPAddress,
    request: Request,
    zones: Sequence[Zone],
    resolver: Resolver,
    sync: dns.resolver.Resolver | None,
) -> Report:
    """Return the report on one sending IP: lists, rDNS/HELO and, with a domain, SPF/DMARC/DKIM."""
    listings = asyncio.create_task(check_zones(address, zones, resolver))
    findings: list[Finding] = []
    if request.diagnostics:
        findings += await rdns.diagnose(resolver, address, request.helo)
        if request.domain:
            domain = parse_domain(request.domain).name
            findings += await _mail_auth(domain, address, request.helo, sync)
            findings += await mailauth.dkim_findings(resolver, domain, request.dkim_selectors)
    if request.smtp_port:
        # The probe may reach the checked address and nothing else.
        allowed = (ip_network(address),)
        findings += await smtp.probe(
            address, allowed=allowed, port=request.smtp_port, helo=_PROBE_HELO
        )
    return Report(subject=str(address), listings=await listings, findings=tuple(findings))


async def check_domain(
    domain: Domain,
    request: Request,
    zones: Sequence[Zone],
    resolver: Resolver,
    sync: dns.resolver.Resolver | None,
) -> Report:
    """Return the report on a domain: RHSBLs, MX, SPF, DMARC, DKIM, and the MX hosts' IPs."""
    listings = list(await check_zones(domain, zones, resolver))
    findings: list[Finding] = []
    if request.diagnostics:
        mx, hosts = await mailauth.mx_findings(resolver, domain.name)
        findings += mx
        findings += await _mail_auth(domain.name, None, "", sync)
        findings += await mailauth.dkim_findings(resolver, domain.name, request.dkim_selectors)
        seen: list[str] = []
        for host in hosts:
            seen += [a for a in await rdns.addresses(resolver, host) if a not in seen]
        for text in seen[:MAX_MX_ADDRESSES]:
            address = parse_address(text)
            results = await check_zones(address, zones, resolver)
            listings += [replace(r, subject=text) for r in results]
    return Report(subject=domain.name, listings=tuple(listings), findings=tuple(findings))


async def check(
    request: Request,
    zones: Sequence[Zone],
    resolver: Resolver,
    sync: dns.resolver.Resolver | None = None,
) -> Report:
    """Return the report on *request*; a bad subject or failure becomes a Report with an error."""
    try:
        target = parse_target(request.subject)
        if isinstance(target, IPv4Address | IPv6Address):
            return await check_ip(target, request, zones, resolver, sync)
        return await check_domain(target, request, zones, resolver, sync)
    except ReputableError as exc:
        return Report(subject=request.subject.strip(), error=str(exc))


def mx_listing(result: ZoneResult) -> bool:
    """True for a listing that is about an MX host's address rather than the subject itself."""
    return bool(result.subject)

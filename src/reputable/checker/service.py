"""One check of one subject: DNS lists plus the diagnostics that apply, assembled into a Report."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv6Address, ip_network

import dns.resolver

from reputable.checker import domainpolicy, mailauth, message, rdns, smtp
from reputable.checker.catalogue import Zone
from reputable.checker.dnsbl import check_zones
from reputable.checker.model import Finding, Report, ZoneResult
from reputable.core.address import Domain, IPAddress, looks_like_ip, parse_address, parse_domain
from reputable.core.dnsclient import Resolver
from reputable.core.errors import InputError, ReputableError, SubjectError

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
    smtp_cafile: str = ""  # CA file to verify the STARTTLS certificate chain with ("": TLS only)
    message: bytes = b""  # a sample message as sent (--message FILE.eml): DKIM, alignment, RFC 8058
    #: MTA-STS policy fetch: CA file ("" = the system's CAs) and, in tests, (host, address, port)
    #: entries used instead of the policy host's A/AAAA record.
    https_cafile: str = ""
    https_addresses: tuple[tuple[str, str, int], ...] = ()


def parse_target(text: str) -> IPAddress | Domain:
    """Return *text* as an address or domain; raises SubjectError with the fix.

    An IPv4-mapped IPv6 address (``::ffff:198.51.100.25``) is the IPv4 address it carries: it is
    queried, reverse-looked-up and shown as such. A domain needs at least two labels.
    """
    raw = text.strip()
    if looks_like_ip(raw):
        address = parse_address(raw)
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            return address.ipv4_mapped
        return address
    if not raw or any(c.isspace() for c in raw):
        raise SubjectError(f"bad subject {text!r}: give one IP address or domain name")
    domain = parse_domain(raw)
    if "." not in domain.name:
        raise SubjectError(
            f"bad subject {text!r}: neither an IP address nor a fully qualified domain name"
            " (a domain needs at least two labels, like example.net)"
        )
    return domain


async def _together(parts: Sequence[Awaitable[list[Finding]]]) -> list[Finding]:
    """Return the findings of all *parts*, run at once, in the order of *parts*."""
    results = await asyncio.gather(*parts)
    return [finding for part in results for finding in part]


async def check_ip(
    address: IPAddress,
    request: Request,
    zones: Sequence[Zone],
    resolver: Resolver,
    sync: dns.resolver.Resolver | None,
) -> Report:
    """Return the report on one sending IP: lists, rDNS/HELO and, with a domain, SPF/DMARC/DKIM.

    The lists, the rDNS checks, the mail-auth checks and the SMTP probe all run at once.
    """
    domain = parse_domain(request.domain).name if request.domain else ""
    if not domain and request.message:
        domain = message.from_domain(request.message)  # the sample's From names the domain
    parts: list[Awaitable[list[Finding]]] = []  # created only once nothing can raise any more
    if request.message and sync is not None:
        parts.append(asyncio.to_thread(message.assess, request.message, sync))
    if request.diagnostics:
        parts.append(rdns.diagnose(resolver, address, request.helo))
        if domain:
            parts.append(
                mailauth.mail_auth(
                    resolver, sync, domain, address, request.helo, request.dkim_selectors
                )
            )
    if request.smtp_port:
        # The probe may reach the checked address and nothing else (the CLI has already applied
        # the [probes] allow-list and rate limits: see cli/check.py).
        parts.append(
            smtp.probe(
                address,
                allowed=(ip_network(address),),
                port=request.smtp_port,
                helo=_PROBE_HELO,
                cafile=request.smtp_cafile or None,
            )
        )
    listings, findings = await asyncio.gather(
        check_zones(address, zones, resolver), _together(parts)
    )
    return Report(subject=str(address), listings=listings, findings=tuple(findings))


async def _mx_listings(
    hosts: Sequence[str], zones: Sequence[Zone], resolver: Resolver
) -> list[ZoneResult]:
    found = await asyncio.gather(*(rdns.addresses(resolver, host) for host in hosts))
    seen = list(dict.fromkeys(a for addresses in found for a in addresses))[:MAX_MX_ADDRESSES]
    results = await asyncio.gather(*(check_zones(parse_address(a), zones, resolver) for a in seen))
    return [replace(r, subject=a) for a, rs in zip(seen, results, strict=True) for r in rs]


def _https_context(cafile: str) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=cafile or None)
    except (OSError, ssl.SSLError) as exc:
        raise InputError(f"CA file {cafile}: cannot load it ({exc}); give a PEM file") from exc


async def _mx_part(
    domain: Domain, zones: Sequence[Zone], resolver: Resolver, request: Request
) -> tuple[list[Finding], list[ZoneResult]]:
    """Return the MX findings plus MTA-STS/TLS-RPT/BIMI/DNSSEC, and the MX hosts' listings."""
    findings, hosts = await mailauth.mx_findings(resolver, domain.name)
    addresses = {host: (address, port) for host, address, port in request.https_addresses}
    listings, policies = await asyncio.gather(
        _mx_listings(hosts, zones, resolver),
        domainpolicy.domain_policies(
            resolver,
            domain.name,
            hosts,
            context=_https_context(request.https_cafile),
            addresses=addresses or None,
        ),
    )
    return [*findings, *policies], listings


async def check_domain(
    domain: Domain,
    request: Request,
    zones: Sequence[Zone],
    resolver: Resolver,
    sync: dns.resolver.Resolver | None,
) -> Report:
    """Return the report on a domain: RHSBLs, MX, SPF, DMARC, DKIM, MTA-STS, TLS-RPT, BIMI,
    DNSSEC, and the MX hosts' IPs on the IP lists.

    The domain lists, the MX part and the mail-auth checks run at once.
    """
    if not request.diagnostics:
        return Report(subject=domain.name, listings=await check_zones(domain, zones, resolver))
    sample: Awaitable[list[Finding]] = (
        asyncio.to_thread(message.assess, request.message, sync)
        if request.message and sync is not None
        else _together(())
    )
    own, (mx, mx_listings), auth, sampled = await asyncio.gather(
        check_zones(domain, zones, resolver),
        _mx_part(domain, zones, resolver, request),
        mailauth.mail_auth(resolver, sync, domain.name, None, "", request.dkim_selectors),
        sample,
    )
    return Report(
        subject=domain.name,
        listings=(*own, *mx_listings),
        findings=(*mx, *auth, *sampled),
    )


def _nothing_checked(target: IPAddress | Domain, zones: Sequence[Zone]) -> str:
    what = "domains" if isinstance(target, Domain) else f"IPv{target.version} addresses"
    need = {
        "domains": 'add a zone with kind = "domain"',
        "IPv6 addresses": "add a zone with ipv6 = true",
        "IPv4 addresses": 'add a zone with kind = "ip"',
    }[what]
    blocks = [z for z in zones if not z.allow]
    return (
        f"nothing was checked: none of the {len(blocks)} selected blocklists covers {what}"
        f" ({need}, or choose others with --zone / --no-builtin)"
    )


async def check(
    request: Request,
    zones: Sequence[Zone],
    resolver: Resolver,
    sync: dns.resolver.Resolver | None = None,
) -> Report:
    """Return the report on *request*; a bad subject or failure becomes a Report with an error.

    A subject that no selected blocklist covers is an error too: "not listed on any of 0 lists"
    would read as clean while nothing was checked.
    """
    try:
        target = parse_target(request.subject)
        if isinstance(target, IPv4Address | IPv6Address):
            report = await check_ip(target, request, zones, resolver, sync)
        else:
            report = await check_domain(target, request, zones, resolver, sync)
    except ReputableError as exc:
        return Report(subject=request.subject.strip(), error=str(exc))
    if not any(not r.allow for r in report.listings):
        return replace(report, error=_nothing_checked(target, zones))
    return report


def mx_listing(result: ZoneResult) -> bool:
    """True for a listing that is about an MX host's address rather than the subject itself."""
    return bool(result.subject)

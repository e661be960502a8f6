"""Subjects (IP addresses, networks, domain names) and DNSBL query names (RFC 5782 §2)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)
from typing import Final, TypeAlias

import idna

from reputable.core.errors import SubjectError

_LABEL: Final = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


@dataclass(frozen=True, slots=True, order=True)
class Domain:
    """A normalised domain name: lower case, ASCII (IDNA), no trailing dot."""

    name: str

    def __str__(self) -> str:
        return self.name

    def parents(self) -> list[Domain]:
        """Return this domain and every parent with at least one label, longest first."""
        labels = self.name.split(".")
        return [Domain(".".join(labels[i:])) for i in range(len(labels))]


IPNetwork: TypeAlias = IPv4Network | IPv6Network
IPAddress: TypeAlias = IPv4Address | IPv6Address
Subject: TypeAlias = IPv4Network | IPv6Network | Domain


def parse_domain(text: str) -> Domain:
    """Return *text* as a normalised Domain, or raise SubjectError saying what is wrong."""
    raw = text.strip().rstrip(".")
    if not raw:
        raise SubjectError(f"empty domain name in {text!r}")
    try:
        # IDNA2008 with UTS #46 non-transitional mapping: faß.example is xn--fa-hia.example,
        # not fass.example (Python's "idna" codec is IDNA2003, transitional)
        ascii_name = (
            idna.encode(raw, uts46=True, transitional=False).decode("ascii")
            if not raw.isascii()
            else raw
        )
    except UnicodeError as exc:
        raise SubjectError(f"bad domain name {text!r}: {exc}") from exc
    name = ascii_name.lower()
    if len(name) > 253:
        raise SubjectError(f"bad domain name {text!r}: longer than 253 characters")
    for label in name.split("."):
        if not _LABEL.match(label):
            raise SubjectError(
                f"bad domain name {text!r}: label {label!r} must be 1-63 letters, digits,"
                " '-' or '_' and not start or end with '-'"
            )
    return Domain(name)


def parse_network(text: str) -> IPNetwork:
    """Return *text* (an address or CIDR) as a network; host bits must be zero."""
    raw = text.strip()
    try:
        net = ip_network(raw, strict=True)
    except ValueError as exc:
        if "/" in raw:
            raise SubjectError(f"bad CIDR {raw!r}: {exc}") from exc
        raise SubjectError(f"bad IP address {raw!r}: {exc}") from exc
    if isinstance(net, IPv6Network) and net.network_address.ipv4_mapped and net.prefixlen >= 96:
        # ::ffff:a.b.c.d/n is the IPv4 network a.b.c.d/(n-96): store it once, as IPv4.
        mapped = net.network_address.ipv4_mapped
        return IPv4Network(f"{mapped}/{net.prefixlen - 96}")
    return net


def looks_like_ip(text: str) -> bool:
    """True when *text* is meant as an address or CIDR rather than a domain name."""
    head = text.strip().split("/", 1)[0]
    return ":" in head or bool(re.fullmatch(r"[0-9.]+", head))


def parse_subject(text: str) -> Subject:
    """Return *text* as an IPv4/IPv6 network (a single address is a /32 or /128) or a Domain."""
    if looks_like_ip(text):
        return parse_network(text)
    return parse_domain(text)


def format_subject(subject: Subject) -> str:
    """Return the canonical text of *subject*: a bare address for host networks, else CIDR."""
    if isinstance(subject, Domain):
        return subject.name
    if subject.prefixlen == subject.max_prefixlen:
        return str(subject.network_address)
    return str(subject)


def ipv4_qname(address: IPv4Address, zone: str) -> str:
    """Return the DNSBL query name for *address* under *zone* (RFC 5782 §2.1: octets reversed)."""
    return ".".join(reversed(str(address).split("."))) + "." + zone


def ipv6_qname(address: IPv6Address, zone: str) -> str:
    """Return the DNSBL query name for *address* under *zone* (RFC 5782 §2.4: nibbles reversed)."""
    return ".".join(reversed(address.exploded.replace(":", ""))) + "." + zone


def address_qname(address: IPAddress, zone: str) -> str:
    """Return the DNSBL query name for an IPv4 or IPv6 *address* under *zone*."""
    if isinstance(address, IPv4Address):
        return ipv4_qname(address, zone)
    return ipv6_qname(address, zone)


def parse_address(text: str) -> IPAddress:
    """Return *text* as an IP address, or raise SubjectError."""
    try:
        return ip_address(text.strip())
    except ValueError as exc:
        raise SubjectError(f"bad IP address {text!r}: {exc}") from exc

"""Response Policy Zone (RPZ) master file of the listings (pure).

A recursive resolver (Unbound, BIND, Knot Resolver, PowerDNS Recursor) loads the file as a
policy zone. Per draft-vixie-dnsop-dns-rpz: ``NAME CNAME .`` answers NXDOMAIN for a listed
domain, ``*.NAME CNAME .`` for its subdomains; ``PREFIX.REVERSED.rpz-ip CNAME .`` rewrites
any answer that contains a listed address (IPv4 octets reversed; IPv6 16-bit groups
reversed with ``zz`` for the ``::`` run). An allowlisted name or network inside a listed one
gets ``CNAME rpz-passthru.``: exact names beat wildcards and longer prefixes beat shorter
ones, so it wins like the allowlist does in DNS; a listing inside an allowlisted network or
under an allowlisted domain is left out. Causes are kept in a TXT-free comment per record.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from typing import Final

from reputable.core.address import Domain
from reputable.core.cause import Cause
from reputable.listings.model import AllowEntry, Listing

NAME: Final = "rpz"
NXDOMAIN: Final = "CNAME ."
PASSTHRU: Final = "CNAME rpz-passthru."
NEVER: Final = (IPv4Network("127.0.0.1/32"), IPv6Network("::ffff:127.0.0.1/128"))


@dataclass(frozen=True, slots=True, kw_only=True)
class RpzHeader:
    """The policy zone's own name and SOA values."""

    origin: str = "rpz.reputable.test"
    serial: int = 1
    ttl: int = 300
    nameserver: str = "ns1.reputable.test"
    hostmaster: str = "hostmaster.reputable.test"


@dataclass(frozen=True, slots=True, kw_only=True)
class RpzExport:
    """The zone text and what went into it."""

    text: str
    domains: int
    networks: int
    passthru: int


def rpz_ip_owner(network: IPv4Network | IPv6Network) -> str:
    """Return the rpz-ip owner label of *network* (relative to the policy zone)."""
    if isinstance(network, IPv4Network):
        octets = str(network.network_address).split(".")
        return f"{network.prefixlen}." + ".".join(reversed(octets)) + ".rpz-ip"
    groups = [f"{g:x}" for g in _groups(network)]
    # Compress the longest run (of two or more) of zero groups to "zz", as RFC 5952 does "::".
    best, best_len, start = -1, 1, -1
    for i, value in enumerate([*groups, "end"]):
        if value == "0":
            start = i if start < 0 else start
            continue
        if start >= 0 and i - start > best_len:
            best, best_len = start, i - start
        start = -1
    if best >= 0:
        groups = [*groups[:best], "zz", *groups[best + best_len :]]
    return f"{network.prefixlen}." + ".".join(reversed(groups)) + ".rpz-ip"


def _groups(network: IPv6Network) -> list[int]:
    value = int(network.network_address)
    return [(value >> (112 - 16 * i)) & 0xFFFF for i in range(8)]


def render(
    listings: Iterable[Listing],
    allows: Iterable[AllowEntry],
    *,
    header: RpzHeader = RpzHeader(),
    causes: Collection[Cause] | None = None,
) -> RpzExport:
    """Return the policy zone answering NXDOMAIN for the listed domains and addresses."""
    allowed_names: set[str] = set()
    allowed_nets: list[IPv4Network | IPv6Network] = list(NEVER)
    for entry in allows:
        if isinstance(entry.subject, Domain):
            allowed_names.add(entry.subject.name)
        else:
            allowed_nets.append(entry.subject)
    names: dict[str, set[str]] = {}
    nets: dict[IPv4Network | IPv6Network, set[str]] = {}
    for item in listings:
        if causes is not None and item.cause not in causes:
            continue
        if isinstance(item.subject, Domain):
            if not _under(item.subject.name, allowed_names):
                names.setdefault(item.subject.name, set()).add(item.cause.value)
        elif not any(_inside(item.subject, a) for a in allowed_nets):
            nets.setdefault(item.subject, set()).add(item.cause.value)
    lines = [
        f"; reputable export: response policy zone {header.origin}, serial {header.serial}",
        f"$ORIGIN {header.origin}.",
        f"$TTL {header.ttl}",
        f"@ SOA {header.nameserver}. {header.hostmaster}. {header.serial} 3600 600 604800"
        f" {header.ttl}",
        f"@ NS {header.nameserver}.",
    ]
    for name in sorted(names):
        why = ",".join(sorted(names[name]))
        lines += [f"{name} {NXDOMAIN} ; {why}", f"*.{name} {NXDOMAIN} ; {why}"]
    passthru = 0
    for name in sorted(allowed_names):
        if any(name == n or name.endswith("." + n) for n in names):
            lines += [f"{name} {PASSTHRU}", f"*.{name} {PASSTHRU}"]
            passthru += 1
    for net in sorted(nets, key=lambda n: (n.version, n)):
        lines.append(f"{rpz_ip_owner(net)} {NXDOMAIN} ; {','.join(sorted(nets[net]))}")
    for allowed in sorted(allowed_nets, key=lambda n: (n.version, n)):
        if any(_inside(allowed, n) and allowed != n for n in nets):
            lines.append(f"{rpz_ip_owner(allowed)} {PASSTHRU}")
            passthru += 1
    return RpzExport(
        text="\n".join(lines) + "\n", domains=len(names), networks=len(nets), passthru=passthru
    )


def _under(name: str, parents: set[str]) -> bool:
    labels = name.split(".")
    return any(".".join(labels[i:]) in parents for i in range(len(labels)))


def _inside(inner: IPv4Network | IPv6Network, outer: IPv4Network | IPv6Network) -> bool:
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]  # same family

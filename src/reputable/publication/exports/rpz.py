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

from reputable.core.address import Domain, Subject
from reputable.core.cause import Cause
from reputable.listings.model import AllowEntry, Listing
from reputable.publication.exports.ranges import BITS, NEVER, Row, parse_span

NAME: Final = "rpz"
NXDOMAIN: Final = "CNAME ."
PASSTHRU: Final = "CNAME rpz-passthru."


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
    return _owner(network.version, int(network.network_address), network.prefixlen)


def _owner(version: int, first: int, plen: int) -> str:
    """Return the rpz-ip owner label of the network *first*/*plen* of IP *version*."""
    if version == 4:
        octets = first.to_bytes(4, "big")
        return f"{plen}.{octets[3]}.{octets[2]}.{octets[1]}.{octets[0]}.rpz-ip"
    groups = [f"{(first >> (112 - 16 * i)) & 0xFFFF:x}" for i in range(8)]
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
    return f"{plen}." + ".".join(reversed(groups)) + ".rpz-ip"


def render(
    listings: Iterable[Listing],
    allows: Iterable[AllowEntry],
    *,
    header: RpzHeader = RpzHeader(),
    causes: Collection[Cause] | None = None,
) -> RpzExport:
    """Return the policy zone answering NXDOMAIN for the listed domains and addresses."""
    rows = [(x.subject_text, _family(x.subject), x.cause.value) for x in listings]
    allow_rows = [(a.subject_text, _family(a.subject)) for a in allows]
    return render_rows(rows, allow_rows, header=header, causes=causes)


def _family(subject: Subject) -> int:
    return 0 if isinstance(subject, Domain) else subject.version


Net = tuple[int, int, int]  # (version, first address, prefix length)


def render_rows(
    rows: Iterable[Row],
    allow_rows: Iterable[Row],
    *,
    header: RpzHeader = RpzHeader(),
    causes: Collection[Cause] | None = None,
) -> RpzExport:
    """Return the policy zone of ``listing_rows`` *rows* minus ``allow_rows`` (pure)."""
    wanted = None if causes is None else {c.value for c in causes}
    allowed_names: set[str] = set()
    allowed_nets: set[Net] = {(4, NEVER[0], 32), (6, NEVER[1], 128)}
    for row in allow_rows:
        if row[1]:
            first, _, plen = parse_span(row[0], row[1])
            allowed_nets.add((row[1], first, plen))
        else:
            allowed_names.add(row[0])
    allowed_plens = {(v, p) for v, _, p in allowed_nets}
    names: dict[str, set[str]] = {}
    nets: dict[Net, set[str]] = {}
    for row in rows:
        subject, family, cause = row[0], row[1], row[2]
        if wanted is not None and cause not in wanted:
            continue
        if not family:
            if not _under(subject, allowed_names):
                names.setdefault(subject, set()).add(cause)
            continue
        first, _, plen = parse_span(subject, family)
        if not _covered(family, first, plen, allowed_nets, allowed_plens):
            nets.setdefault((family, first, plen), set()).add(cause)
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
    listed_names = set(names)
    for name in sorted(allowed_names):
        if _under(name, listed_names):
            lines += [f"{name} {PASSTHRU}", f"*.{name} {PASSTHRU}"]
            passthru += 1
    for net in sorted(nets):
        lines.append(f"{_owner(*net)} {NXDOMAIN} ; {','.join(sorted(nets[net]))}")
    listed_plens = {(v, p) for v, _, p in nets}
    for version, first, plen in sorted(allowed_nets):
        if _covered(version, first, plen, set(nets), listed_plens, strict=True):
            lines.append(f"{_owner(version, first, plen)} {PASSTHRU}")
            passthru += 1
    return RpzExport(
        text="\n".join(lines) + "\n", domains=len(names), networks=len(nets), passthru=passthru
    )


def _under(name: str, parents: set[str]) -> bool:
    labels = name.split(".")
    return any(".".join(labels[i:]) in parents for i in range(len(labels)))


def _covered(
    version: int,
    first: int,
    plen: int,
    nets: set[Net],
    plens: set[tuple[int, int]],
    *,
    strict: bool = False,
) -> bool:
    """True when a network in *nets* (whose prefix lengths are *plens*) contains first/plen.

    Only the supernets of the prefix lengths present are tried: a few set look-ups per
    listing instead of a scan of every allowlist entry. *strict*: a different network only.
    """
    bits = BITS[version]
    for v, p in plens:
        if v != version or p > plen or (strict and p == plen):
            continue
        mask = ((1 << bits) - 1) ^ ((1 << (bits - p)) - 1)
        if (version, first & mask, p) in nets:
            return True
    return False

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

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from itertools import groupby
from operator import itemgetter
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
    rows = list(rows)
    names = sorted((r[0], r[2]) for r in rows if not r[1])
    keyed = [(r[1], *parse_span(r[0], r[1])[::2], r) for r in rows if r[1]]
    keyed.sort(key=itemgetter(0, 1, 2))  # (family, first, prefix length), as the store sorts
    stream = RpzStream(
        names,
        (k[3] for k in keyed),
        allow_rows,
        header=header,
        causes=causes,
    )
    text = "".join(stream)
    return RpzExport(
        text=text, domains=stream.domains, networks=stream.networks, passthru=stream.passthru
    )


class RpzStream:
    """The policy zone of `render_rows`, a line at a time, from sorted rows in flat memory.

    *name_rows* are (name, cause) of listed domains in name order (``domain_rows_sorted``);
    *ip_rows* (subject, family, cause) of IP listings by family, address, prefix length
    (``ip_rows_sorted``). Only the allowlist is held in memory: what a listed name or network
    means for an allowlisted one (a passthru record) is looked up from the allowlist's side,
    its parent names and supernets, as each listing goes by. After the iteration ``domains``,
    ``networks`` and ``passthru`` hold the counts of `RpzExport`.
    """

    def __init__(
        self,
        name_rows: Iterable[tuple[str, str]],
        ip_rows: Iterable[Row],
        allow_rows: Iterable[Row],
        *,
        header: RpzHeader = RpzHeader(),
        causes: Collection[Cause] | None = None,
    ) -> None:
        self.name_rows = name_rows
        self.ip_rows = ip_rows
        self.header = header
        self.wanted = None if causes is None else {c.value for c in causes}
        self.allowed_names: set[str] = set()
        self.allowed_nets: set[Net] = {(4, NEVER[0], 32), (6, NEVER[1], 128)}
        for row in allow_rows:
            if row[1]:
                first, _, plen = parse_span(row[0], row[1])
                self.allowed_nets.add((row[1], first, plen))
            else:
                self.allowed_names.add(row[0])
        self.domains = self.networks = self.passthru = 0

    def __iter__(self) -> Iterator[str]:
        header = self.header
        yield (
            f"; reputable export: response policy zone {header.origin}, serial {header.serial}\n"
            f"$ORIGIN {header.origin}.\n$TTL {header.ttl}\n"
            f"@ SOA {header.nameserver}. {header.hostmaster}. {header.serial} 3600 600 604800"
            f" {header.ttl}\n@ NS {header.nameserver}.\n"
        )
        yield from self._names()
        yield from self._nets()

    def _names(self) -> Iterator[str]:
        wanted, allowed = self.wanted, self.allowed_names
        parents: dict[str, list[str]] = {}  # a name -> the allowlisted names at or below it
        for name in allowed:
            labels = name.split(".")
            for i in range(len(labels)):
                parents.setdefault(".".join(labels[i:]), []).append(name)
        passing: set[str] = set()
        for name, group in groupby(self.name_rows, key=itemgetter(0)):
            why_set = {cause for _, cause in group if wanted is None or cause in wanted}
            if not why_set or _under(name, allowed):
                continue
            why = ",".join(sorted(why_set))
            self.domains += 1
            passing.update(parents.get(name, ()))
            yield f"{name} {NXDOMAIN} ; {why}\n*.{name} {NXDOMAIN} ; {why}\n"
        for name in sorted(passing):
            self.passthru += 1
            yield f"{name} {PASSTHRU}\n*.{name} {PASSTHRU}\n"

    def _nets(self) -> Iterator[str]:
        wanted, allowed = self.wanted, self.allowed_nets
        allowed_plens = {(v, p) for v, _, p in allowed}
        supernets: dict[Net, list[Net]] = {}  # a network -> the allowlisted ones inside it
        for version, first, plen in allowed:
            bits = BITS[version]
            for p in range(plen):
                mask = ((1 << bits) - 1) ^ ((1 << (bits - p)) - 1)
                supernets.setdefault((version, first & mask, p), []).append((version, first, plen))
        passing: set[Net] = set()
        spans = (((row[1], *parse_span(row[0], row[1])), row[2]) for row in self.ip_rows)
        for (family, first, _, plen), group in groupby(spans, key=itemgetter(0)):
            why_set = {cause for _, cause in group if wanted is None or cause in wanted}
            if not why_set or _covered(family, first, plen, allowed, allowed_plens):
                continue
            self.networks += 1
            passing.update(supernets.get((family, first, plen), ()))
            yield f"{_owner(family, first, plen)} {NXDOMAIN} ; {','.join(sorted(why_set))}\n"
        for version, first, plen in sorted(passing):
            self.passthru += 1
            yield f"{_owner(version, first, plen)} {PASSTHRU}\n"


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

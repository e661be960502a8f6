"""Listed IP space as disjoint, sorted ranges: what a firewall set must hold (pure).

A firewall drops on the address alone, whatever the cause, so every active IP listing of the
wanted causes is one range; allowlisted networks are cut out of them (the allowlist wins in
DNS too) and 127.0.0.1 / ::ffff:127.0.0.1 never go in (RFC 5782 §5: never listed). Ranges
that touch or overlap are merged, which is what an nftables interval set needs (it refuses
overlapping elements) and what keeps an ipset small.

The exports read the store's plain rows (``listing_rows``: canonical subject text, family,
cause) and do all address arithmetic on integers: with 1,000,000 listings, building
``ipaddress`` objects per listing and per range costs tens of seconds, the integers a few.
"""

from __future__ import annotations

import socket
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from itertools import groupby
from operator import itemgetter
from typing import Any, Final

from reputable.core.address import Domain
from reputable.core.cause import Cause
from reputable.listings.model import AllowEntry, Listing

NEVER: Final = (int(IPv4Address("127.0.0.1")), int(IPv6Address("::ffff:127.0.0.1")))
BITS: Final = {4: 32, 6: 128}

Range = tuple[int, int]  # (first, last), inclusive
#: (subject, family, cause, ...) as ``listing_rows`` yields; (subject, family, ...) for allows.
Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ListedSpace:
    """The listed IPv4 and IPv6 space, each as sorted disjoint ranges."""

    v4: tuple[Range, ...]
    v6: tuple[Range, ...]

    def addresses(self) -> tuple[int, int]:
        """Return the number of IPv4 and IPv6 addresses covered."""
        return sum(b - a + 1 for a, b in self.v4), sum(b - a + 1 for a, b in self.v6)


def parse_span(text: str, family: int) -> tuple[int, int, int]:
    """Return (first, last, prefix length) of the canonical subject *text* of *family* 4 or 6."""
    address, _, plen_text = text.partition("/")
    bits = BITS[family]
    packed = socket.inet_pton(socket.AF_INET if family == 4 else socket.AF_INET6, address)
    first = int.from_bytes(packed, "big")
    plen = int(plen_text) if plen_text else bits
    size = 1 << (bits - plen)
    first &= ~(size - 1)
    return first, first + size - 1, plen


def listed_space_rows(
    rows: Iterable[Row], allow_rows: Iterable[Row], *, causes: Collection[Cause] | None = None
) -> ListedSpace:
    """Return the space of ``listing_rows`` *rows* (of *causes*) minus ``allow_rows``."""
    wanted = None if causes is None else {c.value for c in causes}
    spans: dict[int, list[Range]] = {4: [], 6: []}
    holes: dict[int, list[Range]] = {4: [], 6: []}
    for row in rows:
        family = row[1]
        if family and (wanted is None or row[2] in wanted):
            first, last, _ = parse_span(row[0], family)
            spans[family].append((first, last))
    for row in allow_rows:
        if row[1]:
            first, last, _ = parse_span(row[0], row[1])
            holes[row[1]].append((first, last))
    return _space(spans, holes)


def listed_space(
    listings: Iterable[Listing],
    allows: Iterable[AllowEntry],
    *,
    causes: Collection[Cause] | None = None,
) -> ListedSpace:
    """Return the space of the IP *listings* (of *causes*, all when None) minus *allows*."""
    spans: dict[int, list[Range]] = {4: [], 6: []}
    holes: dict[int, list[Range]] = {4: [], 6: []}
    for item in listings:
        if isinstance(item.subject, Domain) or (causes is not None and item.cause not in causes):
            continue
        spans[item.subject.version].append(_span(item.subject))
    for entry in allows:
        if not isinstance(entry.subject, Domain):
            holes[entry.subject.version].append(_span(entry.subject))
    return _space(spans, holes)


def _space(spans: dict[int, list[Range]], holes: dict[int, list[Range]]) -> ListedSpace:
    for version, never in ((4, NEVER[0]), (6, NEVER[1])):
        holes[version].append((never, never))
    return ListedSpace(
        v4=tuple(_subtract(_merge(spans[4]), _merge(holes[4]))),
        v6=tuple(_subtract(_merge(spans[6]), _merge(holes[6]))),
    )


def _span(network: IPv4Network | IPv6Network) -> Range:
    return int(network.network_address), int(network.broadcast_address)


def _merge(ranges: list[Range]) -> list[Range]:
    """Return *ranges* sorted, with overlapping and adjacent ones joined."""
    return list(merge_sorted(sorted(ranges)))


def merge_sorted(ranges: Iterable[Range]) -> Iterator[Range]:
    """Yield *ranges* (sorted by first address) with overlapping and adjacent ones joined."""
    current: Range | None = None
    for first, last in ranges:
        if current is not None and first <= current[1] + 1:
            if last > current[1]:
                current = (current[0], last)
        else:
            if current is not None:
                yield current
            current = (first, last)
    if current is not None:
        yield current


def stream_space(
    ip_rows: Iterable[Row], allow_rows: Iterable[Row], *, causes: Collection[Cause] | None = None
) -> Iterator[tuple[int, Range]]:
    """Yield (version, range) of the listed space, IPv4 first, each family in address order.

    *ip_rows* are (subject, family, cause) of IP listings sorted by family and first address
    (the store's ``ip_rows_sorted``); only the allowlist is held in memory, so the space of
    millions of listings streams through in flat memory. The same ranges as `listed_space_rows`.
    """
    wanted = None if causes is None else {c.value for c in causes}
    holes: dict[int, list[Range]] = {4: [(NEVER[0], NEVER[0])], 6: [(NEVER[1], NEVER[1])]}
    for row in allow_rows:
        if row[1]:
            first, last, _ = parse_span(row[0], row[1])
            holes[row[1]].append((first, last))
    merged_holes = {version: _merge(spans) for version, spans in holes.items()}
    for family, group in groupby(ip_rows, key=itemgetter(1)):
        spans = (
            parse_span(row[0], family)[:2] for row in group if wanted is None or row[2] in wanted
        )
        for piece in _subtract(merge_sorted(spans), merged_holes[family]):
            yield family, piece


def _subtract(ranges: Iterable[Range], holes: list[Range]) -> Iterator[Range]:
    """Yield the parts of sorted disjoint *ranges* outside sorted disjoint *holes*."""
    index = 0
    for first, last in ranges:
        while index < len(holes) and holes[index][1] < first:
            index += 1
        start = first
        probe = index
        while probe < len(holes) and holes[probe][0] <= last:
            hole_first, hole_last = holes[probe]
            if hole_first > start:
                yield start, hole_first - 1
            start = max(start, hole_last + 1)
            probe += 1
        if start <= last:
            yield start, last


def address_text(value: int, version: int) -> str:
    """Return the text of address *value* (dotted quad, or RFC 5952 IPv6)."""
    if version == 4:
        return socket.inet_ntop(socket.AF_INET, value.to_bytes(4, "big"))
    return socket.inet_ntop(socket.AF_INET6, value.to_bytes(16, "big"))


def cidrs(first: int, last: int, version: int) -> Iterator[tuple[int, int]]:
    """Yield (start, prefix length) of the fewest CIDR blocks covering first..last exactly."""
    bits = BITS[version]
    while first <= last:
        # the largest aligned block starting at *first* that does not pass *last*
        size = (first & -first) if first else 1 << bits
        while size > last - first + 1:
            size >>= 1
        yield first, bits - size.bit_length() + 1
        first += size


def range_text(first: int, last: int, version: int) -> str:
    """Return one range as an nftables element: ``a``, ``a/n`` or ``a-b``."""
    if first == last:
        return address_text(first, version)
    blocks = cidrs(first, last, version)
    start, plen = next(blocks)
    if next(blocks, None) is None:
        return f"{address_text(start, version)}/{plen}"
    return f"{address_text(first, version)}-{address_text(last, version)}"


def networks(ranges: Iterable[Range], version: int) -> Iterator[str]:
    """Yield the fewest CIDR networks covering *ranges* exactly, as text (hash:net entries)."""
    for first, last in ranges:
        for start, plen in cidrs(first, last, version):
            yield f"{address_text(start, version)}/{plen}"

"""Listed IP space as disjoint, sorted ranges: what a firewall set must hold (pure).

A firewall drops on the address alone, whatever the cause, so every active IP listing of the
wanted causes is one range; allowlisted networks are cut out of them (the allowlist wins in
DNS too) and 127.0.0.1 / ::ffff:127.0.0.1 never go in (RFC 5782 §5: never listed). Ranges
that touch or overlap are merged, which is what an nftables interval set needs (it refuses
overlapping elements) and what keeps an ipset small.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    summarize_address_range,
)
from typing import Final

from reputable.core.address import Domain
from reputable.core.cause import Cause
from reputable.listings.model import AllowEntry, Listing

NEVER: Final = (int(IPv4Address("127.0.0.1")), int(IPv6Address("::ffff:127.0.0.1")))

Range = tuple[int, int]  # (first, last), inclusive


@dataclass(frozen=True, slots=True, kw_only=True)
class ListedSpace:
    """The listed IPv4 and IPv6 space, each as sorted disjoint ranges."""

    v4: tuple[Range, ...]
    v6: tuple[Range, ...]

    def addresses(self) -> tuple[int, int]:
        """Return the number of IPv4 and IPv6 addresses covered."""
        return sum(b - a + 1 for a, b in self.v4), sum(b - a + 1 for a, b in self.v6)


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
    merged: list[Range] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            if last > merged[-1][1]:
                merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged


def _subtract(ranges: list[Range], holes: list[Range]) -> Iterator[Range]:
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


def range_text(first: int, last: int, version: int) -> str:
    """Return one range as an nftables element: ``a``, ``a/n`` or ``a-b``."""
    kind = IPv4Address if version == 4 else IPv6Address
    low, high = kind(first), kind(last)
    if first == last:
        return str(low)
    nets = list(summarize_address_range(low, high))
    if len(nets) == 1:
        return str(nets[0])
    return f"{low}-{high}"


def networks(ranges: Iterable[Range], version: int) -> Iterator[IPv4Network | IPv6Network]:
    """Yield the fewest CIDR networks covering *ranges* exactly (for hash:net sets)."""
    kind = IPv4Address if version == 4 else IPv6Address
    for first, last in ranges:
        yield from summarize_address_range(kind(first), kind(last))

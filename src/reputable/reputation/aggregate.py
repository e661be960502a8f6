"""Announced prefixes and origin ASNs (CAIDA pfx2as text format), for per-ASN accounting.

Each line is ``PREFIX<TAB>LENGTH<TAB>ASN``, for example ``198.51.100.0	24	64500``; the ASN
field may name several origins (``64500_64501``) or an AS set (``64500,64501``). Lookups
return the longest announced prefix holding an address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from reputable.core.errors import DataFileError

IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Announcement:
    """One announced prefix and its origin AS numbers."""

    prefix: IPNet
    asns: tuple[int, ...]


class PrefixTable:
    """Longest-prefix lookup of announcements (pure, built from pfx2as lines)."""

    def __init__(self, announcements: Iterable[Announcement]) -> None:
        self._by_len: dict[tuple[int, int], dict[int, Announcement]] = {}
        for item in announcements:
            key = (item.prefix.version, item.prefix.prefixlen)
            self._by_len.setdefault(key, {})[int(item.prefix.network_address)] = item
        self._lengths = {
            v: sorted((plen for (ver, plen) in self._by_len if ver == v), reverse=True)
            for v in (4, 6)
        }

    def __len__(self) -> int:
        return sum(len(d) for d in self._by_len.values())

    def lookup(self, network: IPNet) -> Announcement | None:
        """Return the longest announcement that contains *network*, or None."""
        value = int(network.network_address)
        bits = network.max_prefixlen
        for plen in self._lengths[network.version]:
            if plen > network.prefixlen:
                continue
            base = value >> (bits - plen) << (bits - plen)
            found = self._by_len[(network.version, plen)].get(base)
            if found is not None:
                return found
        return None


def parse_pfx2as(lines: Iterable[str], path: str = "pfx2as") -> list[Announcement]:
    """Return the announcements of pfx2as *lines*; a bad line raises DataFileError with file:line."""
    out: list[Announcement] = []
    for lineno, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = text.split()
        if len(parts) != 3:
            raise DataFileError(path, lineno, f"need PREFIX LENGTH ASN, got {text!r}")
        try:
            prefix = ipaddress.ip_network(f"{parts[0]}/{parts[1]}", strict=False)
            asns = tuple(
                int(a)
                for a in parts[2].replace("{", "").replace("}", "").replace("_", ",").split(",")
                if a
            )
        except ValueError as exc:
            raise DataFileError(path, lineno, f"bad prefix or ASN in {text!r}: {exc}") from exc
        if not asns:
            raise DataFileError(path, lineno, f"no ASN in {text!r}")
        out.append(Announcement(prefix, asns))
    return out


def load_pfx2as(path: Path) -> PrefixTable:
    """Read a pfx2as file into a lookup table."""
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            return PrefixTable(parse_pfx2as(fh, str(path)))
    except OSError as exc:
        raise DataFileError(str(path), 0, f"cannot read: {exc.strerror}") from exc


def count_by_origin(
    table: PrefixTable, listed: Iterable[IPNet]
) -> tuple[dict[str, int], dict[int, int]]:
    """Return how many listed addresses (hosts, or networks counted once) each prefix and ASN holds."""
    by_prefix: dict[str, int] = {}
    by_asn: dict[int, int] = {}
    for net in listed:
        found = table.lookup(net)
        if found is None:
            continue
        key = str(found.prefix)
        by_prefix[key] = by_prefix.get(key, 0) + 1
        for asn in found.asns:
            by_asn[asn] = by_asn.get(asn, 0) + 1
    return by_prefix, by_asn

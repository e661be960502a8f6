"""The active allowlist as the policy engine asks it: is this target covered? (allowlist always wins)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Final

from reputable.core.address import Domain, parse_subject
from reputable.listings.model import AllowEntry

_OCTET: Final = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#: A canonical dotted-quad IPv4 address, the form the store keeps IPv4 targets in.
IPV4_TEXT: Final = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")


def ipv4_int(text: str) -> int:
    """Return the integer of a dotted-quad address that matched IPV4_TEXT."""
    a, b, c, d = text.split(".")
    return (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)


class Allowlist:
    """Fast membership tests against the active allowlist (allowlist always wins)."""

    def __init__(self, entries: Iterable[AllowEntry]) -> None:
        self.domains: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        # (version, prefix length) -> network addresses as integers: one set probe per length.
        self._starts: dict[tuple[int, int], set[int]] = {}
        for entry in entries:
            if isinstance(entry.subject, Domain):
                self.domains.add(entry.subject.name)
            else:
                self.networks.append(entry.subject)
                key = (entry.subject.version, entry.subject.prefixlen)
                self._starts.setdefault(key, set()).add(int(entry.subject.network_address))

    def covers(self, target: str) -> bool:
        """True when *target* (address, network or domain) is allowlisted."""
        if not self._starts and not self.domains:
            return False
        if IPV4_TEXT.fullmatch(target):  # the common case, without building an ipaddress object
            return self._holds(4, ipv4_int(target), 32)
        subject = parse_subject(target)
        if isinstance(subject, Domain):
            return any(p.name in self.domains for p in subject.parents())
        return self._holds(subject.version, int(subject.network_address), subject.prefixlen)

    def _holds(self, version: int, address: int, prefixlen: int) -> bool:
        """True when an allowlisted network of *version* contains address/prefixlen."""
        bits = 32 if version == 4 else 128
        for (v, length), starts in self._starts.items():
            if v == version and length <= prefixlen:
                shift = bits - length
                if (address >> shift) << shift in starts:
                    return True
        return False

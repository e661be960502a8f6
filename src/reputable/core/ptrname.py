"""Whether a PTR host name looks generic: a provider's pool name rather than one chosen for a server.

It lives in ``core`` because two stages judge PTR names and must agree: the checker (advice to
an admin) and the rDNS probe in ``evidence`` (rdns evidence that can list an address). One rule,
one test table (tests/core/test_ptrname.py).

Only the host part is judged, never the registrable domain (``mail.dynamics.test`` and
``mail.deadbeef00.example`` are chosen names). The host part is generic when it carries

- the address itself: three or more of its decimal octets (``198-51-100-7``, ``c-73-15-2-9``),
  its octets zero-padded (``ip-049-000-002-007``) or in hex (``c0000207``); for IPv6 its last
  eight nibbles;
- or a word providers use for pools of end-user addresses (``dyn``, ``dsl``, ``pool``,
  ``mobile``, ``subscriber``...), standing alone or followed by digits (``mobile-7``,
  ``subscriber25``), never inside another word (``dynamics``).
"""

from __future__ import annotations

import functools
import re
from ipaddress import IPv4Address
from typing import Final

from publicsuffixlist import PublicSuffixList

from reputable.core.address import IPAddress

#: Words of pool names; a word counts only between non-letters (``dsl-7``, not ``dslr``).
POOL_WORDS: Final = (
    "adsl", "broadband", "cable", "client", "cpe", "cust", "customer", "dhcp", "dial", "dialin",
    "dialup", "dsl", "dyn", "dynamic", "dynamicip", "fiber", "fibre", "ftth", "lte", "mobile",
    "nat", "pool", "ppp", "pppoe", "residential", "subscriber", "vdsl", "wireless", "xdsl",
)  # fmt: skip
_WORDS: Final = re.compile(r"(?:^|[^a-z])(" + "|".join(POOL_WORDS) + r")(?=[^a-z]|$)")


@functools.cache
def _psl() -> PublicSuffixList:
    # The list ships inside the package; PublicSuffixList() reads that copy, never the network.
    return PublicSuffixList()


def registrable_name(name: str) -> str:
    """Return the registrable (organizational) domain of *name*, or *name* if it has none.

    The same public-suffix rule gives DMARC's organizational domain (RFC 7489 §3.2).
    """
    name = name.lower().rstrip(".")
    return _psl().privatesuffix(name) or name


def host_part(name: str) -> str:
    """Return *name* without its registrable domain (``a.b.example.net`` -> ``a.b``)."""
    name = name.lower().rstrip(".")
    domain = _psl().privatesuffix(name)
    if not domain or domain == name:
        return name
    return name[: -len(domain) - 1]


def generic_reasons(name: str, address: IPAddress) -> list[str]:
    """Return why *name* looks like a generic pool name for *address* (empty: it does not)."""
    host = host_part(name)
    reasons: list[str] = []
    if isinstance(address, IPv4Address):
        octets = str(address).split(".")
        tokens = {str(int(t)) for t in re.split(r"[^0-9]+", host) if t and len(t) <= 3}
        if len(tokens & set(octets)) >= min(3, len(set(octets))):
            reasons.append("the address's digits are in the name")
        elif address.packed.hex() in host or "".join(o.zfill(3) for o in octets) in host:
            reasons.append("the address, in hex or zero-padded, is in the name")
    else:
        nibbles = address.exploded.replace(":", "")
        if nibbles[-8:] in host.replace("-", "").replace(".", ""):
            reasons.append("the address's last nibbles are in the name")
    words = sorted({m.group(1) for m in _WORDS.finditer(host)})
    if words:
        reasons.append(f"dynamic-pool words: {', '.join(words)}")
    return reasons


def looks_generic(name: str, address: IPAddress) -> bool:
    """True when *name* looks like a provider's generic pool name for *address*."""
    return bool(generic_reasons(name, address))

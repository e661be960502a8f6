"""Reading one IP address or CIDR from a feed line (lenient about host bits, strict about the rest)."""

from __future__ import annotations

from ipaddress import ip_network

from reputable.core.address import IPNetwork, parse_network
from reputable.core.errors import SubjectError


def feed_network(text: str) -> IPNetwork:
    """Return *text* as a network; ``192.0.2.7/24`` is read as ``192.0.2.0/24``."""
    raw = text.strip()
    try:
        return parse_network(raw)
    except SubjectError:
        if "/" not in raw:
            raise
    try:
        return parse_network(str(ip_network(raw, strict=False)))
    except ValueError as exc:
        raise SubjectError(f"bad CIDR {raw!r}: {exc}") from exc

"""Causes of listing and their DNS return codes (see docs/causes.md)."""

from __future__ import annotations

import enum
from ipaddress import IPv4Address
from typing import Final


class Cause(enum.StrEnum):
    """Why a subject is listed; every piece of evidence and every listing has exactly one."""

    SPAM = "spam"
    HARVEST = "harvest"
    COMPROMISED = "compromised"
    OPEN_RELAY = "open_relay"
    OPEN_PROXY = "open_proxy"
    MALWARE_HOST = "malware_host"
    RDNS = "rdns"
    NETWORK = "network"
    MANUAL = "manual"
    CLEAN = "clean"

    @property
    def lists(self) -> bool:
        """True for every cause except ``clean``, which never lists anything."""
        return self is not Cause.CLEAN


#: Last octet of the default return code of each listing cause: 127.0.0.<n> on the IP zone,
#: 127.0.1.<n> on the domain zone, 127.0.2.<n> on the allowlist zone.
DEFAULT_OCTET: Final[dict[Cause, int]] = {
    Cause.SPAM: 2,
    Cause.HARVEST: 3,
    Cause.COMPROMISED: 4,
    Cause.OPEN_RELAY: 5,
    Cause.OPEN_PROXY: 6,
    Cause.MALWARE_HOST: 7,
    Cause.RDNS: 8,
    Cause.NETWORK: 9,
    Cause.MANUAL: 10,
}

#: Causes in return-code order (used for stable output and bit masks).
LISTING_CAUSES: Final[tuple[Cause, ...]] = tuple(DEFAULT_OCTET)


def parse_cause(text: str) -> Cause:
    """Return the cause named *text*, or raise ValueError naming the valid ones."""
    try:
        return Cause(text.strip().lower())
    except ValueError:
        valid = ", ".join(c.value for c in Cause)
        raise ValueError(f"unknown cause {text!r}; expected one of: {valid}") from None


def default_code(cause: Cause, third_octet: int = 0) -> IPv4Address:
    """Return the default return code of *cause* (127.0.<third_octet>.n)."""
    return IPv4Address(f"127.0.{third_octet}.{DEFAULT_OCTET[cause]}")

"""Response rate limiting for UDP, in the manner of BIND's RRL.

A spoofed source can make any UDP server send answers to a victim; RRL bounds how many
*identical* answers one client network gets per second. Clients are grouped by their IPv4
/24 or IPv6 /56 (a spoofer can pick any address inside its victim's network). Answers are
"identical" when they are:

- a positive or truncated answer: the same question (name case-folded, type, class);
- a negative answer (NXDOMAIN or NODATA): the same zone, whatever the name, because random
  names under a zone are the classic way around a per-name limit;
- an error (REFUSED, FORMERR, NOTIMP, ...): one bucket per client network.

Within one second of the monotonic clock a bucket sends ``rate`` answers; beyond, each answer
is dropped, except every ``slip``-th, which goes out as a bare truncated reply (TC, no records,
never larger than the query) so a real resolver behind the spoofed address retries over TCP,
which cannot be spoofed. TCP is never limited.

The same decisions are made in C (``_fastdns.Limiter``) for the compiled loop; this class is
the reference and the pure-Python path, and tests/publication/dnsbl checks they agree.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Address, IPv6Network, ip_address
from types import ModuleType
from typing import Final, Protocol

SEND: Final = 0
DROP: Final = 1
SLIP: Final = 2

#: Buckets kept; past this, buckets of earlier seconds are forgotten first.
TABLE_SIZE: Final = 65536
_HOSTS_CACHED: Final = 65536
_TC: Final = 0x0200
_HEADER = struct.Struct(">HHHHHH")

Rule = tuple[IPv4Network | IPv6Network, int]


def rules_for(
    rate: int,
    exempt: Sequence[IPv4Network | IPv6Network],
    overrides: Sequence[Rule],
) -> list[Rule]:
    """Return (network, responses/s) rules, longest prefix first (exemptions: rate 0)."""
    rules = [(net, 0) for net in exempt] + list(overrides)
    # Stable sort: at equal length an exemption (listed first) wins over an override.
    return sorted(rules, key=lambda r: r[0].prefixlen, reverse=True)


def bucket_class(reply: bytes) -> bytes:
    """Return the part of the bucket key that says which answers count as identical."""
    if len(reply) < 12:
        return b"\x03"
    _qid, flags, qdcount, ancount, nscount, _ar = _HEADER.unpack_from(reply)
    rcode = flags & 0xF
    if qdcount != 1 or rcode not in (0, 3):
        return b"\x03"
    pos = 12
    while pos < len(reply) and reply[pos]:
        pos += reply[pos] + 1
    qend = pos + 5
    if qend > len(reply):
        return b"\x03"
    if flags & _TC or ancount:
        return b"\x01" + reply[12 : pos + 1].lower() + reply[pos + 1 : qend]
    if nscount and qend + 1 < len(reply) and reply[qend] & 0xC0 == 0xC0:
        offset = ((reply[qend] & 0x3F) << 8) | reply[qend + 1]
        if 12 <= offset <= pos:
            return b"\x02" + reply[offset : pos + 1].lower()
    return b"\x02"


def slipped(reply: bytes) -> bytes:
    """Return the truncated form of *reply*: header with TC, question, OPT; no records."""
    qid, flags, qdcount, _an, _ns, arcount = _HEADER.unpack_from(reply)
    end = 12
    if qdcount == 1:
        while reply[end]:
            end += reply[end] + 1
        end += 5
    opt = reply[-11:] if arcount else b""
    return _HEADER.pack(qid, flags | _TC, qdcount, 0, 0, 1 if arcount else 0) + reply[12:end] + opt


class Limiter(Protocol):
    """What the worker needs of a limiter: this module's or the compiled one."""

    def check(self, host: str, reply: bytes, now: int) -> int:
        """Return SEND, DROP or SLIP for *reply* to *host* in second *now*."""

    def counts(self) -> tuple[int, int]:
        """Return (dropped, slipped) answers so far."""


def limiter_for(
    rate: int,
    slip: int,
    rules: Sequence[Rule],
    module: ModuleType | None,
) -> Limiter | None:
    """Return the compiled limiter when *module* is the extension, else this module's; None off."""
    if not rate and not any(r for _net, r in rules):
        return None
    if module is not None and len(rules) <= 64:
        limiter: Limiter = module.Limiter(
            rate, slip, [(net.network_address.packed, net.prefixlen, r) for net, r in rules]
        )
        return limiter
    return RateLimiter(rate, slip, rules)


class RateLimiter:
    """Per client-network buckets of identical answers; decides SEND, DROP or SLIP."""

    def __init__(self, rate: int, slip: int, rules: Sequence[Rule] = ()) -> None:
        self.rate = rate
        self.slip = slip
        self.rules = list(rules)
        self.dropped = 0
        self.slipped = 0
        self._buckets: dict[bytes, list[int]] = {}
        self._hosts: dict[str, tuple[bytes, int]] = {}

    def client(self, host: str) -> tuple[bytes, int]:
        """Return (client network key, responses/s) for the client at *host*."""
        known = self._hosts.get(host)
        if known is not None:
            return known
        try:
            address = ip_address(host.split("%", 1)[0])
        except ValueError:
            return b"", 0
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        rate = self.rate
        for network, rule_rate in self.rules:
            if network.version == address.version and address in network:
                rate = rule_rate
                break
        packed = address.packed
        key = b"\x04" + packed[:3] if address.version == 4 else b"\x06" + packed[:7]
        if len(self._hosts) >= _HOSTS_CACHED:
            self._hosts.clear()
        self._hosts[host] = (key, rate)
        return key, rate

    def check(self, host: str, reply: bytes, now: int) -> int:
        """Return SEND, DROP or SLIP for *reply* to *host* in second *now* (and count it)."""
        network, rate = self.client(host)
        if not rate:
            return SEND
        key = network + bucket_class(reply)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= TABLE_SIZE:
                self._forget(now)
            bucket = self._buckets[key] = [now, 0]
        elif bucket[0] != now:
            bucket[0] = now
            bucket[1] = 0
        bucket[1] += 1
        excess = bucket[1] - rate
        if excess <= 0:
            return SEND
        if self.slip and excess % self.slip == 0:
            self.slipped += 1
            return SLIP
        self.dropped += 1
        return DROP

    def filter(self, host: str, reply: bytes, now: int) -> bytes | None:
        """Return what to send for *reply* to *host*: it, its truncated form, or None."""
        verdict = self.check(host, reply, now)
        if verdict == SEND:
            return reply
        return slipped(reply) if verdict == SLIP else None

    def counts(self) -> tuple[int, int]:
        """Return (dropped, slipped) answers so far."""
        return self.dropped, self.slipped

    def _forget(self, now: int) -> None:
        stale = [k for k, b in self._buckets.items() if b[0] != now]
        for key in stale:
            del self._buckets[key]
        if len(self._buckets) >= TABLE_SIZE:
            self._buckets.clear()

"""DNS messages for the DNSBL, read and written by hand (RFC 1035, RFC 5782, RFC 6891).

This is the query hot path. dnspython's ``Message.from_wire`` + ``to_wire`` cost about 40 µs
per query here, several times the whole budget of a 100,000 queries/s server, so the path
parses exactly one question and assembles the answer from precomputed pieces. dnspython and
``dig`` check it from the outside in tests/publication/dnsbl.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Final

from reputable.publication.snapshot.view import Snapshot

A: Final = 1
NS: Final = 2
SOA: Final = 6
TXT: Final = 16
OPT: Final = 41
IXFR: Final = 251
AXFR: Final = 252
ANY: Final = 255
IN: Final = 1

NOERROR: Final = 0
FORMERR: Final = 1
SERVFAIL: Final = 2
NXDOMAIN: Final = 3
NOTIMP: Final = 4
REFUSED: Final = 5
BADVERS: Final = 16

QR: Final = 0x8000
AA: Final = 0x0400
TC: Final = 0x0200
RD: Final = 0x0100

OUR_UDP_SIZE: Final = 1232  # DNS flag day 2020: no fragmentation on common paths
#: Largest UDP answer by default (``dns.max_udp_answer``), even when EDNS offers more.
MAX_UDP_ANSWER: Final = 1232
#: UDP answers to clients that offer at most 512 bytes stay within this many times the
#: query (``dns.max_amplification``; 0 turns it off); a longer one is TC and goes to TCP.
MAX_AMPLIFICATION: Final = 3
#: The longest TXT text we send (after ``$`` expansion): reasons are capped at input
#: (core.limits.MAX_REASON_BYTES), this caps what a template with many ``$`` becomes.
MAX_TXT_TEXT: Final = 4096
#: The largest DNS message over TCP (the 2-byte length prefix, RFC 1035 4.2.2).
MAX_TCP_MESSAGE: Final = 65535

# Counter slots per zone (and one extra "zone" for queries outside every zone).
HIT: Final = 0
MISS: Final = 1
REFUSED_COUNT: Final = 2
ERROR: Final = 3
SLOTS: Final = 4

_HEADER = struct.Struct(">HHHHHH")
_RR = struct.Struct(">HHHIH")  # compressed name pointer, type, class, TTL, RDLENGTH
_RR_TAIL = struct.Struct(">HHIH")  # type, class, TTL, RDLENGTH after a name
_DIGITS: Final = frozenset(b"0123456789")
_NIBBLES: Final = {c: int(chr(c), 16) for c in b"0123456789abcdef"}


class FormatError(Exception):
    """The query cannot be parsed; answered with FORMERR."""


@dataclass(frozen=True, slots=True)
class ZoneSpec:
    """A zone as the wire layer needs it."""

    name: str
    kind: str  # "ip", "domain" or "allow"
    ttl: int


def encode_name(name: str) -> bytes:
    """Return *name* in uncompressed wire format."""
    out = bytearray()
    for label in name.strip(".").split("."):
        if label:
            raw = label.encode("ascii")
            out.append(len(raw))
            out += raw
    return bytes(out) + b"\0"


def txt_rdata(text: bytes) -> bytes:
    """Return TXT RDATA for *text*, split into character-strings of at most 255 bytes."""
    text = text[:MAX_TXT_TEXT]
    if not text:
        return b"\0"
    return b"".join(
        bytes([len(c)]) + c for c in (text[i : i + 255] for i in range(0, len(text), 255))
    )


_SUBJECT_MARK = re.compile(rb"\$(?![0-9])")


def expand(template: bytes, subject: bytes) -> bytes:
    """Return TXT text: ``$`` becomes *subject* and ``$$`` a dollar, as in rbldnsd.

    Like rbldnsd, a ``$`` followed by a digit (``$1``) is left alone: rbldnsd reads it as a
    data-file variable, and an undefined one stays literal.
    """
    if b"$" not in template:
        return template
    return b"$".join(_SUBJECT_MARK.sub(lambda _m: subject, part) for part in template.split(b"$$"))


def expansion(template: bytes) -> tuple[bytes, ...]:
    """Return the pieces of *template* between its subject marks: ``subject.join(pieces)``
    is ``expand(template, subject)`` for every subject (one tuple for a template without a
    mark). Found once per template, a zone transfer expands a template shared by a million
    hosts with one ``join`` each (docs/benchmarks.md, "AXFR with shared templates").
    """
    pieces: list[bytes] = []
    for i, part in enumerate(template.split(b"$$")):
        between = _SUBJECT_MARK.split(part)
        if i:  # a "$$" before this part: a dollar joins the pieces on either side
            pieces[-1] += b"$" + between[0]
            pieces.extend(between[1:])
        else:
            pieces = between
    return tuple(pieces)


class _Zone:
    """A zone compiled for answering: wire name, SOA and NS records."""

    def __init__(
        self,
        spec: ZoneSpec,
        serial: int,
        nameservers: Sequence[str],
        hostmaster: str,
        negative_ttl: int,
    ) -> None:
        self.spec = spec
        self.wire = encode_name(spec.name.lower())
        self.labels = _label_count(self.wire)
        self.ttl = spec.ttl
        self.negative_ttl = min(negative_ttl, spec.ttl)
        self.soa_rdata = (
            encode_name(nameservers[0] if nameservers else "ns." + spec.name)
            + encode_name(hostmaster)
            + struct.pack(">IIIII", serial & 0xFFFFFFFF, 3600, 600, 604800, negative_ttl)
        )
        self.ns_rdatas = [encode_name(ns) for ns in nameservers]
        self.a_head = struct.pack(">HHHI", 0xC00C, A, IN, spec.ttl) + b"\0\4"


class Responder:
    """Answers DNS queries from one snapshot; counts hits, misses, refusals and errors per zone."""

    def __init__(
        self,
        snapshot: Snapshot,
        zones: Sequence[ZoneSpec],
        *,
        nameservers: Sequence[str],
        hostmaster: str,
        negative_ttl: int,
        counters: list[int] | None = None,
        max_udp: int = MAX_UDP_ANSWER,
        amplification: int = MAX_AMPLIFICATION,
    ) -> None:
        self.snapshot = snapshot
        self.max_udp = max_udp
        self.amplification = amplification
        self.zones = [
            _Zone(z, snapshot.effective_serial, nameservers, hostmaster, negative_ttl)
            for z in zones
        ]
        self.counters = counters if counters is not None else [0] * (SLOTS * (len(zones) + 1))
        self._a_cache: dict[tuple[int, int], bytes] = {}
        #: Answers a query outside our zones before REFUSED, or returns None (the RPZ zones'
        #: SOA offered by transfer: secondaries probe the serial, dnsbl/transfer.py).
        self.outside: Callable[[bytes], bytes | None] | None = None

    # -- entry point ------------------------------------------------------------------------
    def respond(self, packet: bytes, max_size: int | None) -> bytes | None:
        """Return the reply to *packet* (None to stay silent); *max_size* None means TCP."""
        other = SLOTS * len(self.zones)
        if len(packet) < 12:
            self.counters[other + ERROR] += 1
            return None
        qid, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(packet)
        if flags & QR:
            self.counters[other + ERROR] += 1
            return None  # a response, not a query: never answer it (reflection loops)
        rd = flags & RD
        opcode = flags & 0x7800
        try:
            if qdcount != 1 or ancount or nscount:
                raise FormatError("need exactly one question and no answers")
            qend, labels = _parse_name(packet, 12)
            if qend + 4 > len(packet):
                raise FormatError("question truncated")
            qtype, qclass = struct.unpack_from(">HH", packet, qend)
            edns = _parse_opt(packet, qend + 4, arcount)
        except FormatError:
            self.counters[other + ERROR] += 1
            return _HEADER.pack(qid, QR | opcode | rd | FORMERR, 0, 0, 0, 0)
        question = packet[12 : qend + 4]
        if edns is not None and edns[1] != 0:
            # RFC 6891 §6.1.3: unknown EDNS version -> BADVERS (extended RCODE 16).
            self.counters[other + ERROR] += 1
            return self._finish(
                qid, QR | opcode | rd, question, [], [], edns, max_size, BADVERS, len(packet)
            )
        if opcode:
            self.counters[other + ERROR] += 1
            return self._finish(
                qid, QR | opcode | rd, question, [], [], edns, max_size, NOTIMP, len(packet)
            )
        lower = [label.lower() for label in labels]
        zone_index, zone = self._zone_of(lower)
        if zone is None and self.outside is not None and qtype not in (AXFR, IXFR):
            reply = self.outside(packet)
            if reply is not None:
                return reply
        if zone is None or qclass not in (IN, ANY) or qtype in (AXFR, IXFR):
            slot = other if zone is None else SLOTS * zone_index
            self.counters[slot + REFUSED_COUNT] += 1
            return self._finish(
                qid, QR | rd, question, [], [], edns, max_size, REFUSED, len(packet)
            )
        prefix = lower[: len(lower) - zone.labels]
        return self._answer_in_zone(
            qid, rd, question, zone_index, zone, prefix, qtype, edns, (max_size, len(packet))
        )

    # -- zones ------------------------------------------------------------------------------
    def _zone_of(self, lower: list[bytes]) -> tuple[int, _Zone | None]:
        wire = b"".join(bytes([len(x)]) + x for x in lower) + b"\0"
        best: tuple[int, _Zone | None] = (-1, None)
        for index, zone in enumerate(self.zones):
            if wire.endswith(zone.wire):
                cut = len(wire) - len(zone.wire)
                if _on_boundary(wire, cut) and (
                    best[1] is None or len(zone.wire) > len(best[1].wire)
                ):
                    best = (index, zone)
        return best

    def _answer_in_zone(
        self,
        qid: int,
        rd: int,
        question: bytes,
        zone_index: int,
        zone: _Zone,
        prefix: list[bytes],
        qtype: int,
        edns: tuple[int, int] | None,
        transport: tuple[int | None, int],
    ) -> bytes:
        max_size, qsize = transport
        flags = QR | AA | rd
        slot = SLOTS * zone_index
        apex_offset = 12 + sum(len(x) + 1 for x in prefix)
        soa = [self._soa_rr(zone, apex_offset, negative=True)]
        if not prefix:
            self.counters[slot + HIT] += 1
            answers: list[bytes] = []
            # RFC 8482 §4.2: ANY gets one RRset, here the SOA, never everything we have.
            if qtype in (SOA, ANY):
                answers.append(self._soa_rr(zone, 12, negative=False))
            if qtype == NS:
                answers.extend(
                    _RR.pack(0xC00C, NS, IN, zone.ttl, len(r)) + r for r in zone.ns_rdatas
                )
            return self._finish(
                qid,
                flags,
                question,
                answers,
                [] if answers else soa,
                edns,
                max_size,
                NOERROR,
                qsize,
            )
        found = self._lookup(zone, prefix)
        if found is None:
            self.counters[slot + MISS] += 1
            return self._finish(qid, flags, question, [], soa, edns, max_size, NXDOMAIN, qsize)
        atoms, subject, snap = found
        if not atoms:  # empty non-terminal: the name exists, holds no data
            self.counters[slot + MISS] += 1
            return self._finish(qid, flags, question, [], soa, edns, max_size, NOERROR, qsize)
        self.counters[slot + HIT] += 1
        answers = []
        if qtype in (A, ANY):
            answers.extend(self._a_records(zone, atoms, snap))
        if qtype == TXT:  # ANY: the A RRset alone (RFC 8482 §4.2), the smallest we have
            for atom in atoms:
                rdata = txt_rdata(expand(snap.template(atom), subject))
                answers.append(_RR.pack(0xC00C, TXT, IN, zone.ttl, len(rdata)) + rdata)
        return self._finish(
            qid, flags, question, answers, [] if answers else soa, edns, max_size, NOERROR, qsize
        )

    def _a_records(self, zone: _Zone, atoms: tuple[int, ...], snap: Snapshot) -> list[bytes]:
        codes = sorted({int(snap.atom_code[a]) for a in atoms})
        return [zone.a_head + code.to_bytes(4, "big") for code in codes]

    def _lookup(
        self, zone: _Zone, prefix: list[bytes]
    ) -> tuple[tuple[int, ...], bytes, Snapshot] | None:
        """Return (atoms, subject text, the snapshot the atoms are of) for a name.

        Empty atoms for an empty non-terminal. A changed address answers from the overlay.
        """
        snap = self.snapshot
        overlay = snap.overlay
        kind = zone.spec.kind
        if kind in ("ip", "allow"):
            parsed = _parse_ip(prefix)
            if parsed == "partial":
                return (), b"", snap
            if isinstance(parsed, tuple):
                family, value, text = parsed
                if family == 4:
                    if overlay is not None and value in overlay.v4:
                        snap = overlay.snapshot
                    vid = snap.v4_value(value) if kind == "ip" else snap.wl_v4_value(value)
                else:
                    raw = value.to_bytes(16, "big")
                    if overlay is not None and raw in overlay.v6:
                        snap = overlay.snapshot
                    vid = snap.v6_value(raw) if kind == "ip" else snap.wl_v6_value(raw)
                atoms = snap.atoms(vid)
                return (atoms, text, snap) if atoms else None
            if kind == "ip":
                return None
        try:
            name = b".".join(prefix).decode("ascii")
        except UnicodeDecodeError:
            return None
        allow = kind == "allow"
        atoms, listed = snap.domain_match(name, allow=allow)
        if atoms:
            return atoms, listed.encode(), snap
        if snap.domain_has_children(name, allow=allow):
            return (), b"", snap
        return None

    # -- assembly ---------------------------------------------------------------------------
    def _soa_rr(self, zone: _Zone, name_offset: int, *, negative: bool) -> bytes:
        ttl = zone.negative_ttl if negative else zone.ttl
        return _RR.pack(0xC000 | name_offset, SOA, IN, ttl, len(zone.soa_rdata)) + zone.soa_rdata

    def _finish(
        self,
        qid: int,
        flags: int,
        question: bytes,
        answers: list[bytes],
        authority: list[bytes],
        edns: tuple[int, int] | None,
        max_size: int | None,
        rcode: int,
        qsize: int,
    ) -> bytes:
        """Assemble the reply; cut it to the transport's limit (TC) so it always fits."""
        opt = b""
        if edns is not None:
            # OPT: root name, our payload size, extended RCODE bits in the TTL field.
            opt = b"\0" + struct.pack(">HHIH", OPT, OUR_UDP_SIZE, (rcode >> 4) << 24, 0)
        head = _HEADER.pack(
            qid, flags | (rcode & 0xF), 1, len(answers), len(authority), 1 if opt else 0
        )
        reply = b"".join((head, question, *answers, *authority, opt))
        if max_size is None:
            if len(reply) > MAX_TCP_MESSAGE:
                return self._fit_tcp(qid, flags, question, answers, opt, rcode)
            return reply
        offered = 512 if edns is None else max(512, edns[0])
        limit = min(offered, self.max_udp)
        if self.amplification and offered <= 512:
            limit = min(limit, self.amplification * qsize)
        if len(reply) > limit:
            head = _HEADER.pack(qid, flags | TC | (rcode & 0xF), 1, 0, 0, 1 if opt else 0)
            reply = head + question + opt
        return reply

    @staticmethod
    def _fit_tcp(
        qid: int,
        flags: int,
        question: bytes,
        answers: list[bytes],
        opt: bytes,
        rcode: int,
    ) -> bytes:
        """Return as many whole answers as fit one TCP message, with TC set (RFC 2181 §9)."""
        room = MAX_TCP_MESSAGE - 12 - len(question) - len(opt)
        kept: list[bytes] = []
        for record in answers:
            if len(record) > room:
                break
            kept.append(record)
            room -= len(record)
        head = _HEADER.pack(qid, flags | TC | (rcode & 0xF), 1, len(kept), 0, 1 if opt else 0)
        return b"".join((head, question, *kept, opt))


def refusal(packet: bytes) -> bytes | None:
    """Return a bare REFUSED reply to *packet* (access control), or None if it is no query."""
    if len(packet) < 12:
        return None
    qid, flags = struct.unpack_from(">HH", packet)
    if flags & QR:
        return None
    return _HEADER.pack(qid, QR | (flags & 0x7900) | REFUSED, 0, 0, 0, 0)


def _label_count(wire: bytes) -> int:
    count = 0
    pos = 0
    while wire[pos]:
        count += 1
        pos += wire[pos] + 1
    return count


def _on_boundary(wire: bytes, cut: int) -> bool:
    pos = 0
    while pos < cut:
        pos += wire[pos] + 1
    return pos == cut


def _parse_name(packet: bytes, pos: int) -> tuple[int, list[bytes]]:
    """Return (offset after the name, labels) of an uncompressed name at *pos*."""
    labels: list[bytes] = []
    total = 0
    while True:
        if pos >= len(packet):
            raise FormatError("name runs past the end")
        length = packet[pos]
        if length == 0:
            return pos + 1, labels
        if length > 63:
            raise FormatError("compressed or bad label in question")
        total += length + 1
        if total > 254:
            raise FormatError("name longer than 255 bytes")
        labels.append(packet[pos + 1 : pos + 1 + length])
        pos += length + 1


def _parse_opt(packet: bytes, pos: int, arcount: int) -> tuple[int, int] | None:
    """Return (UDP payload size, EDNS version) of the OPT record, or None without EDNS."""
    edns: tuple[int, int] | None = None
    for _ in range(arcount):
        if pos >= len(packet):
            raise FormatError("additional section truncated")
        if packet[pos] == 0:
            pos += 1
        else:
            pos, _labels = _parse_name(packet, pos)
        if pos + 10 > len(packet):
            raise FormatError("additional record truncated")
        rtype, rclass, ttl, rdlen = _RR_TAIL.unpack_from(packet, pos)
        pos += 10 + rdlen
        if pos > len(packet):
            raise FormatError("additional record data truncated")
        if rtype == OPT:
            if edns is not None:
                raise FormatError("more than one OPT record")
            edns = (rclass, (ttl >> 16) & 0xFF)
    return edns


def _parse_ip(prefix: list[bytes]) -> tuple[int, int, bytes] | str | None:
    """Return (family, address int, text), "partial" for an empty non-terminal, or None."""
    n = len(prefix)
    if n <= 4 and all(
        x and len(x) <= 3 and _DIGITS.issuperset(x) and int(x) <= 255 for x in prefix
    ):
        if n < 4:
            return "partial"
        a, b, c, d = (int(x) for x in prefix)
        return 4, (d << 24) | (c << 16) | (b << 8) | a, b"%d.%d.%d.%d" % (d, c, b, a)
    if n <= 32 and all(len(x) == 1 and x[0] in _NIBBLES for x in prefix):
        if n < 32:
            return "partial"
        value = 0
        for x in reversed(prefix):
            value = (value << 4) | _NIBBLES[x[0]]
        if value >> 32 == 0xFFFF:  # ::ffff:a.b.c.d answers as the IPv4 address
            v4 = value & 0xFFFFFFFF
            return (
                4,
                v4,
                f"{v4 >> 24}.{(v4 >> 16) & 255}.{(v4 >> 8) & 255}.{v4 & 255}".encode(),
            )
        return 6, value, str(IPv6Address(value)).encode()
    return None

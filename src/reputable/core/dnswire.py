"""Hand-rolled DNS wire code for the bulk-query hot path: A/TXT queries and their answers.

dnspython's Message/Name objects cost ~150 µs per query round trip, which made 40,000 DNSBL
queries CPU-bound (bench/check_bulk.py); this module does the same job for the two types the
lists use in ~15 µs. Anything unusual (non-ASCII names, other types) goes through dnspython, and
tests/core/test_dnswire.py checks both paths agree (RFC 1035 §4).
"""

from __future__ import annotations

import struct
from typing import Final

TYPE_A: Final = 1
TYPE_TXT: Final = 16
FAST_TYPES: Final = {"A": TYPE_A, "TXT": TYPE_TXT}
_HEADER: Final = struct.Struct("!HHHHHH")
_RR: Final = struct.Struct("!HHIH")
_FLAG_QR: Final = 0x8000
_FLAG_TC: Final = 0x0200
_FLAG_RD: Final = 0x0100
#: The length octet of each valid label length (1-63).
_LENGTH: Final = {n: bytes((n,)) for n in range(1, 64)}


class WireError(ValueError):
    """A name that cannot be encoded, or a response that is malformed or not ours."""


def encode_question(name: str, rdtype: int) -> bytes:
    """Return the question section for *name* (ASCII) and *rdtype*, class IN."""
    labels = name.encode("ascii").rstrip(b".").split(b".") if name not in ("", ".") else []
    try:
        out = b"".join([_LENGTH[len(label)] + label for label in labels]) + b"\x00"
    except KeyError as exc:
        bad = next(label for label in labels if len(label) not in _LENGTH).decode()
        raise WireError(f"bad label {bad!r} in {name!r}: must be 1-63 characters") from exc
    if len(out) > 255:
        raise WireError(f"name {name!r} is longer than 255 octets")
    return out + struct.pack("!HH", rdtype, 1)


def encode_query(qid: int, question: bytes) -> bytes:
    """Return a recursive query with id *qid* and one *question* (from encode_question)."""
    return _HEADER.pack(qid, _FLAG_RD, 1, 0, 0, 0) + question


def _skip_name(data: bytes, pos: int) -> int:
    while True:
        if pos >= len(data):
            raise WireError("name runs past the end of the message")
        length = data[pos]
        if length & 0xC0 == 0xC0:
            return pos + 2
        if length & 0xC0:
            raise WireError("unknown label type")
        if length == 0:
            return pos + 1
        pos += 1 + length


def _txt(rdata: bytes) -> str:
    parts, pos = [], 0
    while pos < len(rdata):
        length = rdata[pos]
        parts.append(rdata[pos + 1 : pos + 1 + length])
        pos += 1 + length
    return b"".join(parts).decode("utf-8", "replace")


def parse_response(data: bytes, qid: int, question: bytes) -> tuple[int, bool, tuple[str, ...]]:
    """Return (rcode, truncated, records of the asked type) of a response to our *question*.

    Raises WireError if *data* is not a well-formed response to that question (id, QR bit and
    question compared; names case-insensitively, so 0x20 case randomisation is fine).
    """
    if len(data) < 12:
        raise WireError("response shorter than a DNS header")
    rid, flags, qdcount, ancount, _, _ = _HEADER.unpack_from(data)
    end = 12 + len(question)
    if (
        rid != qid
        or not flags & _FLAG_QR
        or qdcount != 1
        or data[12:end].lower() != question.lower()
    ):
        raise WireError("response does not match the question")
    rdtype = int.from_bytes(question[-4:-2], "big")
    records: list[str] = []
    pos = end
    for _ in range(ancount):
        pos = _skip_name(data, pos)
        if pos + 10 > len(data):
            raise WireError("record header runs past the end of the message")
        rtype, rclass, _, length = _RR.unpack_from(data, pos)
        pos += 10
        rdata = data[pos : pos + length]
        if len(rdata) != length:
            raise WireError("record data runs past the end of the message")
        pos += length
        if rtype != rdtype or rclass != 1:
            continue
        if rtype == TYPE_A:
            if length != 4:
                raise WireError("A record is not 4 octets")
            records.append("%d.%d.%d.%d" % tuple(rdata))  # noqa: UP031  # fastest here
        else:
            records.append(_txt(rdata))
    return flags & 0x000F, bool(flags & _FLAG_TC), tuple(records)

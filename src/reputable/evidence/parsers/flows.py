"""Flow records as CSV: ``ts,src,dst,dport,proto,packets,bytes`` (one flow per line).

``ts`` is ISO-8601 (UTC when it has no zone) or epoch seconds; ``proto`` a name (tcp, udp,
icmp) or an IP protocol number. A header line, blank lines and ``#`` comments are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, tzinfo
from typing import Final

from reputable.evidence.parsers.netbase import OTHER, UNKNOWN, NetEvent, NetLine, client_address
from reputable.evidence.parsers.syslog_time import TimeParser

NAME: Final = "flows"

_PROTOCOLS: Final = {"1": "icmp", "6": "tcp", "17": "udp", "58": "ipv6-icmp", "132": "sctp"}


def _number(text: str) -> int | None:
    value = text.strip()
    return int(value) if value.isdigit() else None


def parse(
    lines: Iterable[str], *, now: datetime, first_line: int = 1, tz: tzinfo = UTC
) -> Iterator[NetEvent | NetLine]:
    """Yield a ``flow`` event per record, a NetLine for headers, comments and bad records."""
    clock = TimeParser(now, tz)
    for lineno, raw in enumerate(lines, first_line):
        text = raw.rstrip("\r\n")
        cells = text.split(",")
        if not text.strip() or text.startswith("#") or cells[0].strip().lower() == "ts":
            yield NetLine(lineno, OTHER, text)
            continue
        if len(cells) != 7:
            yield NetLine(lineno, UNKNOWN, text)
            continue
        stamp, src, dst, dport, proto, packets, size = (c.strip() for c in cells)
        try:
            ts = float(stamp) if stamp.replace(".", "", 1).isdigit() else clock(stamp)
        except ValueError:
            ts = None
        port, count, volume = _number(dport), _number(packets), _number(size)
        if (
            ts is None
            or client_address(src) is None
            or client_address(dst) is None
            or port is None
            or count is None
            or volume is None
        ):
            yield NetLine(lineno, UNKNOWN, text)
            continue
        yield NetEvent(
            line=lineno,
            ts=ts,
            ip=src,
            event="flow",
            text=text,
            dst=dst,
            dport=port,
            proto=_PROTOCOLS.get(proto, proto.lower()),
            packets=count,
            size=volume,
        )

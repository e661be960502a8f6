"""iptables and nftables ``LOG`` lines in a syslog kernel log (``kern.log``, ``journalctl -k``).

``Nov 29 08:00:00 fw kernel: [1234.5] [UFW BLOCK] IN=eth0 OUT= MAC=.. SRC=203.0.113.5
DST=198.51.100.1 LEN=40 ... PROTO=TCP SPT=43210 DPT=23 WINDOW=1024 RES=0x00 SYN URGP=0``:
one packet per line; a TCP SYN without ACK is a ``syn`` event, everything else a ``packet``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, tzinfo
from typing import Final

from reputable.evidence.parsers.envelope import syslog_lines
from reputable.evidence.parsers.netbase import OTHER, UNKNOWN, NetEvent, NetLine, client_address
from reputable.evidence.parsers.syslog_time import TimeParser

NAME: Final = "netfilter"

_TS: Final = (
    r"(?P<ts>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d"
    r"|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
)
_LINE: Final = re.compile(
    _TS + r" \S+ kernel: (?:\[\s*\d+\.\d+\] )?.*?\bIN=\S* OUT=\S* (?P<rest>.*)$"
)
_SYSLOG_ANY: Final = re.compile(_TS + r" \S+ [^\s\[:]+(?:\[\d+\])?: ")
_TCP_FLAGS: Final = frozenset({"SYN", "ACK", "FIN", "RST", "PSH", "URG", "CWR", "ECE"})


def parse(
    lines: Iterable[str],
    *,
    now: datetime,
    first_line: int = 1,
    tz: tzinfo = UTC,
    envelope: bool = True,
) -> Iterator[NetEvent | NetLine]:
    """Yield a ``syn`` or ``packet`` event per LOG line, a NetLine for anything else."""
    clock = TimeParser(now, tz)
    for lineno, text in syslog_lines(lines, first_line, envelope=envelope):
        found = _LINE.match(text)
        fields: dict[str, str] = {}
        flags: list[str] = []
        if found is not None:
            for token in found["rest"].split():
                key, sep, value = token.partition("=")
                if sep:
                    fields.setdefault(key, value)
                elif token in _TCP_FLAGS:
                    flags.append(token)
        ts = clock(found["ts"]) if found is not None else None
        src = fields.get("SRC", "")
        if found is None or ts is None or client_address(src) is None:
            kind = OTHER if not text.strip() or _SYSLOG_ANY.match(text) else UNKNOWN
            yield NetLine(lineno, kind, text)
            continue
        proto = fields.get("PROTO", "").lower()
        syn = proto == "tcp" and "SYN" in flags and "ACK" not in flags
        dport = fields.get("DPT", "")
        length = fields.get("LEN", "")
        yield NetEvent(
            line=lineno,
            ts=ts,
            ip=src,
            event="syn" if syn else "packet",
            text=text,
            dst=fields.get("DST", ""),
            dport=int(dport) if dport.isdigit() else 0,
            proto=proto,
            packets=1,
            size=int(length) if length.isdigit() else 0,
            flags=" ".join(flags),
        )

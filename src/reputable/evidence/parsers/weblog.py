"""Web server access logs in the combined (or common) log format: nginx's default and Apache's.

``IP - user [29/Nov/2026:08:00:00 +0000] "GET /path HTTP/1.1" 404 153 "referer" "agent"``;
Apache's ``vhost_combined`` (a leading ``host:port``) is read too. A request line that is not
``METHOD PATH PROTOCOL`` (a TLS handshake sent to port 80, ``-``) is kept with an empty path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

from reputable.evidence.parsers.netbase import OTHER, UNKNOWN, NetEvent, NetLine, client_address

NAME: Final = "weblog"

_LINE: Final = re.compile(
    r"(?:\S+:\d+ )?(?P<ip>[0-9A-Fa-f:.]+) \S+ (?P<user>\S+) \[(?P<ts>[^\]]+)\] "
    r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) (?P<size>\d+|-)(?: .*)?$'
)
_MONTHS: Final = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


def web_time(text: str) -> float | None:
    """Return ``29/Nov/2026:08:00:00 +0000`` as epoch seconds, or None."""
    try:
        day, month, rest = text.split("/", 2)
        year, hh, mm, tail = rest.split(":", 3)
        ss, _, zone = tail.partition(" ")
        sign = -1 if zone.startswith("-") else 1
        offset = timedelta(hours=int(zone[1:3] or 0), minutes=int(zone[3:5] or 0)) * sign
        at = datetime(
            int(year),
            _MONTHS[month],
            int(day),
            int(hh),
            int(mm),
            int(ss),
            tzinfo=timezone(offset) if offset else UTC,
        )
    except (ValueError, KeyError, OverflowError):  # OverflowError: a 40-digit second (fuzzing)
        return None
    return at.timestamp()


def parse(
    lines: Iterable[str], *, now: datetime, first_line: int = 1
) -> Iterator[NetEvent | NetLine]:
    """Yield an ``http_request`` event per access-log line, a NetLine for anything else."""
    del now  # access logs carry their year and zone
    cache: dict[str, float | None] = {}
    for lineno, raw in enumerate(lines, first_line):
        text = raw.rstrip("\r\n")
        found = _LINE.match(text)
        if found is None or client_address(found["ip"]) is None:
            yield NetLine(lineno, OTHER if not text.strip() else UNKNOWN, text)
            continue
        stamp = found["ts"]
        ts = cache.get(stamp, -1.0)
        if ts == -1.0:
            if len(cache) > 100_000:
                cache.clear()
            ts = cache[stamp] = web_time(stamp)
        if ts is None:
            yield NetLine(lineno, UNKNOWN, text)
            continue
        parts = found["request"].split(" ")
        method, path = (parts[0], parts[1]) if len(parts) == 3 else ("", "")
        size = found["size"]
        yield NetEvent(
            line=lineno,
            ts=ts,
            ip=found["ip"],
            event="http_request",
            text=text,
            user="" if found["user"] == "-" else found["user"],
            method=method,
            path=path,
            status=int(found["status"]),
            size=0 if size == "-" else int(size),
        )

"""The table of network-log parsers, by the name ``ingest netlog --format`` takes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Final, Protocol

from reputable.evidence.parsers import dovecot, flows, netfilter, sshd, weblog
from reputable.evidence.parsers.netbase import NetEvent, NetLine


class NetParser(Protocol):
    """A network-log parser: lines in, one event or NetLine per line out (pure)."""

    def __call__(
        self, lines: Iterable[str], *, now: datetime, first_line: int = 1, tz: tzinfo = UTC
    ) -> Iterator[NetEvent | NetLine]:
        """Parse *lines*, numbering them from *first_line*; times without a zone are in *tz*."""
        ...


#: nginx and Apache share the combined log format (weblog also reads Apache's vhost_combined).
NET_PARSERS: Final[Mapping[str, NetParser]] = {
    "sshd": sshd.parse,
    "dovecot": dovecot.parse,
    "nginx": weblog.parse,
    "apache": weblog.parse,
    "netfilter": netfilter.parse,
    "flows": flows.parse,
}


def parse_lines(
    name: str, lines: Iterable[str], *, now: datetime, first_line: int = 1, tz: tzinfo = UTC
) -> Iterator[NetEvent | NetLine]:
    """Run the parser called *name* over *lines* (KeyError for an unknown name)."""
    return NET_PARSERS[name](lines, now=now, first_line=first_line, tz=tz)

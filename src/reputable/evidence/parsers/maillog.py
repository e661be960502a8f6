"""Mail logs: the table of mail-log formats, format sniffing, and line accounting for summaries."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from reputable.core.errors import InputError
from reputable.evidence.parsers import exim, postfix
from reputable.evidence.parsers.mailevent import Event, MailEvent
from reputable.evidence.parsers.syslog_time import TimeParser

EXAMPLES: Final = 5


class Scanner(Protocol):
    """A pure mail-log parser: complete lines in, events out."""

    def __call__(
        self,
        buf: str,
        *,
        first_line: int,
        times: TimeParser,
        wanted: frozenset[Event],
        number: bool = True,
    ) -> Iterator[MailEvent]:
        """Yield the wanted events of *buf*, in line order."""
        ...


PARSERS: Final[Mapping[str, Scanner]] = {m.NAME: m.scan for m in (postfix, exim)}


def sniff(sample: str) -> str:
    """Return the format of a log from its first lines; raise InputError when it is neither."""
    head = sample[: _nth_line_end(sample, 200)]  # not splitlines(): a chunk is 4 MB
    lines = [line for line in head.splitlines()[:200] if line.strip()]
    votes = Counter(
        "postfix" if postfix.MARKER in line else "exim" if exim.LINE.match(line) else ""
        for line in lines
    )
    votes.pop("", None)
    if not votes:
        raise InputError(
            "cannot tell the log format from the first lines (no Postfix or Exim lines);"
            " pass --format postfix or --format exim"
        )
    return votes.most_common(1)[0][0]


def _nth_line_end(text: str, n: int) -> int:
    """Return the index just past the *n*-th newline of *text* (its length when it has fewer)."""
    end = 0
    for _ in range(n):
        end = text.find("\n", end) + 1
        if end == 0:
            return len(text)
    return end


@dataclass(slots=True)
class Tally:
    """Lines read, understood and not understood (with a few examples), and events by kind."""

    read: int = 0
    understood: int = 0
    not_understood: int = 0
    examples: list[str] = field(default_factory=list)
    events: Counter[str] = field(default_factory=Counter)

    def count_lines(self, buf: str, fmt: str, where: str, first_line: int) -> None:
        """Account for the complete lines of *buf* (cheap when every line is of the format)."""
        lines = buf.count("\n") + (0 if buf.endswith("\n") or not buf else 1)
        self.read += lines
        if fmt == "postfix" and buf.count(postfix.MARKER) >= lines:
            self.understood += lines
            return
        for offset, line in enumerate(buf.split("\n")[:lines]):
            ok = (postfix.MARKER in line) if fmt == "postfix" else bool(exim.LINE.match(line))
            if ok or not line.strip():
                self.understood += 1
                continue
            self.not_understood += 1
            if len(self.examples) < EXAMPLES:
                self.examples.append(f"{where}:{first_line + offset}: {line[:160]}")

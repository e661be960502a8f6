"""Mail logs: the table of mail-log formats, format sniffing, and line accounting for summaries."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

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
        counts: Counter[Event] | None = None,
    ) -> Iterator[MailEvent]:
        """Yield the wanted events of *buf*, in line order; count every line's event in *counts*."""
        ...


PARSERS: Final[Mapping[str, Scanner]] = {m.NAME: m.scan for m in (postfix, exim)}
#: How many recognisable lines, from the first one, vote on the format.
VOTERS: Final = 200
_EXIM_LINE: Final = re.compile(r"^" + exim.LINE.pattern, re.MULTILINE)
#: A line that is not an Exim line: a newline not followed by a date (nor by the buffer's end).
_UNDATED: Final = re.compile(r"\n(?!" + exim.LINE.pattern + r"|\Z)")


def recognised(line: str, fmt: str) -> bool:
    """True when *line* is a line of *fmt* (a Postfix program tag; an Exim time or syslog tag)."""
    if fmt == "postfix":
        return postfix.MARKER in line
    return exim.LINE.match(line) is not None or exim.TAG.search(line) is not None


def sniff(text: str) -> str:
    """Return the format of a log from its lines: "postfix", "exim", or "" when none is either.

    The first Postfix or Exim line may come after any number of others (dovecot, kernel, ...):
    the search runs at C speed to it, then it and the next lines vote.
    """
    starts = []
    marker = text.find(postfix.MARKER)
    if marker >= 0:
        starts.append(text.rfind("\n", 0, marker) + 1)
    found = _EXIM_LINE.search(text)
    if found is not None:
        starts.append(found.start())
    tagged = exim.TAG.search(text)  # Exim logging to syslog
    if tagged is not None:
        starts.append(text.rfind("\n", 0, tagged.start()) + 1)
    if not starts:
        return ""
    first = min(starts)
    head = text[first : first + _nth_line_end(text[first:], 4 * VOTERS)]
    votes: Counter[str] = Counter()
    for line in head.splitlines():
        kind = next((fmt for fmt in PARSERS if recognised(line, fmt)), "")
        if kind:
            votes[kind] += 1
            if votes.total() >= VOTERS:
                break
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
    """What became of the lines read: understood, recognised without an event, not understood.

    *understood* lines gave an event (``--dry-run --jsonl`` prints one object for each);
    *no_event* lines are of the log's format (or blank) but carry nothing of interest
    (``qmgr: removed``, ``cleanup: message-id=``, ...); *not_understood* lines are of no
    known format (a few are kept as examples). A file none of whose lines is of a known format
    is named in *unrecognised*.
    """

    read: int = 0
    not_understood: int = 0
    blank: int = 0
    examples: list[str] = field(default_factory=list)
    events: Counter[Event] = field(default_factory=Counter)  # lines with an event, by event
    files: dict[str, list[int]] = field(default_factory=dict)  # where -> [read, recognised]

    @property
    def understood(self) -> int:
        """Lines that gave an event."""
        return self.events.total()

    @property
    def recognised(self) -> int:
        """Lines of a known format (blank lines are not)."""
        return self.read - self.not_understood - self.blank

    @property
    def no_event(self) -> int:
        """Lines of a known format, or blank, that gave no event."""
        return self.read - self.not_understood - self.understood

    def unrecognised(self) -> list[tuple[str, int]]:
        """Return (file, lines) of the files in which no line was of a known format."""
        return [(where, read) for where, (read, known) in self.files.items() if read and not known]

    def count_lines(self, buf: str, fmt: str, where: str, first_line: int) -> None:
        """Account for the complete lines of *buf* of format *fmt* ("" when not known yet).

        Cheap when every line is of the format (one ``str.count``).
        """
        lines = buf.count("\n") + (0 if buf.endswith("\n") or not buf else 1)
        self.read += lines
        per_file = self.files.get(where)
        if per_file is None:
            per_file = self.files[where] = [0, 0]
        per_file[0] += lines
        if fmt == "postfix" and buf.count(postfix.MARKER) >= lines:
            per_file[1] += lines
            return
        if fmt == "exim" and buf[:1].isdigit() and _UNDATED.search(buf) is None:
            per_file[1] += lines  # every line dated (one search at C speed, nothing allocated)
            return
        known = 0
        for offset, line in enumerate(buf.split("\n")[:lines]):
            if fmt and recognised(line, fmt):
                known += 1
            elif not line.strip():
                self.blank += 1
            else:
                self.not_understood += 1
                if len(self.examples) < EXAMPLES:
                    self.examples.append(f"{where}:{first_line + offset}: {line[:160]}")
        per_file[1] += known

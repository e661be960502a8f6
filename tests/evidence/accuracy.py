"""Accuracy of the log parsers on the annotated corpus of tests/samples/accuracy/ (issue 13).

Each corpus file is named after its parser and holds one line per message variant of the
daemon's documented log formats (written from their log strings, not copied from anyone's
fixtures), each annotated at the start of the line::

    A 203.0.113.7 auth_failed | Nov 29 00:00:01 h sshd[4101]: Failed password for root from ...
    B 192.0.2.44 accepted     | Nov 29 00:01:00 h sshd[4120]: Accepted publickey for alice ...
    B - -                     | Nov 29 00:01:01 h CRON[4125]: pam_unix(cron:session): ...

``A`` marks an attacker's line: the parser must give that event for that address (recall).
``B`` marks a benign line: the parser must give exactly the event named (``-``: none at all),
never an attack (precision on benign lines). ``#`` lines are comments; ``# now: ISO`` sets the
reference time for years. Used by tests/evidence/test_accuracy.py (which requires 100 % on
this corpus) and bench/parser_accuracy.py (which prints the figures).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from reputable.core.clock import parse_instant
from reputable.evidence.parsers.mailevent import ALL_EVENTS
from reputable.evidence.parsers.maillog import PARSERS
from reputable.evidence.parsers.net import parse_lines
from reputable.evidence.parsers.netbase import NetEvent
from reputable.evidence.parsers.syslog_time import TimeParser

CORPUS = Path(__file__).parents[1] / "samples" / "accuracy"


@dataclass(frozen=True, slots=True)
class Case:
    """One annotated line: attack or benign, the address and event expected (None: none)."""

    number: int  # line number in the corpus file
    attack: bool
    ip: str | None
    event: str | None
    text: str


@dataclass(slots=True)
class Score:
    """How a parser did on its corpus file."""

    parser: str
    attacks: int = 0
    attacks_right: int = 0
    benign: int = 0
    benign_right: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        """Attack lines understood with the right event and address, of all attack lines."""
        return self.attacks_right / self.attacks if self.attacks else 1.0

    @property
    def precision(self) -> float:
        """Benign lines given exactly their (non-attack) event or none, of all benign lines."""
        return self.benign_right / self.benign if self.benign else 1.0


def load(path: Path) -> tuple[datetime, list[Case]]:
    """Return the reference time and the cases of one corpus file (ValueError names a bad line)."""
    now = datetime(2026, 12, 1, tzinfo=UTC)
    cases = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if raw.startswith("# now:"):
            now = parse_instant(raw.removeprefix("# now:").strip())
            continue
        if not raw.strip() or raw.startswith("#"):
            continue
        head, sep, text = raw.partition(" | ")
        parts = head.split()
        if not sep or len(parts) != 3 or parts[0] not in ("A", "B"):
            raise ValueError(f"{path.name}:{number}: want 'A|B IP|- EVENT|- | line', got {raw!r}")
        kind, ip, event = parts
        if kind == "A" and (ip == "-" or event == "-"):
            raise ValueError(f"{path.name}:{number}: an attack line names its address and event")
        cases.append(
            Case(
                number,
                kind == "A",
                None if ip == "-" else ip,
                None if event == "-" else event,
                text,
            )
        )
    return now, cases


def _found(parser: str, cases: list[Case], now: datetime) -> Iterator[list[tuple[str | None, str]]]:
    """Yield, per case, the (ip, event) pairs the parser gave for its line."""
    lines = [c.text for c in cases]
    if parser in PARSERS:
        by_line: dict[int, list[tuple[str | None, str]]] = {}
        buf = "".join(line + "\n" for line in lines)
        for ev in PARSERS[parser](buf, first_line=1, times=TimeParser(now), wanted=ALL_EVENTS):
            by_line.setdefault(ev.line, []).append((ev.ip, ev.event.value))
        for n in range(1, len(lines) + 1):
            yield by_line.get(n, [])
        return
    for item in parse_lines(parser, lines, now=now):
        yield [(item.ip or None, item.event)] if isinstance(item, NetEvent) else []


def score(parser: str) -> Score:
    """Run *parser* over its corpus file and score every line."""
    now, cases = load(CORPUS / f"{parser}.log")
    result = Score(parser)
    for case, got in zip(cases, _found(parser, cases, now), strict=True):
        want = [(case.ip, case.event)] if case.event is not None else []
        right = got == want
        if case.attack:
            result.attacks += 1
            result.attacks_right += right
        else:
            result.benign += 1
            result.benign_right += right
        if not right:
            kind = "attack" if case.attack else "benign"
            result.misses.append(
                f"{parser}.log:{case.number} ({kind}): want {want}, got {got}: {case.text}"
            )
    return result


def parsers() -> list[str]:
    """The parsers that have a corpus file."""
    return sorted(p.stem for p in CORPUS.glob("*.log"))

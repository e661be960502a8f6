"""The values every feed parser shares: what a feed is, what it yields, how it went wrong."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from reputable.core.address import Domain, IPAddress, IPNetwork
from reputable.core.cause import Cause
from reputable.core.errors import InputError, ReputableError
from reputable.core.limits import MAX_LINE_BYTES

#: Feed names become listing sources ``feed:NAME``: no ``:``, nothing a shell must quote.
FEED_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
#: Feed kinds whose entries are URLs (malware/phishing) rather than IP addresses and networks.
URL_KINDS: Final = frozenset({"urlhaus", "phishtank", "openphish"})
#: Feed kinds whose entries are evidence (what a defence tool saw), never listings by themselves.
EVIDENCE_KINDS: Final = frozenset({"crowdsec", "fail2ban"})


class FeedError(ReputableError):
    """A feed could not be downloaded or parsed; its last good data stays in force."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CsvMapping:
    """How a generic CSV feed maps to entries: which column holds the IP/CIDR or URL."""

    column: str = "0"  # a header name, or a 0-based index when the feed has no header
    reason_column: str | None = None
    delimiter: str = ","
    header: bool = False
    comment: str = "#"
    holds: str = "ip"  # "ip" (IP/CIDR per row) or "url" (a malware/phishing URL per row)


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedDefinition:
    """One configured feed: where to fetch it, how to read it, how often."""

    name: str
    url: str
    kind: str
    refresh: timedelta
    csv: CsvMapping = field(default_factory=CsvMapping)
    broad: bool = False  # entries may be broader than listings.max_prefix_v4/v6

    @property
    def source(self) -> str:
        """The listing and evidence source of this feed."""
        return f"feed:{self.name}"

    @property
    def holds_urls(self) -> bool:
        """True when the feed lists URLs (domains and resolved IPs) rather than networks."""
        return self.kind in URL_KINDS or (self.kind == "csv" and self.csv.holds == "url")


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedState:
    """What the last syncs of a feed left behind."""

    etag: str | None = None
    last_modified: str | None = None
    content_hash: str | None = None
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    entries: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedRecord:
    """A stored feed: its definition and its state."""

    definition: FeedDefinition
    state: FeedState


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkEntry:
    """An IP address or network a feed lists, with the feed's own reason (e.g. ``SBL123``)."""

    network: IPNetwork
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class UrlEntry:
    """A malware or phishing URL reduced to its host and registrable domain."""

    url: str
    host: Domain | IPAddress
    domain: Domain | None  # None when the host is an IP literal
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class EventEntry:
    """One thing a defence tool saw an address do (a CrowdSec decision, a fail2ban ban).

    Such feeds give evidence, not listings: the policy engine weighs it like our own logs.
    *observed_at* is None when the format carries no time (the sync uses its UTC day).
    """

    address: IPAddress
    cause: Cause
    observed_at: datetime | None
    detail: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedContent:
    """What a parser made of one download: entries, and how many lines it could not read."""

    networks: tuple[NetworkEntry, ...] = ()
    urls: tuple[UrlEntry, ...] = ()
    events: tuple[EventEntry, ...] = ()
    lines: int = 0  # data lines seen (comments and blanks excluded)
    invalid: int = 0
    samples: tuple[str, ...] = ()  # the first few unreadable lines, for the error message
    skipped: tuple[str, ...] = ()  # entries read fine but of no use here, each with why

    @property
    def entries(self) -> int:
        """How many entries the feed yielded."""
        return len(self.networks) + len(self.urls) + len(self.events)


def check_name(name: str) -> str:
    """Return *name* if it is a valid feed name, else raise InputError saying what is allowed."""
    if not FEED_NAME.match(name):
        raise InputError(
            f"bad feed name {name!r}: use 1-63 lower-case letters, digits, '.', '_' or '-'"
        )
    return name


class Tally:
    """Counts data lines and unreadable ones while a parser runs (local to one call)."""

    def __init__(self) -> None:
        self.lines = 0
        self.invalid = 0
        self.samples: list[str] = []
        self.skipped: list[str] = []

    def bad(self, lineno: int, text: str, why: str) -> None:
        """Record an unreadable line."""
        self.invalid += 1
        if len(self.samples) < 5:
            self.samples.append(f"line {lineno}: {text[:80]!r}: {why}")

    def skip(self, why: str) -> None:
        """Record an entry that reads fine but that this feed kind cannot use (reported)."""
        self.skipped.append(why)

    def row(self, lineno: int, line: str, delimiter: str = ",") -> list[str] | None:
        """Return the CSV fields of one line, or None after recording why it is unreadable."""
        if len(line) > MAX_LINE_BYTES:
            self.bad(lineno, line, f"line longer than {MAX_LINE_BYTES} bytes")
            return None
        try:
            return next(csv.reader([line], delimiter=delimiter), [])
        except csv.Error as exc:  # a NUL byte, an unclosed quote in strict mode, ...
            self.bad(lineno, line, f"not a CSV line: {exc}")
            return None

    def content(
        self,
        networks: list[NetworkEntry] | None = None,
        urls: list[UrlEntry] | None = None,
        events: list[EventEntry] | None = None,
    ) -> FeedContent:
        """Return the parse result with these counts."""
        return FeedContent(
            networks=tuple(networks or ()),
            urls=tuple(urls or ()),
            events=tuple(events or ()),
            lines=self.lines,
            invalid=self.invalid,
            samples=tuple(self.samples),
            skipped=tuple(self.skipped),
        )

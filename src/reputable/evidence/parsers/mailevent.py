"""What one mail-log line means: the event vocabulary shared by the Postfix and Exim parsers."""

from __future__ import annotations

import enum
import re
from collections import Counter
from typing import Final, NamedTuple


class Event(enum.StrEnum):
    """The kind of one understood mail-log line."""

    CONNECT = "connect"  # smtpd "connect from", postscreen "CONNECT from [ip]:port to ..."
    DISCONNECT = "disconnect"
    QUEUED = "queued"  # a message accepted from a client (Postfix client=, Exim <=)
    MESSAGE = "message"  # the queue manager took a message: sender and recipient count
    UNKNOWN_RECIPIENT = "unknown_recipient"
    RELAY_DENIED = "relay_denied"
    RBL_REJECT = "rbl_reject"
    REJECTED = "rejected"
    AUTH_FAILURE = "auth_failure"
    PREGREET = "pregreet"
    PIPELINING = "pipelining"
    LOST_CONNECTION = "lost_connection"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    DEFERRED = "deferred"
    RDNS_MISMATCH = "rdns_mismatch"
    RATE_LIMITED = "rate_limited"  # smtpd refused a client over an anvil limit
    ANVIL_STATS = "anvil_stats"  # anvil's periodic "statistics: max ..." peak per client
    # a client breaking SMTP: postscreen NON-SMTP COMMAND, BARE NEWLINE, COMMAND ... LIMIT;
    # smtpd "too many errors", "Illegal address syntax" (detail says which)
    PROTOCOL_VIOLATION = "protocol_violation"
    HANGUP = "hangup"  # postscreen: the client hung up during the tests before SMTP
    BLOCKED = "blocked"  # postscreen's own access list (BLACKLISTED/DENYLISTED): never evidence


class MailEvent(NamedTuple):
    """One understood line (a NamedTuple, not a dataclass: millions are made per run, measured)."""

    line: int  # 1-based line number within the scanned stream
    at: float  # epoch seconds, UTC
    event: Event
    ip: str | None  # the SMTP client; for deliveries the relay's address when it has one
    text: str  # the whole line, for samples and --dry-run
    host: str = ""  # client host name as logged ("unknown" when it has no PTR)
    helo: str = ""
    sender: str = ""
    recipient: str = ""
    user: str = ""  # SASL user name (authentication events, authenticated submissions)
    queue_id: str = ""
    code: str = ""  # SMTP reply or enhanced status code (550, 5.1.1), or count for MESSAGE
    detail: str = ""  # stage, reason or program: "AUTH", "Relay access denied", ...

    def to_json(self) -> dict[str, object]:
        """Return the documented --dry-run --jsonl object (empty fields left out)."""
        out: dict[str, object] = {"line": self.line, "ip": self.ip, "event": self.event.value}
        for name in ("host", "helo", "sender", "recipient", "user", "queue_id", "code", "detail"):
            value = getattr(self, name)
            if value:
                out[name] = value
        return out


#: Every event, for callers that want all of them (--dry-run).
ALL_EVENTS: frozenset[Event] = frozenset(Event)
#: Every event in a fixed order: a scanner counts by position in it (``EVENT_INDEX``).
EVENTS: tuple[Event, ...] = tuple(Event)
EVENT_INDEX: dict[Event, int] = {ev: i for i, ev in enumerate(EVENTS)}


def add_counts(counts: Counter[Event] | None, by_index: list[int]) -> None:
    """Add a scanner's per-event line counts (indexed as ``EVENTS``) to *counts*."""
    if counts is not None:
        for i, n in enumerate(by_index):
            if n:
                counts[EVENTS[i]] += n


def domain_of(address: str) -> str:
    """Return the lower-case domain of a mail address, or "" when it has none."""
    at = address.rfind("@")
    return address[at + 1 :].lower() if at >= 0 else ""


#: Where a reject names the DNSBL zone that caused it: Postfix ``blocked using ZONE``, Exim ACL
#: messages ``is listed at ZONE``, ``found in ZONE``, ``in an RBL: ZONE`` ($dnslist_domain).
_RBL_ZONE: Final = re.compile(
    r"(?:blocked using|listed (?:in|at|on|by)|found in|in an? (?:RBL|DNSBL|black ?list)(?: at|:)?)"
    r" \(?([A-Za-z0-9_](?:[A-Za-z0-9_-]*\.)+[A-Za-z0-9-]*[A-Za-z][A-Za-z0-9-]*)\.?",
    re.I,
)


def rbl_zone(text: str) -> str:
    """Return the DNSBL zone a reject line names (lower case), "postscreen" for postscreen's
    ``DNSBL rank`` (which names none), or "" when it names none."""
    found = _RBL_ZONE.search(text)
    if found is not None:
        return found.group(1).lower()
    return "postscreen" if "DNSBL rank " in text else ""

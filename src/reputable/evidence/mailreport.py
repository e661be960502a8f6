"""The outbound report (pure): how receivers see my own sending — per sending identity, accepted
vs bounced vs deferred, and unknown-recipient (5.1.1) bounces per destination domain.

Postfix does not log a delivery's source address; a sending identity is the log's host plus
the delivery service (``mx1 postfix-out/smtp``), which is one address when each transport has
its own ``smtp_bind_address``. Exim's ``I=[address]`` (``log_selector = +outgoing_interface``)
is used when present.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Final

from reputable.evidence.parsers.mailevent import Event, MailEvent, domain_of
from reputable.evidence.parsers.maillog import PARSERS, sniff
from reputable.evidence.parsers.syslog_time import TimeParser

#: Rates above these draw a warning (common receiver guidance: keep hard bounces under ~2%).
BOUNCE_WARN: Final = 0.05
UNKNOWN_WARN: Final = 0.02
_WANTED: Final = frozenset({Event.DELIVERED, Event.BOUNCED, Event.DEFERRED})


@dataclass(slots=True)
class Counts:
    """Final outcomes and deferrals of one sender (or one of its destination domains)."""

    delivered: int = 0
    bounced: int = 0
    unknown: int = 0  # bounces saying the recipient does not exist (5.1.1)
    deferred: int = 0  # deferral events (one recipient may be deferred several times)

    @property
    def total(self) -> int:
        """Recipients with a final outcome."""
        return self.delivered + self.bounced

    @property
    def bounce_rate(self) -> float:
        """Bounced share of final outcomes."""
        return self.bounced / self.total if self.total else 0.0

    @property
    def unknown_rate(self) -> float:
        """Unknown-recipient share of final outcomes."""
        return self.unknown / self.total if self.total else 0.0

    def add(self, ev: MailEvent) -> None:
        """Count one delivery event."""
        if ev.event is Event.DELIVERED:
            self.delivered += 1
        elif ev.event is Event.DEFERRED:
            self.deferred += 1
        else:
            self.bounced += 1
            if ev.code.endswith(".1.1") or "user unknown" in ev.detail.lower():
                self.unknown += 1


@dataclass(frozen=True, slots=True)
class DomainLine:
    """One destination domain of one sender."""

    domain: str
    total: int
    delivered: int
    bounced: int
    unknown: int
    deferred: int
    bounce_rate: float
    unknown_rate: float


@dataclass(frozen=True, slots=True)
class SenderLine:
    """One sending identity: totals, rates, worst destination domains first, warnings."""

    ip: str
    total: int
    delivered: int
    bounced: int
    unknown: int
    deferred: int
    bounce_rate: float
    unknown_rate: float
    domains: tuple[DomainLine, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OutboundReport:
    """Every sending identity, most bounces first."""

    senders: tuple[SenderLine, ...] = field(default_factory=tuple)

    def to_json(self, domains: int = 10) -> dict[str, object]:
        """Return the documented JSON form."""
        return {
            "senders": [
                {
                    "sender": s.ip,
                    "recipients": s.total,
                    "delivered": s.delivered,
                    "bounced": s.bounced,
                    "unknown": s.unknown,
                    "deferred": s.deferred,
                    "bounce_rate": round(s.bounce_rate, 4),
                    "unknown_rate": round(s.unknown_rate, 4),
                    "warnings": list(s.warnings),
                    "domains": [
                        {
                            "domain": d.domain,
                            "recipients": d.total,
                            "bounced": d.bounced,
                            "unknown": d.unknown,
                            "deferred": d.deferred,
                            "bounce_rate": round(d.bounce_rate, 4),
                            "unknown_rate": round(d.unknown_rate, 4),
                        }
                        for d in s.domains[:domains]
                    ],
                }
                for s in self.senders
            ]
        }


def sender_of(ev: MailEvent) -> str:
    """Return the sending identity of a delivery line: Exim's I=[address], else host + service."""
    text = ev.text
    i = text.find(" I=[")
    if i >= 0:
        return text[i + 4 : text.find("]", i)]
    if text[:4].isdigit() and text[10:11] == " ":
        return "exim"  # an Exim main log without I=: one identity per log
    rest = text[16:] if not text[:1].isdigit() else text.partition(" ")[2]
    host, _, tail = rest.partition(" ")
    return f"{host} {tail.split('[', 1)[0].split(':', 1)[0]}"


def _remote(ev: MailEvent, sender: str) -> bool:
    """True for a delivery attempt to another server (not lmtp, local, virtual or pipe)."""
    if ev.ip is not None:
        try:
            return not ip_address(ev.ip).is_loopback
        except ValueError:
            return False
    if sender.endswith("/smtp"):
        return True
    return sender == "exim" and " T=remote" in ev.text


def outbound_report(
    chunks: Iterable[tuple[str, str]], *, times: TimeParser, fmt: str = "auto"
) -> OutboundReport:
    """Return the outbound report of (where, text) chunks of one server's logs."""
    per_sender: dict[str, Counts] = {}
    per_domain: dict[str, dict[str, Counts]] = {}
    kinds: dict[str, str] = {}
    lines: dict[str, int] = {}
    for where, text in chunks:
        kind = kinds.get(where) or (fmt if fmt != "auto" else sniff(text))
        kinds[where] = kind
        first = lines.get(where, 1)
        lines[where] = first + text.count("\n")
        if not kind:
            continue  # no Postfix or Exim line yet: nothing outbound in this piece
        for ev in PARSERS[kind](text, first_line=first, times=times, wanted=_WANTED):
            sender = sender_of(ev)
            if not _remote(ev, sender):
                continue  # local delivery (lmtp, local, virtual): not outbound
            per_sender.setdefault(sender, Counts()).add(ev)
            per_domain.setdefault(sender, {}).setdefault(domain_of(ev.recipient), Counts()).add(ev)
    senders = []
    for sender, c in per_sender.items():
        domains = sorted(
            (
                DomainLine(
                    d,
                    x.total,
                    x.delivered,
                    x.bounced,
                    x.unknown,
                    x.deferred,
                    x.bounce_rate,
                    x.unknown_rate,
                )
                for d, x in per_domain[sender].items()
            ),
            key=lambda d: (-d.bounced, -d.total, d.domain),
        )
        warnings = []
        if c.total and c.bounce_rate > BOUNCE_WARN:
            warnings.append(f"bounce rate {c.bounce_rate:.1%} is above {BOUNCE_WARN:.0%}")
        if c.total and c.unknown_rate > UNKNOWN_WARN:
            warnings.append(
                f"unknown-recipient rate {c.unknown_rate:.1%} is above {UNKNOWN_WARN:.0%}:"
                " clean the list (receivers read this as a dirty list or harvesting)"
            )
        senders.append(
            SenderLine(
                sender,
                c.total,
                c.delivered,
                c.bounced,
                c.unknown,
                c.deferred,
                c.bounce_rate,
                c.unknown_rate,
                tuple(domains),
                tuple(warnings),
            )
        )
    senders.sort(key=lambda s: (-s.bounced, -s.total, s.ip))
    return OutboundReport(tuple(senders))

"""Exim main log (``mainlog``): accepted messages, rejected RCPT, authenticator failures, deliveries — pure.

One literal-led regular expression per kind of line, searched over a whole buffer, hits
merged by position. (Exim messages have no common anchor like Postfix's ``": "``, so the
Postfix parser's single pass does not apply here.)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from operator import itemgetter
from typing import Final

from reputable.evidence.parsers.mailevent import Event, MailEvent
from reputable.evidence.parsers.syslog_time import TimeParser

NAME: Final = "exim"
#: An Exim main-log line starts with its local time, e.g. ``2026-03-02 07:47:48``.
LINE: Final = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")

_HOST: Final = re.compile(r"H=(?:([^\s(\[]\S*) )?(?:\(([^)]*)\) )?\[([0-9A-Fa-f:.]+)\]")
_ACCEPT: Final = re.compile(r" <= (\S+) ")
_REJECT: Final = re.compile(r" rejected (RCPT <([^>]*)>|EHLO or HELO|MAIL <[^>]*>|after DATA|connection)[^:\n]*(?:: ([^\n]*))?")  # fmt: skip
_AUTH: Final = re.compile(r"(\S+) authenticator failed for ([^\n]*?): 535[^\n]*?(?:\(set_id=([^)]*)\))?$", re.M)  # fmt: skip
_SYNC: Final = re.compile(r"SMTP protocol synchronization error \(([^)]*)\)")
_CONN: Final = re.compile(
    r"SMTP connection from (?:([^\s(\[]\S*) )?(?:\(([^)]*)\) )?\[([0-9A-Fa-f:.]+)\](?::\d+)?(?: I=\S+)?( [^\n]*)?"
)
_UNEXPECTED: Final = re.compile(
    r"unexpected disconnection while reading SMTP command from (?:([^\s(\[]\S*) )?(?:\(([^)]*)\) )?\[([0-9A-Fa-f:.]+)\]"
)
_DROPPED: Final = re.compile(
    r"SMTP call from (?:([^\s(\[]\S*) )?(?:\(([^)]*)\) )?\[([0-9A-Fa-f:.]+)\](?::\d+)?(?: I=\S+)? dropped: ([^\n]*)"
)
_DELIVERY: Final = re.compile(r" (=>|->|\*\*|==) (\S+)(?: <([^>]*)>)?([^\n]*)")
_ENHANCED: Final = re.compile(r"\b[245]\.\d{1,3}\.\d{1,3}\b")
_REPLY: Final = re.compile(r"(?<![\d.])[245]\d\d(?![\d.])")
_RBL: Final = re.compile(r"RBL|black ?list|blocked using|is listed (?:in|at)|DNSBL", re.I)
_UNKNOWN: Final = re.compile(
    r"unknown user|user unknown|no such user|unrouteable address|5\.1\.1|mailbox unavailable", re.I
)
_RELAY: Final = re.compile(r"relay not permitted|relaying denied|relay access denied", re.I)

_E = Event
_PASSES: Final = (
    (0, _ACCEPT, frozenset({_E.QUEUED})),
    (1, _REJECT, frozenset({_E.UNKNOWN_RECIPIENT, _E.RELAY_DENIED, _E.RBL_REJECT, _E.REJECTED})),
    (2, _AUTH, frozenset({_E.AUTH_FAILURE})),
    (3, _SYNC, frozenset({_E.PREGREET, _E.PIPELINING})),
    (4, _CONN, frozenset({_E.CONNECT, _E.LOST_CONNECTION, _E.DISCONNECT})),
    (5, _UNEXPECTED, frozenset({_E.LOST_CONNECTION})),
    (6, _DROPPED, frozenset({_E.LOST_CONNECTION})),
    (7, _DELIVERY, frozenset({_E.DELIVERED, _E.BOUNCED, _E.DEFERRED})),
)
_DELIVERY_KIND: Final = {"=>": _E.DELIVERED, "->": _E.DELIVERED, "**": _E.BOUNCED, "==": _E.DEFERRED}  # fmt: skip


def classify_reject(what: str, reason: str) -> Event:
    """Return what an Exim rejection means: unknown user, relay denied, RBL hit or other."""
    if _RBL.search(reason):
        return Event.RBL_REJECT
    if _RELAY.search(reason):
        return Event.RELAY_DENIED
    if what.startswith("RCPT") and _UNKNOWN.search(reason):
        return Event.UNKNOWN_RECIPIENT
    return Event.REJECTED


def _code(reason: str) -> str:
    """Return the enhanced status code (5.1.1) in *reason*, else its SMTP reply code, else ""."""
    found = _ENHANCED.search(reason) or _REPLY.search(reason)
    return found.group(0) if found else ""


def _time(buf: str, ls: int, times: TimeParser) -> float | None:
    end = buf.find(" ", ls + 11)
    text = buf[ls:end]
    if buf[end + 1 : end + 2] in ("+", "-") and buf[end + 2 : end + 6].isdigit():
        text += buf[end + 1 : end + 6]  # log_timezone: "+0200"
    return times(text)


def _message_id(buf: str, ls: int, pos: int) -> str:
    start = buf.rfind(" ", ls, pos - 1) + 1
    word = buf[start:pos]
    return word if word.count("-") == 2 else ""


def scan(
    buf: str,
    *,
    first_line: int,
    times: TimeParser,
    wanted: frozenset[Event],
    number: bool = True,
    counts: Counter[Event] | None = None,
) -> Iterator[MailEvent]:
    """Yield the wanted events of the complete lines in *buf*, in line order (pure).

    Without *number*, every event's ``line`` is *first_line* (saves counting newlines). A line
    gives at most one event, its first; each line that gives one, wanted or not, is added to
    *counts* under its event (the "understood" of the summary).
    """
    hits: list[tuple[int, int, re.Match[str]]] = []
    for code, pattern, produces in _PASSES:
        if counts is not None or produces & wanted:
            hits.extend([(m.start(), code, m) for m in pattern.finditer(buf)])
    hits.sort(key=itemgetter(0))
    lineno = first_line
    last_ls = 0
    at: float | None = None
    done = -1  # start of the last line that gave its event
    for pos, code, m in hits:
        ls = buf.rfind("\n", 0, pos) + 1
        if ls != last_ls or at is None:
            if number:
                lineno += buf.count("\n", last_ls, ls)
            last_ls = ls
            at = _time(buf, ls, times) if LINE.match(buf, ls) else None
        if at is None or ls == done:
            continue
        le = buf.find("\n", pos)
        text = buf[ls : le if le >= 0 else len(buf)]
        event: MailEvent | None = None
        if code == 0:
            h = _HOST.search(text)
            if h is not None:
                auth = text.partition(" A=")[2].split(" ", 1)[0]
                event = MailEvent(
                    lineno, at, Event.QUEUED, h.group(3), text, h.group(1) or "", h.group(2) or "",
                    m.group(1), user=auth.partition(":")[2],
                    queue_id=_message_id(buf, ls, pos),
                )  # fmt: skip
        elif code == 1:
            what, rcpt, reason = m.groups("")
            h = _HOST.search(buf, ls, pos)
            kind = classify_reject(what, reason)
            if h is not None:
                f = text.partition(" F=<")[2].split(">", 1)[0]
                event = MailEvent(
                    lineno, at, kind, h.group(3), text, h.group(1) or "", h.group(2) or "", f, rcpt,
                    code=_code(reason) or "550",
                    detail=what if kind is not Event.REJECTED else f"{what}: {reason}",
                )  # fmt: skip
        elif code == 2:
            authenticator, peer, user = m.groups("")
            h = _HOST.search("H=" + peer)
            if h is not None:
                event = MailEvent(
                    lineno, at, Event.AUTH_FAILURE, h.group(3), text, h.group(1) or "",
                    h.group(2) or "", user=user, code="535", detail=authenticator,
                )  # fmt: skip
        elif code == 3:
            kind = Event.PREGREET if "greeting" in m.group(1) else Event.PIPELINING
            h = _HOST.search(text)
            if h is not None:
                event = MailEvent(lineno, at, kind, h.group(3), text, h.group(1) or "", h.group(2) or "", detail=m.group(1))  # fmt: skip
        elif code == 4:
            host, helo, ip, rest = m.groups("")
            if rest.startswith(" lost"):
                kind = Event.LOST_CONNECTION
            elif "connection count" in rest:
                kind = Event.CONNECT
            else:
                kind = Event.DISCONNECT
            stage = "AUTH" if "AUTH" in rest else rest.strip()
            event = MailEvent(lineno, at, kind, ip, text, host, helo, detail=stage)
        elif code in (5, 6):
            host, helo, ip = m.group(1) or "", m.group(2) or "", m.group(3)
            stage = "AUTH" if "AUTH" in text else "SMTP command"
            event = MailEvent(lineno, at, Event.LOST_CONNECTION, ip, text, host, helo, detail=stage)
        elif code == 7:
            arrow, rcpt, orig, rest = m.groups("")
            kind = _DELIVERY_KIND[arrow]
            msgid = _message_id(buf, ls, pos)
            if msgid:
                h = _HOST.search(rest)
                reason = rest.partition(": ")[2]
                event = MailEvent(
                    lineno, at, kind, h.group(3) if h else None, text, h.group(1) or "" if h else "",
                    recipient=orig or rcpt, queue_id=msgid,
                    code=_code(reason) or ("2.0.0" if kind is Event.DELIVERED else ""),
                    detail=reason if kind is not Event.DELIVERED else "",
                )  # fmt: skip
        if event is not None:
            done = ls
            if counts is not None:
                counts[event.event] += 1
            if event.event in wanted:
                yield event

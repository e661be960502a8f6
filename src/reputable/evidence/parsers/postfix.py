"""Postfix logs (smtpd, postscreen, cleanup, qmgr, smtp/lmtp/local delivery, anvil) — pure.

Speed comes from the shape of the scan, not from a compiled helper: every kind of
interesting line starts with a literal ("reject: ", "client=", "SASL ", ...), so each
gets its own regular expression, searched over a whole buffer of lines with
``finditer`` (the regex engine skips to the literal at C speed and never looks at the
other lines); the hits are merged by position, and only then does Python touch them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from operator import itemgetter
from typing import Final

from reputable.evidence.parsers.mailevent import Event, MailEvent
from reputable.evidence.parsers.syslog_time import TimeParser

NAME: Final = "postfix"
#: Text every Postfix line carries; used to sniff the format and count understood lines.
MARKER: Final = " postfix"

_IP = r"\[([0-9A-Fa-f:.]+)\]"
_CLIENT = r"([^\s\[]*)" + _IP + r"(?::\d+)?"
_REJECT: Final = re.compile(
    r"reject: (RCPT|MAIL|CONNECT|EHLO|HELO|DATA|END-OF-MESSAGE|VRFY|ETRN|BDAT|UNKNOWN) from "
    + _CLIENT
    + r": (?:(\d{3}) )?(?:(\d\.\d{1,3}\.\d{1,3}) )?([^\n]*)"
)
_TAIL: Final = re.compile(
    r"from=<([^>]*)>,? to=<([^>]*)>,?(?: proto=[^\s,]+,?)?(?: helo=<([^>]*)>)?"
)
_CONNECT: Final = re.compile(r"connect from " + _CLIENT + r"([^\n]*)")
_DISCONNECT: Final = re.compile(r"disconnect from " + _CLIENT + r"([^\n]*)")
_CLIENT_LINE: Final = re.compile(
    r"client="
    + _CLIENT
    + r"(?:, [a-z_]+=[^,\s]*)*?(?:, sasl_method=[^,\s]+)?(?:, sasl_username=([^,\s]+))?"
)
_AUTH: Final = re.compile(r"SASL ([\w-]+) authentication failed(?:: ([^\n]*))?")
_LOST: Final = re.compile(r"lost connection after (\w+) from " + _CLIENT)
_PREGREET: Final = re.compile(r"PREGREET (\d+) after \S+ from " + _IP + r":\d+(?:: ([^\n]*))?")
_PIPE_PS: Final = re.compile(r"COMMAND PIPELINING from " + _IP + r":\d+ after (\w+)")
_PIPE_SMTPD: Final = re.compile(r"improper command pipelining after (\w+) from " + _CLIENT)
_DNSBL: Final = re.compile(r"DNSBL rank (\d+) for " + _IP)
_DELIVERY: Final = re.compile(
    r"to=<([^>]*)>,(?: orig_to=<[^>]*>,)? relay=([^,\s]*),(?: conn_use=\d+,)? delay=[^,]*,"
    r" delays=[^,]*, dsn=(\d\.\d{1,3}\.\d{1,3}), status=(\w+)(?: \(([^\n]*)\))?"
)
_QMGR: Final = re.compile(r": from=<([^>]*)>, size=\d+, nrcpt=(\d+)")
_RDNS: Final = re.compile(
    r"warning: hostname (\S+) does not resolve to address ([0-9A-Fa-f:.]*[0-9A-Fa-f])"
)
_RELAY_IP: Final = re.compile(r"\[([0-9A-Fa-f:.]+)\]")
_REJECTED: Final = Event.REJECTED
_STATUS: Final = {"sent": Event.DELIVERED, "bounced": Event.BOUNCED, "deferred": Event.DEFERRED}

# (code, pattern, the events it can produce): a pass runs only if one of its events is wanted.
_E = Event
_PASSES: Final = (
    (
        0,
        _REJECT,
        frozenset({_E.UNKNOWN_RECIPIENT, _E.RELAY_DENIED, _E.RBL_REJECT, _E.REJECTED}),
    ),
    (1, _CONNECT, frozenset({_E.CONNECT})),
    (1, _DISCONNECT, frozenset({_E.DISCONNECT})),
    (2, _CLIENT_LINE, frozenset({_E.QUEUED})),
    (3, _AUTH, frozenset({_E.AUTH_FAILURE})),
    (4, _LOST, frozenset({_E.LOST_CONNECTION})),
    (5, _PREGREET, frozenset({_E.PREGREET})),
    (6, _PIPE_PS, frozenset({_E.PIPELINING})),
    (7, _PIPE_SMTPD, frozenset({_E.PIPELINING})),
    (8, _DNSBL, frozenset({_E.RBL_REJECT})),
    (9, _DELIVERY, frozenset({_E.DELIVERED, _E.BOUNCED, _E.DEFERRED})),
    (10, _QMGR, frozenset({_E.MESSAGE})),
    (11, _RDNS, frozenset({_E.RDNS_MISMATCH})),
)


def classify_reject(command: str, dsn: str, reason: str) -> Event:
    """Return what a Postfix reject means: unknown user, relay denied, RBL hit or other."""
    if "blocked using " in reason:
        return Event.RBL_REJECT
    if "Relay access denied" in reason:
        return Event.RELAY_DENIED
    if command == "RCPT" and (
        dsn.endswith(".1.1") or "User unknown" in reason or "undeliverable address" in reason
    ):
        return Event.UNKNOWN_RECIPIENT
    return Event.REJECTED


def _queue_id(buf: str, ls: int, pos: int) -> str:
    """Return the queue ID that ends just before ``": "`` at *pos*."""
    end = pos - 2 if buf[pos - 2 : pos] == ": " else pos
    start = buf.rfind(" ", ls, end) + 1
    return buf[start:end]


def scan(
    buf: str,
    *,
    first_line: int,
    times: TimeParser,
    wanted: frozenset[Event],
    number: bool = True,
) -> Iterator[MailEvent]:
    """Yield the wanted events of the complete lines in *buf*, in line order (pure).

    Without *number*, every event's ``line`` is *first_line* (saves counting newlines).
    """
    hits: list[tuple[int, int, re.Match[str]]] = []
    for code, pattern, produces in _PASSES:
        if pattern is _DISCONNECT and Event.CONNECT in wanted:
            continue  # the connect pass finds these too
        if produces & wanted:
            hits.extend([(m.start(), code, m) for m in pattern.finditer(buf)])
    hits.sort(key=itemgetter(0))
    lineno = first_line
    last_ls = 0
    at: float | None = None
    last_stamp = ""
    last_at: float | None = None
    header_ok = False
    for pos, code, m in hits:
        ls = buf.rfind("\n", 0, pos) + 1
        if ls != last_ls or at is None:
            if number:
                lineno += buf.count("\n", last_ls, ls)
            last_ls = ls
            mark = buf.find(MARKER, ls, pos)
            header_ok = mark > 0
            if not header_ok:
                continue
            te = buf.find(" ", ls + 10) if buf[ls].isdigit() else ls + 15
            stamp = buf[ls:te]
            if stamp != last_stamp:  # busy logs repeat a second many times: skip the call
                last_stamp = stamp
                last_at = times(stamp)
            at = last_at
        if not header_ok or at is None:
            continue
        le = buf.find("\n", pos)
        text = buf[ls : le if le >= 0 else len(buf)]
        event: MailEvent | None = None
        if code == 0:
            command, host, ip, reply, dsn, rest = m.groups()
            reason = rest.split("; from=<", 1)[0].split(", from=<", 1)[0]
            kind = classify_reject(command, dsn or "", reason)
            if kind in wanted:
                tail = _TAIL.search(rest)
                sender, rcpt, helo = tail.groups("") if tail else ("", "", "")
                event = MailEvent(
                    lineno, at, kind, ip, text, host, helo, sender, rcpt, "",
                    "" if buf[pos - 9 : pos] == "NOQUEUE: " else _queue_id(buf, ls, pos),
                    dsn or reply or "", f"{command}: {reason}" if kind is _REJECTED else command,
                )  # fmt: skip
        elif code == 1:
            host, ip, rest = m.groups()
            at_word = pos + 3 if m.re is _DISCONNECT else pos
            kind = Event.DISCONNECT if buf[at_word - 3 : at_word] == "dis" else Event.CONNECT
            if kind in wanted and buf[at_word - 1] in " s":
                event = MailEvent(lineno, at, kind, ip, text, host, detail=rest.strip())
        elif code == 2:
            host, ip, user = m.groups()
            event = MailEvent(
                lineno, at, Event.QUEUED, ip, text, host, user=user or "",
                queue_id=_queue_id(buf, ls, pos),
            )  # fmt: skip
        elif code == 3:
            j = buf.rfind("]", ls, pos)
            k = buf.rfind("[", ls, j)
            if j > 0 and k > 0 and buf.find("warning: ", ls, k) > 0:
                method, tail_text = m.groups("")
                user = tail_text.partition("sasl_username=")[2].split(",", 1)[0].strip()
                host = buf[buf.rfind(" ", ls, k) + 1 : k]
                service = buf[mark + 1 : buf.find("[", mark, pos)]
                event = MailEvent(
                    lineno, at, Event.AUTH_FAILURE, buf[k + 1 : j], text, host,
                    user=user, code=method, detail=service,
                )  # fmt: skip
        elif code == 4:
            stage, host, ip = m.groups()
            event = MailEvent(lineno, at, Event.LOST_CONNECTION, ip, text, host, detail=stage)
        elif code == 5:
            count, ip, greeting = m.groups("")
            event = MailEvent(lineno, at, Event.PREGREET, ip, text, code=count, detail=greeting)
        elif code == 6:
            ip, stage = m.groups()
            event = MailEvent(lineno, at, Event.PIPELINING, ip, text, detail=stage)
        elif code == 7:
            stage, host, ip = m.groups()
            event = MailEvent(lineno, at, Event.PIPELINING, ip, text, host, detail=stage)
        elif code == 8:
            rank, ip = m.groups()
            if Event.RBL_REJECT in wanted:
                event = MailEvent(lineno, at, Event.RBL_REJECT, ip, text, code=rank, detail="DNSBL")
        elif code == 9:
            rcpt, relay, dsn, status, reply = m.groups("")
            kind_or_none = _STATUS.get(status)
            if kind_or_none is not None and kind_or_none in wanted:
                found = _RELAY_IP.search(relay)
                event = MailEvent(
                    lineno, at, kind_or_none, found.group(1) if found else None, text,
                    relay.split("[", 1)[0], recipient=rcpt,
                    queue_id=_queue_id(buf, ls, pos), code=dsn, detail=reply,
                )  # fmt: skip
        elif code == 10:
            sender, nrcpt = m.groups()
            event = MailEvent(
                lineno, at, Event.MESSAGE, None, text, sender=sender,
                queue_id=_queue_id(buf, ls, pos + 2), code=nrcpt,
            )  # fmt: skip
        elif code == 11:
            name, ip = m.groups()
            event = MailEvent(lineno, at, Event.RDNS_MISMATCH, ip, text, name)
        if event is not None:
            yield event

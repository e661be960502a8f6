"""Exim main and reject logs (``mainlog``, ``rejectlog``): one pass over a buffer — pure.

Every Exim log line starts with its time (``2026-03-02 07:47:48``, optionally ``.123``
milliseconds, a ``+0200`` zone with ``log_timezone``, a ``[PID]`` with ``log_selector = +pid``),
then, for lines about a message, its ID (``1rXyZa-000123-AB``; 4.97+ ``1rXyZa-00000000123-ABCD``).
What follows starts with a few literals (``<=``, ``=>``, ``H=``, ``SMTP ``, ``no host name``,
...): like the Postfix parser, one regular expression (a newline, the time, the optional
parts, then an alternation of those literals) is searched over the whole buffer with
``finditer``, so the regex engine skips every other line at C speed and hands Python only
the lines that mean something (measured: bench/exim_scan.py, docs/benchmarks.md).

Fields come from their own tokens, as Exim writes them (log.c, smtp_in.c, acl.c,
deliver.c): the client is the ``H=`` token (``H=name (helo) [ip]:port``, ``H=(helo) [ip]``,
``H=[ip]``), the sender ``F=<...>``, the recipient the ``<...>`` after ``rejected RCPT``, an
SMTP reply code only where Exim puts one (``C="250 ..."``, ``SMTP error ...: 550 5.1.1 ...``),
an enhanced status code only as a token of its own — never read out of an address
(``1.2.3.4``) or a port (``port 587``).

Exim logging to syslog (``log_file_path = syslog``) writes the same lines behind a syslog
envelope, ``Nov  2 15:40:14 host exim[123]: 2026-11-02 15:40:14 1rXyZa-... <= ...``: Exim's
own time stays unless ``syslog_timestamp = false``, and a line longer than 870 bytes is sent
in parts prefixed ``[1\\3]``, ``[2\\3]``, ... (log.c, write_syslog). A buffer with such
lines is first rewritten line for line: the envelope (any that
:mod:`~reputable.evidence.parsers.envelope` knows) is dropped from every ``exim`` line, and
where Exim's time is missing the syslog time takes its place, in UTC with its ``+0000``
zone; the rest of the scan is the same (a buffer without an ``exim`` tag is left alone,
so Exim's own files cost two searches). A continuation part (``[2\\3] ...``) carries no
event and stays as it is.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import lru_cache
from typing import Final

from reputable.evidence.parsers.envelope import TIMESTAMP, normalize
from reputable.evidence.parsers.mailevent import EVENT_INDEX, EVENTS, Event, MailEvent, add_counts
from reputable.evidence.parsers.syslog_time import TimeParser

NAME: Final = "exim"
#: An Exim log line starts with its local time, e.g. ``2026-03-02 07:47:48``.
LINE: Final = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
#: The program tag of an Exim line in a syslog file (``exim[123]:``, ``exim4:``), or in an
#: RFC 5424 line (``exim 123 -``) before :func:`~reputable.evidence.parsers.envelope.normalize`.
TAG: Final = re.compile(r" exim[\w-]*(?:\[\d+\]: |: | (?:\d+|-) )")
_TIME: Final = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
#: The canonical syslog envelope of an Exim line, then the first part's ``[1\N]`` (if split).
_SYSLOG: Final = re.compile(
    r"^(" + TIMESTAMP + r") \S+ exim[\w-]*(?:\[\d+\])?: (?:\[1[\\/]\d+\] )?"
    r"(?!\[\d+[\\/]\d+\] )(" + _TIME + r")?",
    re.MULTILINE,
)

_E = Event
_IP: Final = r"[0-9A-Fa-f:.]*[0-9A-Fa-f]"
#: ``H=name (helo) [ip]:port`` as a token (at the start or after a space).
_HOST: Final = re.compile(
    r"(?:^|(?<= ))H=(?:([^\s(\[]\S*) )?(?:\(([^)\n]*)\) )?\[(" + _IP + r")\](?::\d+)?"
)
_SENDER: Final = re.compile(r"(?:^|(?<= ))F=<([^>\n]*)>")
_REJECT: Final = re.compile(
    r"(?:^|(?<= ))(temporarily )?rejected (RCPT <([^>\n]*)>|MAIL <[^>\n]*>|EHLO or HELO \S*?"
    r"|(?:EHLO|HELO) \S*?|after DATA|connection in \"\w+\" ACL|by local_scan\(\)|VRFY|EXPN|ETRN"
    r"|AUTH|\w+)(?:: ([^\n]*))?$"
)
_ENHANCED: Final = re.compile(r"(?<![\w.])([245]\.\d{1,3}\.\d{1,3})(?![\w.])")
#: Where Exim writes a remote server's reply: after ``SMTP error ... :`` or inside ``C="..."``.
_REPLY: Final = re.compile(r'(?:: |C=")([245]\d\d)[ -](?:([245]\.\d{1,3}\.\d{1,3}) )?')
#: sa-exim: "SA: Action: permanently rejected message: hits=... From <s> (host=name [ip]) for r".
_SA_HOST: Final = re.compile(r"\(host=(\S*) \[(" + _IP + r")\]\)")
_SA_FROM: Final = re.compile(r"From <([^>\n]*)>")
_RBL: Final = re.compile(
    r"blocked using|is listed (?:in|at|on|by)|found in \S+\.|in an? (?:RBL|DNSBL|black ?list)"
    r"|\bRBL\b|DNSBL",
    re.I,
)
_UNKNOWN: Final = re.compile(
    r"unknown user|user unknown|no such user|unrouteable address|mailbox unavailable"
    r"|(?<![\w.])5\.1\.1(?![\w.])",
    re.I,
)
#: The server's reply in an authenticator failure: ``...: 535 Incorrect authentication data``.
_AUTH_REPLY: Final = re.compile(r": (5\d\d|4\d\d) ")
_RELAY: Final = re.compile(r"relay not permitted|relaying denied|relay access denied", re.I)

# What can follow the time, PID and message ID; each branch is one outer group and runs to
# the line's end. The first character of each is a literal, so the engine rejects a branch
# on it (as in the Postfix scan).
_HOST_TOKEN: Final = r"H=(?:([^\s(\[]\S*) )?(?:\(([^)\n]*)\) )?\[(" + _IP + r")\](?::\d+)?"
_BRANCHES: Final = (
    # the commonest lines carry their fields in the pattern: no Python search for them
    # "<= sender [R=ref] H=... [U=...] [I=...] P=... [A=auth:user] ..." (deliver.c field order)
    ("queued", r"<= (\S+) (?:R=\S+ )?" + _HOST_TOKEN + r"[^\n]*"),
    ("delivery", r"(=>|->|\*\*|==) (\S+)(?: <([^>\n]*)>)?([^\n]*)"),
    ("connect", r"SMTP connection from " + _HOST_TOKEN[2:] + r"(?: I=\[[^\]\n]*\](?::\d+)?)?"
     r" \(TCP/IP connection count = (\d+)\)[^\n]*"),
    # "H=... [U=ident] [I=iface] [F=<sender>] rejected ..." (acl.c): the sender in the pattern
    ("host", r"(?:U=\S+ )?" + _HOST_TOKEN + r"(?: U=\S+)?(?: I=\[[^\]\n]*\](?::\d+)?)?"
     r"(?: F=<([^>\n]*)>)?([^\n]*)"),
    ("smtp", r"SMTP ([^\n]*)"),
    ("unexpected", r"unexpected disconnection while reading SMTP command from ([^\n]*)"),
    ("no_host", r"no (?:host name found for IP address (" + _IP + r")|IP address found for host"
     r" (\S+) \(during SMTP connection from \[(" + _IP + r")\]\))[^\n]*"),
    ("refused", r"Connection from \[(" + _IP + r")\](?::\d+)? refused: ([^\n]*)"),
    ("sa", r"SA: Action: ([^\n]*)"),
    # possessive: the name cannot end before a space, so giving back characters never helps
    ("authenticator", r"([\w-]++) authenticator failed for ([^\n]*)"),
)  # fmt: skip
#: The message ID is possessive: a line none of whose branches follows its ID (``Completed``,
#: a fifth of a busy log) fails at once instead of trying every branch again at the ID (half
#: the cost of such a line, bench/exim_scan.py). No branch can start at an ID but the
#: authenticator's (a driver name of that shape): that one ID-like word is not taken as an ID.
_SCAN: Final = re.compile(
    r"\n(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{3})?)(?: ([+-]\d{4}))?(?: \[\d+(?::\d+)?\])?"
    r"(?: ([0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4})(?! authenticator failed for ))?+ (?:"
    + "|".join(f"({p})" for _, p in _BRANCHES)
    + ")"
)


def _branch_groups() -> tuple[dict[int, str], tuple[int, ...]]:
    """Return each branch's name by its outer group, and for every group number its outer group."""
    names: dict[int, str] = {}
    outer = [0, 0, 0, 0]  # the whole match, time, zone, message ID
    group = 3
    for name, pattern in _BRANCHES:
        group += 1
        names[group] = name
        inner = re.compile(pattern).groups
        outer += [group] * (inner + 1)
        group += inner
    return names, tuple(outer)


_GROUP_OF, _OUTER = _branch_groups()
#: By group number (``Match.lastindex``, always a branch's outer group), the branch's name.
_BRANCH_OF: Final = tuple(_GROUP_OF.get(g, "") for g in range(len(_OUTER)))
_B_QUEUED: Final = "queued"
_B_DELIVERY: Final = "delivery"
_B_CONNECT: Final = "connect"
_DELIVERY_KIND: Final = {"=>": _E.DELIVERED, "->": _E.DELIVERED, "**": _E.BOUNCED, "==": _E.DEFERRED, "*>": None}  # fmt: skip
#: The delivery events, and by arrow the position of its event in that order (a list index and
#: a plain int per line: cheaper than hashing an event into a Counter).
_DELIVERY_ORDER: Final = (_E.DELIVERED, _E.BOUNCED, _E.DEFERRED)
_ARROW: Final = {
    arrow: _DELIVERY_ORDER.index(kind) for arrow, kind in _DELIVERY_KIND.items() if kind
}
_DELIVERY_INDEX: Final = tuple(EVENT_INDEX[kind] for kind in _DELIVERY_ORDER)
_NEW = tuple.__new__  # MailEvent(...) without the keyword-argument wrapper (measured)
_CONNECTION: Final = re.compile(
    r"(connection from|call from) (?:([^\s(\[]\S*) )?(?:\(([^)\n]*)\) )?\[(" + _IP + r")\](?::\d+)?"
    r"(?: I=\[[^\]]*\](?::\d+)?)?(.*)$"
)


def classify_reject(what: str, reason: str) -> Event:
    """Return what an Exim rejection means: unknown user, relay denied, RBL hit or other."""
    if _RBL.search(reason):
        return Event.RBL_REJECT
    if _RELAY.search(reason):
        return Event.RELAY_DENIED
    if what.startswith("RCPT") and _UNKNOWN.search(reason):
        return Event.UNKNOWN_RECIPIENT
    return Event.REJECTED


@lru_cache(maxsize=4096)  # the reasons of a log repeat ("Unknown user", "relay not permitted")
def _rejection(rcpt: bool, temporary: bool, reason: str) -> tuple[Event, str]:
    """Return the event and the reply code of a rejection (of a RCPT when *rcpt*) for *reason*."""
    kind = classify_reject("RCPT" if rcpt else "", reason)
    return kind, _enhanced(reason) or ("451" if temporary else "550")


def _enhanced(text: str) -> str:
    found = _ENHANCED.search(text)
    return found.group(1) if found else ""


def _host(text: str) -> tuple[str, str, str] | None:
    """Return (host name, HELO, IP) of the ``H=`` token of *text*, or None."""
    start = text.find("H=")  # the token's literal: the search starts there, at C speed
    found = _HOST.search(text, start) if start >= 0 else None
    return (found.group(1) or "", found.group(2) or "", found.group(3)) if found else None


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

    Without *number*, every event's ``line`` is *first_line* (saves counting newlines). Each
    line that gives an event, wanted or not, is added to *counts* under its event.

    The three commonest lines (``<=``, ``=>`` and ``SMTP connection from``, three in four of a
    busy server's lines) are made into events here, from the pattern's groups and with
    ``tuple.__new__`` (no keyword wrapper); the rest go through :func:`_event`. Counts are kept
    by ``EVENT_INDEX`` in a list and added to *counts* once (measured: bench/exim_scan.py).
    """
    if not wanted and counts is None:
        return
    if "exim" in buf and TAG.search(buf) is not None:  # two searches at C speed
        buf = from_syslog(buf, times)  # Exim lines behind syslog envelopes
    text = "\n" + buf  # every line, the first too, starts after a newline
    lineno = first_line - 1
    last = 0
    stamp = ""
    stamp_zone: str | None = None
    at: float | None = None
    queued_wanted = _E.QUEUED in wanted
    connect_wanted = _E.CONNECT in wanted
    delivery_wanted = tuple(kind in wanted for kind in _DELIVERY_ORDER)
    n = [0] * len(EVENTS)  # lines with an event, by EVENT_INDEX
    new, event_cls = _NEW, MailEvent
    branch_of, arrows, host_of_delivery = _BRANCH_OF, _ARROW, _HOST.search
    reply_of = _REPLY.search
    queued_ev, connect_ev, delivered_ev = _E.QUEUED, _E.CONNECT, _E.DELIVERED
    i_queued, i_connect = EVENT_INDEX[queued_ev], EVENT_INDEX[connect_ev]
    try:
        for m in _SCAN.finditer(text):
            g: int = m.lastindex  # type: ignore[assignment]  # every branch is a group
            if number:
                ls = m.start() + 1
                lineno += text.count("\n", last, ls)
                last = ls
            raw, zone, msgid = m.group(1, 2, 3)
            if raw != stamp or zone != stamp_zone:
                stamp, stamp_zone = raw, zone
                at = times(raw if zone is None else f"{raw} {zone}")
            if at is None:
                continue
            branch = branch_of[g]
            line_no = lineno if number else first_line
            # The commonest lines: counted without an event when not wanted (as the Postfix scan).
            if branch == _B_QUEUED:
                n[i_queued] += 1
                if not queued_wanted:
                    continue
                sender, host, helo, ip = m.group(g + 1, g + 2, g + 3, g + 4)
                line = m.group(0)[1:]
                a = line.find(" A=")  # an authenticated submission: A=authenticator:user
                user = line[a + 3 :].split(" ", 1)[0].partition(":")[2] if a >= 0 else ""
                yield new(event_cls, (
                    line_no, at, queued_ev, ip, line, host or "", helo or "", sender, "", user,
                    msgid or "", "", "",
                ))  # fmt: skip
                continue
            if branch == _B_DELIVERY:
                k = arrows.get(m.group(g + 1), -1)
                if k < 0 or not msgid:
                    continue
                n[_DELIVERY_INDEX[k]] += 1
                if not delivery_wanted[k]:
                    continue
                kind = _DELIVERY_ORDER[k]
                rcpt, orig, tail = m.group(g + 2, g + 3, g + 4)
                h = host_of_delivery(tail) if "H=" in tail else None
                reply = reply_of(tail) if ": " in tail or 'C="' in tail else None
                code = (reply.group(2) or reply.group(1)) if reply is not None else ""
                if kind is delivered_ev:
                    reason = ""
                    code = code or "2.0.0"
                else:
                    reason = tail.partition(": ")[2]
                    code = code or (_enhanced(reason) if reason else "")
                yield new(event_cls, (
                    line_no, at, kind, h.group(3) if h else None, m.group(0)[1:],
                    (h.group(1) or "") if h else "", "", "", orig or rcpt, "", msgid, code, reason,
                ))  # fmt: skip
                continue
            if branch == _B_CONNECT:
                n[i_connect] += 1
                if not connect_wanted:
                    continue
                host, helo, ip, count = m.group(g + 1, g + 2, g + 3, g + 4)
                yield new(event_cls, (
                    line_no, at, connect_ev, ip, m.group(0)[1:], host or "", helo or "", "", "",
                    "", "", "", f"(TCP/IP connection count = {count})",
                ))  # fmt: skip
                continue
            event = _event(branch, m, g, m.group(0)[1:], line_no, at)
            if event is None:
                continue
            n[EVENT_INDEX[event.event]] += 1
            if event.event in wanted:
                yield event
    finally:
        add_counts(counts, n)


def from_syslog(buf: str, times: TimeParser) -> str:
    """Return *buf* with the syslog envelope of each Exim line dropped, line for line (pure).

    Exim's own time is kept; a line without it (``syslog_timestamp = false``) gets the
    syslog time, read by *times* and written in UTC with its zone. Other lines are left as
    they are (no Exim time at their start: the scan passes over them).
    """
    buf = normalize(buf)
    stamps: dict[str, str] = {}

    def rewrite(m: re.Match[str]) -> str:
        if m.group(2) is not None:
            return m.group(2)
        stamp = m.group(1)
        native = stamps.get(stamp)
        if native is None:
            at = times(stamp)
            if at is None:
                return m.group(0)
            native = stamps[stamp] = f"{datetime.fromtimestamp(at, UTC):%Y-%m-%d %H:%M:%S} +0000 "
        return native

    return _SYSLOG.sub(rewrite, buf)


def _event(
    branch: str, m: re.Match[str], g: int, line: str, lineno: int, at: float
) -> MailEvent | None:
    """Return the event of one matched line (None when it is not one after all)."""
    msgid = m.group(3) or ""
    rest = m.group(g + 1)
    if branch == "host":
        host, helo, ip, sender, tail = m.group(g + 1, g + 2, g + 3, g + 4, g + 5)
        return _host_line(host or "", helo or "", ip, sender or "", tail, line, lineno, at, msgid)
    if branch == "smtp":
        return _smtp_line(rest, line, lineno, at)
    if branch == "unexpected":
        h = _host("H=" + rest)
        if h is None:
            return None
        stage = "AUTH" if "AUTH" in rest else "SMTP command"
        return MailEvent(lineno, at, _E.LOST_CONNECTION, h[2], line, h[0], h[1], detail=stage)
    if branch == "no_host":
        ip, name, ip2 = m.group(g + 1, g + 2, g + 3)
        if ip:
            return MailEvent(lineno, at, _E.RDNS_MISMATCH, ip, line, detail="no host name found")
        return MailEvent(
            lineno, at, _E.RDNS_MISMATCH, ip2, line, name, detail="no IP address found for host"
        )
    if branch == "refused":
        ip, why = m.group(g + 1, g + 2)
        return MailEvent(lineno, at, _E.RATE_LIMITED, ip, line, detail=why)
    if branch == "sa":
        client = _SA_HOST.search(rest)
        if client is None or "reject" not in rest:
            return None
        sender = _SA_FROM.search(rest)
        return MailEvent(
            lineno, at, _E.REJECTED, client.group(2), line, client.group(1),
            sender=sender.group(1) if sender else "", queue_id=msgid, code="550",
            detail=f"SpamAssassin: {rest.split(' (scanned', 1)[0]}",
        )  # fmt: skip
    # authenticator failed for H=(helo) [ip]:port ... : 535 ... (set_id=user)
    name, peer = m.group(g + 1, g + 2)
    h = _host(peer if peer.startswith("H=") else "H=" + peer)
    if h is None:
        return None
    user = peer.rpartition("(set_id=")[2].rstrip(")") if "(set_id=" in peer else ""
    reply = _AUTH_REPLY.search(peer)
    return _NEW(MailEvent, (
        lineno, at, _E.AUTH_FAILURE, h[2], line, h[0], h[1], "", "", user, "",
        reply.group(1) if reply else "535", name,
    ))  # fmt: skip


def _host_line(
    host: str, helo: str, ip: str, f: str, body: str, line: str, lineno: int, at: float,
    msgid: str,
) -> MailEvent | None:  # fmt: skip
    """Return the event of a line that starts with the client (``H=...``): rejects and warnings.

    *f* is the ``F=<sender>`` that followed the client (if any), *body* the rest of the line.
    """
    if not f:
        sender = _SENDER.search(body)
        f = sender.group(1) if sender else ""
    rejected = _REJECT.search(body)
    if rejected is not None:
        temporary, what, rcpt, reason = rejected.group(1, 2, 3, 4)
        reason = reason or ""
        kind, code = _rejection(what.startswith("RCPT"), temporary is not None, reason)
        detail = what.split(" <", 1)[0] if kind is not _E.REJECTED else f"{what}: {reason}"
        return _NEW(MailEvent, (
            lineno, at, kind, ip, line, host, helo, f, rcpt or "", "", msgid, code, detail,
        ))  # fmt: skip
    if " sender verify fail for <" in body:
        reason = body.partition(">: ")[2]
        return MailEvent(
            lineno, at, _E.REJECTED, ip, line, host, helo, f, code="550",
            detail=f"sender verify fail: {reason}",
        )  # fmt: skip
    if " AUTH command used when not advertised" in body:
        return MailEvent(
            lineno, at, _E.PROTOCOL_VIOLATION, ip, line, host, helo,
            detail="AUTH command used when not advertised",
        )  # fmt: skip
    return None


def _smtp_line(rest: str, line: str, lineno: int, at: float) -> MailEvent | None:
    """Return the event of an ``SMTP ...`` line: connections, sync and protocol errors."""
    if rest.startswith("protocol synchronization error ("):
        why = rest[len("protocol synchronization error (") :].split(")", 1)[0]
        kind = _E.PREGREET if "greeting" in why else _E.PIPELINING
        h = _host(rest)
        if h is None:
            return None
        return _NEW(MailEvent, (lineno, at, kind, h[2], line, h[0], h[1], "", "", "", "", "", why))
    if rest.startswith("protocol error in "):
        h = _host(rest)
        if h is None:
            return None
        tail = rest[rest.find("]", rest.find("H=")) + 1 :]
        why = re.sub(r"^(?::\d+)?(?: I=\[[^\]]*\](?::\d+)?)? ?", "", tail)
        return MailEvent(lineno, at, _E.PROTOCOL_VIOLATION, h[2], line, h[0], h[1], detail=why)
    if rest.startswith(("command timeout on connection from ", "data timeout on connection from ")):
        h = _host("H=" + rest.split(" from ", 1)[1])
        if h is None:
            return None
        return MailEvent(lineno, at, _E.LOST_CONNECTION, h[2], line, h[0], h[1], detail="timeout")
    found = _CONNECTION.match(rest)
    if found is None:
        return None
    kind_text, host, helo, ip, tail = found.groups("")
    if kind_text == "call from":
        if " dropped: " not in tail:
            return None
        stage = "AUTH" if "AUTH" in tail else "SMTP command"
        return MailEvent(lineno, at, _E.LOST_CONNECTION, ip, line, host, helo, detail=stage)
    if tail.startswith(" lost"):
        stage = "AUTH" if "AUTH" in tail else tail.strip()
        return _NEW(MailEvent, (
            lineno, at, _E.LOST_CONNECTION, ip, line, host, helo, "", "", "", "", "", stage,
        ))  # fmt: skip
    if "connection count" in tail:
        return MailEvent(lineno, at, _E.CONNECT, ip, line, host, helo, detail=tail.strip())
    return MailEvent(lineno, at, _E.DISCONNECT, ip, line, host, helo, detail=tail.strip())

"""Postfix logs (smtpd, postscreen, cleanup, qmgr, smtp/lmtp/local delivery, anvil) — pure.

Speed comes from the shape of the scan, not from a compiled helper. Every interesting
Postfix message starts with a literal ("reject: ", "client=", "SASL ", ...) right after a
``": "``: the one that ends the program tag (``postfix/smtpd[123]: connect from``), a queue
ID (``: 4XyZ: client=``, ``: NOQUEUE: reject:``) or, for SASL failures, the client
(``warning: host[ip]: SASL``). So for each wanted set of events one regular expression,
``": "`` then an alternation of those literals, is searched over a whole buffer of lines
with ``finditer``: the regex engine skips from one ``": "`` to the next at C speed and
rejects the other messages on their first character, and the hits come out in line order.
Only then does Python touch them (``Match.lastindex`` tells which branch matched: each
branch is one outer group). Measured on the benchmark log: one such pass takes a third of
the time of one pass per literal merged by position (docs/benchmarks.md, Mail logs).

With ``counts`` every branch is in the one pattern whatever the caller wants, so a line means
the same event in every mode: the events not wanted are only counted (lines with an event, by
event — the "understood" of the summary, equal to what ``--dry-run --jsonl`` prints).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from functools import lru_cache
from typing import Final

from reputable.evidence.parsers.envelope import normalize
from reputable.evidence.parsers.mailevent import (
    EVENT_INDEX,
    EVENTS,
    Event,
    MailEvent,
    add_counts,
)
from reputable.evidence.parsers.syslog_time import TimeParser

NAME: Final = "postfix"
#: Text every Postfix line carries; used to sniff the format and count understood lines.
MARKER: Final = " postfix"

_IP = r"\[([0-9A-Fa-f:.]+)\]"
_CLIENT = r"([^\s\[]*)" + _IP + r"(?::\d+)?"
_TAIL: Final = re.compile(
    r"from=<([^>]*)>,? to=<([^>]*)>,?(?: proto=[^\s,]+,?)?(?: helo=<([^>]*)>)?"
)
_RELAY_IP: Final = re.compile(r"\[([0-9A-Fa-f:.]+)\]")
_ADDRESS: Final = re.compile(r"[0-9A-Fa-f:.]*[0-9A-Fa-f]")
_ENHANCED: Final = re.compile(r"\b[245]\.\d{1,3}\.\d{1,3}\b")
_REJECTED: Final = Event.REJECTED
_STATUS: Final = {"sent": Event.DELIVERED, "bounced": Event.BOUNCED, "deferred": Event.DEFERRED}
_REJECT: Final = (
    r"reject: (RCPT|MAIL|CONNECT|EHLO|HELO|DATA|END-OF-MESSAGE|VRFY|ETRN|BDAT|UNKNOWN) from "
    + _CLIENT
    + r": (?:(\d{3}) )?(?:(\d\.\d{1,3}\.\d{1,3}) )?([^\n]*)"
)
_REJECTS: Final = frozenset(
    {Event.UNKNOWN_RECIPIENT, Event.RELAY_DENIED, Event.RBL_REJECT, Event.REJECTED}
)
_NEW = tuple.__new__  # MailEvent(...) without the keyword-argument wrapper (measured)

# What can follow ": ": (code, the events it can produce, text before the literal, the branch).
# In the pattern each branch is its literal's first character, then one outer group with the
# rest: the regex engine then rejects a branch on that character without entering the group
# (measured 2.5x faster than branches that start with their group). The literal starts one
# character before the group, at the position the scan below cuts queue IDs and program
# names from. Each branch runs to the line's end: one event per line.
_E = Event
_BRANCHES: Final = (
    (2, frozenset({_E.QUEUED}), "",
     r"client=" + _CLIENT
     + r"(?:, [a-z_]+=[^,\s]*)*?(?:, sasl_method=[^,\s]+)?(?:, sasl_username=([^,\s]+))?"),
    (12, frozenset({_E.DISCONNECT}), "", r"disconnect from " + _CLIENT + r"([^\n]*)"),
    (1, frozenset({_E.CONNECT}), "", r"connect from " + _CLIENT + r"([^\n]*)"),
    (0, _REJECTS, "", _REJECT),
    (0, _REJECTS, "milter-", _REJECT),
    (10, frozenset({_E.MESSAGE}), "", r"from=<([^>]*)>, size=\d+, nrcpt=(\d+)"),
    # delays= and dsn= since Postfix 2.3; older servers log neither
    (9, frozenset({_E.DELIVERED, _E.BOUNCED, _E.DEFERRED}), "",
     r"to=<([^>]*)>,(?: orig_to=<[^>]*>,)? relay=([^,\s]*),(?: conn_use=\d+,)? delay=[^,]*,"
     r"(?: delays=[^,]*,)?(?: dsn=(\d\.\d{1,3}\.\d{1,3}),)? status=(\w+)(?: \(([^\n]*)\))?"),
    (3, frozenset({_E.AUTH_FAILURE}), "", r"SASL ([\w-]+) authentication failed(?:: ([^\n]*))?"),
    (4, frozenset({_E.LOST_CONNECTION}), "", r"lost connection after (\w+) from " + _CLIENT),
    (5, frozenset({_E.PREGREET}), "", r"PREGREET (\d+) after \S+ from " + _IP + r":\d+(?:: ([^\n]*))?"),
    (6, frozenset({_E.PIPELINING}), "", r"COMMAND PIPELINING from " + _IP + r":\d+ after (\w+)"),
    (7, frozenset({_E.PIPELINING}), "", r"improper command pipelining after (\w+) from " + _CLIENT),
    (8, frozenset({_E.RBL_REJECT}), "", r"DNSBL rank (\d+) for " + _IP),
    (11, frozenset({_E.RDNS_MISMATCH}), "",
     r"warning: hostname (\S+) does not resolve to address ([0-9A-Fa-f:.]*[0-9A-Fa-f])"
     r"(?:: ([^\n]*))?"),
    # smtpd_peer.c: "warning: IP: hostname NAME verification failed: why",
    # "warning: IP: address not listed for hostname NAME" (the IP is before the anchor)
    (17, frozenset({_E.RDNS_MISMATCH}), "", r"hostname (\S+) verification failed(?:: ([^\n]*))?"),
    (18, frozenset({_E.RDNS_MISMATCH}), "", r"address not listed for hostname (\S+)"),
    # postscreen (postscreen_early.c, postscreen_smtpd.c, postscreen_dnsbl.c)
    (19, frozenset({_E.HANGUP}), "",
     r"HANGUP after \S+ from " + _IP + r":\d+ in (tests (?:before|after) SMTP handshake)"),
    # each branch led by its own literal (a branch led by a group costs every ": " of a log)
    (20, frozenset({_E.PROTOCOL_VIOLATION}), "",
     r"COMMAND ((?:TIME|COUNT|LENGTH) LIMIT) from " + _IP + r":\d+ after (\w+)(?:: ([^\n]*))?"),
    (24, frozenset({_E.PROTOCOL_VIOLATION}), "",
     r"NON-SMTP COMMAND from " + _IP + r":\d+ after (\w+)(?:: ([^\n]*))?"),
    (25, frozenset({_E.PROTOCOL_VIOLATION}), "",
     r"BARE NEWLINE from " + _IP + r":\d+ after (\w+)(?:: ([^\n]*))?"),
    (21, frozenset({_E.BLOCKED}), "", r"BLACKLISTED " + _IP + r":\d+"),
    (26, frozenset({_E.BLOCKED}), "", r"DENYLISTED " + _IP + r":\d+"),
    # smtpd.c: "too many errors after CMD from host[ip]"; "warning: Illegal address syntax
    # from host[ip] in CMD command: <addr>"
    (22, frozenset({_E.PROTOCOL_VIOLATION}), "", r"too many errors after (\w+) from " + _CLIENT),
    (23, frozenset({_E.PROTOCOL_VIOLATION}), "",
     r"warning: Illegal address syntax from " + _CLIENT + r" in (\w+) command"),
    (13, frozenset({_E.CONNECT}), "",
     r"CONNECT from \[([0-9A-Fa-f:.]+)\]:\d+ to \[([0-9A-Fa-f:.]+)\]:(\d+)"),
    (14, frozenset({_E.ANVIL_STATS}), "",
     r"statistics: max (connection rate|connection count|message rate|recipient rate"
     r"|newtls rate|auth rate|cache size) (\S+)(?: for \(([^:)\s]+):([0-9A-Fa-f:.]+)\))?"),
    (15, frozenset({_E.RATE_LIMITED}), "",
     r"warning: ([A-Za-z ]+?) limit exceeded: (\d+) from " + _CLIENT + r" for service ([^\s,]+)"),
    # cleanup header_checks/body_checks REJECT; the client is "local" for local submissions
    (16, frozenset({_E.REJECTED}), "",
     r"reject: (header|body|mime-header|nested-header) ([^\n]*) from ([^\s\[;]*)"
     r"(?:\[([0-9A-Fa-f:.]+)\](?::\d+)?)?; from=<([^>]*)>(?: to=<([^>]*)>)?(?: proto=[^\s:]+)?"
     r"(?: helo=<([^>]*)>)?(?:: (?:(\d{3}) )?(?:(\d\.\d{1,3}\.\d{1,3}) )?([^\n]*))?"),
)  # fmt: skip
#: By branch code, the EVENT_INDEX its lines count under when no condition applies, else -1.
#: (Plain ints: hashing an Enum member runs Python code, too slow for every line.)
_COUNT_AS: Final = tuple(
    next(
        (
            EVENT_INDEX[next(iter(produces))]
            for c, produces, _, _ in _BRANCHES
            if c == code and len(produces) == 1 and c != 3
        ),
        -1,
    )
    for code in range(27)
)
_STATUS_INDEX: Final = {status: EVENT_INDEX[kind] for status, kind in _STATUS.items()}
_I_AUTH: Final = EVENT_INDEX[Event.AUTH_FAILURE]


#: Every event some branch gives.
_PRODUCED: Final = frozenset(e for _, produces, _, _ in _BRANCHES for e in produces)
#: Events a batch ingest does not parse but counts for its summary by the text that starts
#: them. Parsing them costs the full pattern, which halves a batch ingest's speed (2.1M-line
#: bench: ~420,000 against ~820,000 lines/s, docs/benchmarks.md); ``str.count`` costs
#: ~0.09 s per text there. A malformed line that carries the text counts as understood, where
#: ``--dry-run`` (which parses every event) gives it none.
_LITERALS: Final[dict[Event, tuple[str, ...]]] = {
    _E.CONNECT: (": connect from ", ": CONNECT from ["),
    _E.MESSAGE: (", nrcpt=",),  # qmgr: "from=<...>, size=N, nrcpt=N (queue active)"
    _E.DELIVERED: (", status=sent",),
    _E.BOUNCED: (", status=bounced",),
    _E.DEFERRED: (", status=deferred",),
    _E.ANVIL_STATS: (": statistics: max ",),
    _E.RATE_LIMITED: (" limit exceeded: ",),
    _E.RDNS_MISMATCH: (
        " does not resolve to address ",
        " verification failed",
        ": address not listed for hostname ",
    ),
}


@lru_cache(maxsize=32)  # called per buffer with one of a few wanted sets
def _literal_counts(wanted: frozenset[Event]) -> tuple[tuple[int, tuple[str, ...]], ...] | None:
    """Return (EVENT_INDEX, texts) for each event not *wanted*, or None if one has no text."""
    unwanted = _PRODUCED - wanted
    if not unwanted <= _LITERALS.keys():
        return None
    return tuple(
        (EVENT_INDEX[e], _LITERALS[e]) for e in sorted(unwanted, key=lambda e: EVENT_INDEX[e])
    )


@lru_cache(maxsize=32)  # a pure function of a frozenset: a few wanted sets per process
def _plan(
    wanted: frozenset[Event], every: bool
) -> tuple[re.Pattern[str], tuple[int, ...], tuple[bool, ...]]:
    """Return the one-pass pattern and, by outer group number, each branch's code and wantedness.

    With *every*, the pattern has every branch (the unwanted ones are only counted), else only
    the branches that can give a wanted event.
    """
    branches: list[str] = []
    code_of = [-1]
    want_of = [False]
    for code, produces, lead, text in _BRANCHES:
        if every or produces & wanted:
            branches.append(f"{lead}{text[0]}({text[1:]})[^\\n]*")  # to the line's end
            extra = re.compile(text).groups
            code_of += [code] + [-1] * extra
            want_of += [bool(produces & wanted)] + [False] * extra
    # Nothing wanted: a pattern that never matches (scan does not search with it).
    pattern = re.compile(": (?:" + ("|".join(branches) or "(?!)") + ")")
    return pattern, tuple(code_of), tuple(want_of)


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


def _queue_id(buf: str, ls: int, anchor: int) -> str:
    """Return the queue ID that ends just before the ``": "`` that ends at *anchor*."""
    end = anchor - 2 if buf[anchor - 2 : anchor] == ": " else anchor
    start = buf.rfind(" ", ls, end) + 1
    return buf[start:end]


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
    """
    if not wanted and counts is None:
        return
    buf = normalize(buf)  # RFC 5424, <PRI>, unpadded days, no host, Solaris IDs: one shape
    # Counting every line's event costs the full pattern (measured: bench/, docs/benchmarks.md),
    # so callers that show no summary (following) pass no counts and get the wanted branches only.
    literal = _literal_counts(wanted) if counts is not None else None
    pattern, code_of, want_of = _plan(wanted, counts is not None and literal is None)
    n = [0] * len(EVENTS)  # lines with an event, by EVENT_INDEX (added to counts at the end)
    for index, texts in literal or ():
        n[index] += sum(buf.count(text) for text in texts)
    i_queued, i_disconnect = EVENT_INDEX[Event.QUEUED], EVENT_INDEX[Event.DISCONNECT]
    lineno = first_line
    last_ls = 0
    at: float | None = None
    last_stamp = ""
    last_at: float | None = None
    header_ok = False
    try:
        for m in pattern.finditer(buf):
            g: int = m.lastindex  # type: ignore[assignment]  # every branch is a group
            code = code_of[g]
            pos = m.start(g) - 1  # where the branch's literal starts
            ls = buf.rfind("\n", 0, pos) + 1
            if ls != last_ls or at is None:
                if number:
                    lineno += buf.count("\n", last_ls, ls)
                last_ls = ls
                header_ok = buf.find(MARKER, ls, pos) >= 0
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
            if not want_of[g]:  # only counted: as little work as telling whether it is an event
                i = _COUNT_AS[code]
                if i >= 0:
                    n[i] += 1
                elif code == 9:
                    i = _STATUS_INDEX.get(m.group(g + 4), -1)
                    if i >= 0:
                        n[i] += 1
                elif code == 0:
                    command, dsn, rest = m.group(g + 1, g + 5, g + 6)
                    n[EVENT_INDEX[classify_reject(command, dsn or "", rest)]] += 1
                elif _sasl_client(buf, ls, pos) is not None:  # code 3
                    n[_I_AUTH] += 1
                continue
            text = buf[ls : m.end()]
            if code == 2:
                host, ip, user = m.group(g + 1, g + 2, g + 3)
                end = pos - 2  # the queue ID ends before the ": " that anchors the match
                n[i_queued] += 1
                yield _NEW(MailEvent, (
                    lineno, at, Event.QUEUED, ip, text, host, "", "", "", user or "",
                    buf[buf.rfind(" ", ls, end) + 1 : end], "", "",
                ))  # fmt: skip
            elif code == 12:
                host, ip, rest = m.group(g + 1, g + 2, g + 3)
                n[i_disconnect] += 1
                yield _NEW(MailEvent, (
                    lineno, at, Event.DISCONNECT, ip, text, host, "", "", "", "", "", "", rest.strip(),
                ))  # fmt: skip
            else:
                ev = _event(m, g, code, buf, ls, pos, lineno, at, text)
                if ev is not None:
                    n[EVENT_INDEX[ev.event]] += 1
                    if ev.event in wanted:
                        yield ev
    finally:
        add_counts(counts, n)


def _sasl_client(buf: str, ls: int, pos: int) -> tuple[int, int] | None:
    """Return where the ``[ip]`` of ``warning: host[ip]: SASL ...`` is, or None when it is not that."""
    j = buf.rfind("]", ls, pos)
    k = buf.rfind("[", ls, j)
    if j > 0 and k > 0 and buf.find("warning: ", ls, k) > 0:
        return k, j
    return None


def _event(
    m: re.Match[str], g: int, code: int, buf: str, ls: int, pos: int, lineno: int, at: float,
    text: str,
) -> MailEvent | None:  # fmt: skip
    """Return the event of one matched line other than the two commonest (queued, disconnect)."""
    if code == 1:
        host, ip, rest = m.group(g + 1, g + 2, g + 3)
        return MailEvent(lineno, at, Event.CONNECT, ip, text, host, detail=rest.strip())
    if code == 0:
        command, host, ip, reply, dsn, rest = m.group(g + 1, g + 2, g + 3, g + 4, g + 5, g + 6)
        reason = rest.split("; from=<", 1)[0].split(", from=<", 1)[0]
        kind = classify_reject(command, dsn or "", reason)
        tail = _TAIL.search(rest)
        sender, rcpt, helo = tail.groups("") if tail else ("", "", "")
        anchor = m.start() + 2  # just after the ": " before "reject:" or "milter-reject:"
        return MailEvent(
            lineno, at, kind, ip, text, host, helo, sender, rcpt, "",
            "" if buf[anchor - 9 : anchor] == "NOQUEUE: " else _queue_id(buf, ls, anchor),
            dsn or reply or "", f"{command}: {reason}" if kind is _REJECTED else command,
        )  # fmt: skip
    if code == 16:
        what, content, host, ip, sender, rcpt, helo, reply, dsn, reason = m.group(
            *range(g + 1, g + 11)
        )
        return MailEvent(
            lineno, at, Event.REJECTED, ip, text, host or "", helo or "", sender, rcpt or "", "",
            _queue_id(buf, ls, m.start() + 2), dsn or reply or "",
            f"{what} {content}" + (f": {reason}" if reason else ""),
        )  # fmt: skip
    if code == 3:
        where = _sasl_client(buf, ls, pos)
        if where is None:
            return None
        k, j = where
        method, tail_text = m.group(g + 1, g + 2)
        user = (tail_text or "").partition("sasl_username=")[2].split(",", 1)[0].strip()
        host = buf[buf.rfind(" ", ls, k) + 1 : k]
        mark = buf.find(MARKER, ls, pos)
        service = buf[mark + 1 : buf.find("[", mark, pos)]
        return MailEvent(
            lineno, at, Event.AUTH_FAILURE, buf[k + 1 : j], text, host,
            user=user, code=method, detail=service,
        )  # fmt: skip
    if code == 4:
        stage, host, ip = m.group(g + 1, g + 2, g + 3)
        return MailEvent(lineno, at, Event.LOST_CONNECTION, ip, text, host, detail=stage)
    if code == 5:
        count, ip, greeting = m.group(g + 1, g + 2, g + 3)
        return MailEvent(lineno, at, Event.PREGREET, ip, text, code=count, detail=greeting or "")
    if code == 6:
        ip, stage = m.group(g + 1, g + 2)
        return MailEvent(lineno, at, Event.PIPELINING, ip, text, detail=stage)
    if code == 7:
        stage, host, ip = m.group(g + 1, g + 2, g + 3)
        return MailEvent(lineno, at, Event.PIPELINING, ip, text, host, detail=stage)
    if code == 8:
        rank, ip = m.group(g + 1, g + 2)
        return MailEvent(lineno, at, Event.RBL_REJECT, ip, text, code=rank, detail="DNSBL")
    if code == 9:
        rcpt, relay, dsn, status, reply = m.group(g + 1, g + 2, g + 3, g + 4, g + 5)
        outcome = _STATUS.get(status)
        if outcome is None:
            return None
        if not dsn:  # before Postfix 2.3: the enhanced code only in the reply, if at all
            found_code = _ENHANCED.search(reply or "")
            dsn = found_code.group(0) if found_code else ""
        found = _RELAY_IP.search(relay)
        return MailEvent(
            lineno, at, outcome, found.group(1) if found else None, text,
            relay.split("[", 1)[0], recipient=rcpt,
            queue_id=_queue_id(buf, ls, pos), code=dsn, detail=reply or "",
        )  # fmt: skip
    if code == 10:
        sender, nrcpt = m.group(g + 1, g + 2)
        return MailEvent(
            lineno, at, Event.MESSAGE, None, text, sender=sender,
            queue_id=_queue_id(buf, ls, pos), code=nrcpt,
        )  # fmt: skip
    if code == 11:
        name, ip, why = m.group(g + 1, g + 2, g + 3)
        return MailEvent(lineno, at, Event.RDNS_MISMATCH, ip, text, name, detail=why or "")
    if code in (17, 18):
        name, why = m.group(g + 1, g + 2) if code == 17 else (m.group(g + 1), "")
        w = buf.rfind("warning: ", ls, pos)
        ip = buf[w + 9 : pos - 2] if w >= 0 else ""
        if not ip or not _ADDRESS.fullmatch(ip):
            return None
        return MailEvent(lineno, at, Event.RDNS_MISMATCH, ip, text, name, detail=why or "")
    if code == 19:
        ip, stage = m.group(g + 1, g + 2)
        return MailEvent(lineno, at, Event.HANGUP, ip, text, detail=stage)
    if code in (20, 24, 25):
        if code == 20:
            limit, ip, stage, rest = m.group(g + 1, g + 2, g + 3, g + 4)
            what = f"COMMAND {limit}"
        else:
            ip, stage, rest = m.group(g + 1, g + 2, g + 3)
            what = "NON-SMTP COMMAND" if code == 24 else "BARE NEWLINE"
        detail = f"{what} after {stage}" + (f": {rest}" if rest else "")
        return MailEvent(lineno, at, Event.PROTOCOL_VIOLATION, ip, text, detail=detail)
    if code in (21, 26):
        what = "BLACKLISTED" if code == 21 else "DENYLISTED"
        return MailEvent(lineno, at, Event.BLOCKED, m.group(g + 1), text, detail=what)
    if code == 22:
        stage, host, ip = m.group(g + 1, g + 2, g + 3)
        return MailEvent(
            lineno,
            at,
            Event.PROTOCOL_VIOLATION,
            ip,
            text,
            host,
            detail=f"too many errors after {stage}",
        )
    if code == 23:
        host, ip, command = m.group(g + 1, g + 2, g + 3)
        return MailEvent(
            lineno, at, Event.PROTOCOL_VIOLATION, ip, text, host,
            detail=f"Illegal address syntax in {command} command",
        )  # fmt: skip
    if code == 13:
        ip, local, port = m.group(g + 1, g + 2, g + 3)
        return MailEvent(
            lineno, at, Event.CONNECT, ip, text, detail=f"postscreen to [{local}]:{port}"
        )
    if code == 14:
        metric, value, service, ip = m.group(g + 1, g + 2, g + 3, g + 4)
        detail = f"max {metric}" + (f" ({service})" if service else "")
        return MailEvent(lineno, at, Event.ANVIL_STATS, ip, text, code=value, detail=detail)
    if code == 15:
        what, count, host, ip, service = m.group(g + 1, g + 2, g + 3, g + 4, g + 5)
        return MailEvent(
            lineno, at, Event.RATE_LIMITED, ip, text, host, code=count,
            detail=f"{what} limit, service {service}",
        )  # fmt: skip
    return None

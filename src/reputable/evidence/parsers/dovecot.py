"""Dovecot 2.x login and authentication lines (imap-login, pop3-login, submission-login,
managesieve-login, auth, auth-worker) — pure.

Written from Dovecot's own message formats: the login processes log one line when a client
leaves, ``Disconnected``/``Aborted login`` (2.2-2.3.13) or ``Login aborted: ...`` (2.3.14+),
with the reason in parentheses (``auth failed, 3 attempts in 12 secs``, ``no auth attempts
in 10 secs``) followed by ``login_log_format_elements`` (``user=<%u>, method=%m, rip=%r,
lip=%l, ...``); ``Login: user=<...>`` on success. With ``auth_verbose = yes`` the auth
processes add one line per attempt: ``passdb(user,rip[,<session>]): unknown user`` or
``Password mismatch`` (``pam_authenticate() failed: ...`` for PAM).

Both via syslog (``host dovecot: imap-login: ...``, ``dovecot[PID]: ...``) and Dovecot's own
``log_path`` file (``Nov 02 15:40:14 imap-login: Info: ...``, or ``log_timestamp`` set to
``%Y-%m-%d %H:%M:%S``). User names are attacker-chosen text: the client is the *last*
``rip=`` of a line and the *last* address inside ``passdb(...)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, tzinfo
from typing import Final

from reputable.evidence.parsers.envelope import syslog_lines
from reputable.evidence.parsers.netbase import OTHER, UNKNOWN, NetEvent, NetLine
from reputable.evidence.parsers.syslog_time import TimeParser

NAME: Final = "dovecot"

_IP: Final = r"(?P<ip>[0-9A-Fa-f:.]*[0-9A-Fa-f])"
_TS: Final = (
    r"(?P<ts>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d"
    r"|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
)
_LOGIN: Final = r"(?:imap|pop3|submission|managesieve)-login"
_PREFIX: Final = re.compile(
    _TS
    + r" (?:\S+ )??(?:dovecot(?:\[\d+\])?: )?"
    + r"(?P<service>"
    + _LOGIN
    + r"|auth|auth-worker(?:\(\d+\))?)(?:\[\d+\])?: (?:(?:Info|Warning|Error|Debug): )?"
)
#: Any syslog line (another program, or another Dovecot process: imap(user), lmtp, master).
_SYSLOG_ANY: Final = re.compile(_TS + r" (?:\S+ )?[^\s\[:]+(?:\[\d+\])?: ")

#: After a login process's prefix: the line a client leaves with, reason in parentheses.
_LEFT: Final = re.compile(
    r"(?:Disconnected|Aborted login|Login aborted)(?:: [^(]*?)? \((?P<why>[^()]*)\)(?: \(\w+\))?:"
    r" user=<(?P<user>.*)>,? (?:method=(?P<method>[^\s,]+),? )?.*\brip=" + _IP + r"(?:,|\s|$)"
)
_ATTEMPTS: Final = re.compile(r"auth failed, (\d+) attempts?")
_LOGIN_OK: Final = re.compile(
    r"Login: user=<(?P<user>.*)>,? (?:method=(?P<method>[^\s,]+),? )?.*\brip=" + _IP + r"(?:,|\s|$)"
)
_USERIP: Final = re.compile(
    r"Maximum number of connections from user\+IP exceeded .*?: user=<(?P<user>.*)>.*\brip="
    + _IP
    + r"(?:,|\s|$)"
)
#: After an auth process's prefix: ``passdb(user,rip[,<session>]): what happened``.
_PASSDB: Final = re.compile(
    r"(?P<db>[\w-]+)\((?P<user>.*),(?:" + _IP + r"|)(?:,<[^>]*>)?\): (?P<what>.*)$"
)
_UNKNOWN_USER: Final = re.compile(
    r"unknown user|User not known to the underlying authentication module", re.I
)
_MISMATCH: Final = re.compile(r"Password mismatch|password mismatch\?|Authentication failure", re.I)


def _event(service: str, rest: str) -> tuple[str, dict[str, str], int] | None:
    """Return (event, fields, attempts) of one message after its prefix, or None."""
    if service.endswith("-login"):
        left = _LEFT.match(rest)
        if left is not None:
            fields = left.groupdict("")
            attempts = _ATTEMPTS.search(fields["why"])
            if attempts is not None:
                return "login_failed", fields, int(attempts.group(1))
            return "login_aborted", fields, 0
        ok = _LOGIN_OK.match(rest)
        if ok is not None:
            return "login", ok.groupdict(""), 0
        userip = _USERIP.match(rest)
        if userip is not None:
            return "userip_limit", userip.groupdict(""), 0
        return None
    passdb = _PASSDB.match(rest)
    if passdb is None:
        return None
    fields = passdb.groupdict("")
    if _UNKNOWN_USER.search(fields["what"]):
        return "auth_unknown_user", fields, 1
    if _MISMATCH.search(fields["what"]):
        return "auth_mismatch", fields, 1
    return None


def parse(
    lines: Iterable[str],
    *,
    now: datetime,
    first_line: int = 1,
    tz: tzinfo = UTC,
    envelope: bool = True,
) -> Iterator[NetEvent | NetLine]:
    """Yield an event per understood login/auth line, else a NetLine (OTHER: another program)."""
    clock = TimeParser(now, tz)
    for lineno, text in syslog_lines(lines, first_line, envelope=envelope):
        head = _PREFIX.match(text)
        found = _event(head["service"], text[head.end() :]) if head is not None else None
        ts = clock(head["ts"]) if head is not None else None
        if head is None or found is None or ts is None or not found[1].get("ip"):
            yield NetLine(lineno, _kind(text, head is not None), text)
            continue
        event, fields, attempts = found
        yield NetEvent(
            line=lineno,
            ts=ts,
            ip=fields.get("ip", ""),
            event=event,
            text=text,
            user=fields.get("user", ""),
            method=fields.get("method", "") or fields.get("db", ""),
            attempts=attempts,
            service=head["service"].split("(", 1)[0],
        )


def understood(
    lines: Iterable[str], clock: TimeParser
) -> Iterator[tuple[int, float, str, str, dict[str, object], str]]:
    """Yield ``(index, ts, event, ip, fields, text)`` for each line of *lines* ``parse`` makes an event of.

    The lines are in the canonical envelope already (``parse(..., envelope=False)``: the
    journal's); *fields* are the event's user, method, attempts and service. The journal's
    fast path with ``NetDetector.observe_fields``: no NetEvent or NetLine is made (measured:
    bench/journal_ingest.py). Keep it equivalent to ``parse`` (tests compare the two).
    """
    for index, raw in enumerate(lines):
        text = raw.rstrip("\r\n")
        head = _PREFIX.match(text)
        if head is None:
            continue
        service = head["service"]
        found = _event(service, text[head.end() :])
        if found is None:
            continue
        event, fields, attempts = found
        ip = fields.get("ip")
        if not ip:
            continue
        ts = clock(head["ts"])
        if ts is None:
            continue
        yield (
            index,
            ts,
            event,
            ip,
            {
                "user": fields.get("user", ""),
                "method": fields.get("method", "") or fields.get("db", ""),
                "attempts": attempts,
                "service": service.split("(", 1)[0],
            },
            text,
        )


def _kind(text: str, ours: bool) -> str:
    """UNKNOWN for a login/auth line not understood; OTHER for blank lines and other programs."""
    if not ours and (not text.strip() or _SYSLOG_ANY.match(text)):
        return OTHER
    return UNKNOWN

"""OpenSSH server lines in a syslog auth log (``sshd[PID]:`` and OpenSSH 9.8's ``sshd-session[PID]:``).

Every message form sshd logs about a client is listed once in ``MESSAGES``; both readers are
built from that table, so they agree on what is understood:

- ``parse`` reads line by line and attributes lines without an address (``session opened``,
  ``check pass; user unknown``) to the client of the same PID (a multi-line session);
- ``scan`` is the fast path of ``ingest``: one compiled pattern over a large block of lines
  returns only the authentication attempts (the lines detectors count) and the lines it does
  not understand; understood lines that matter to no detector cost no Python work at all.

User names are attacker-chosen text: every address is anchored at the end of its line, so a
name such as ``x from 6.6.6.6`` cannot move the blame (the classic fail2ban injection).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, tzinfo
from typing import Final

from reputable.evidence.parsers.envelope import syslog_lines
from reputable.evidence.parsers.netbase import OTHER, UNKNOWN, NetEvent, NetLine
from reputable.evidence.parsers.syslog_time import TimeParser

NAME: Final = "sshd"

#: The events that are one authentication attempt each (what the brute-force detectors count).
ATTEMPTS: Final = frozenset({"auth_failed", "invalid_user"})

_IP: Final = r"(?P<ip>[0-9A-Fa-f:.]*[0-9A-Fa-f])"
_PORT: Final = r" port \d+"
_END: Final = r"(?: \[preauth\])?[ \t\r]*$"
_TS: Final = (
    r"(?P<ts>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d"
    r"|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
)
_PREFIX: Final = _TS + r" \S+ sshd(?:-session)?(?:\[(?P<pid>\d+)\])?: (?:(?:error|fatal): )?"
_SYSLOG_ANY: Final = re.compile(_TS + r" \S+ [^\s\[:]+(?:\[\d+\])?: ")

#: (event, message pattern after ``sshd[PID]: ``); the line must end where the pattern does.
#: Written from OpenSSH's own log strings (auth.c, auth2.c, sshd.c, kex.c, packet.c,
#: auth-pam.c of OpenSSH 6.x-9.x) and Linux-PAM's pam_unix; the first that matches wins.
MESSAGES: Final[tuple[tuple[str, str], ...]] = (
    (
        "auth_failed",
        r"Failed (?!publickey )(?P<method>\S+) for (?P<invalid>(?:invalid|illegal) user )?(?P<user>.*?)"
        r" from " + _IP + r"(?: port \d+)?(?: ssh\d?)?",
    ),
    ("invalid_user", r"(?:Invalid|Illegal) user (?P<user>.*?) from " + _IP + r"(?: port \d+)?"),
    (
        "pam_auth_failure",
        r"(?:PAM \d+ more authentication failures?|pam_\w+\(sshd:auth\): authentication failure);"
        r"(?: \w+=\S*)*? rhost=" + _IP + r"(?:\s+user=(?P<user>\S*))?",
    ),
    (
        "pam_error",
        r"PAM: (?:Authentication failure|User not known to the underlying authentication module)"
        r" for (?:(?:illegal|invalid) user )?(?P<user>.*?) from " + _IP + r"(?: port \d+)?",
    ),
    ("pam_check_pass", r"pam_\w+\(sshd:auth\): check pass; user unknown"),
    (
        "disconnected",
        r"Disconnected from (?:(?:invalid |authenticating )?user (?P<user>.*?) )?" + _IP + _PORT,
    ),
    ("received_disconnect", r"Received disconnect from " + _IP + r"(?: port \d+)?:\s*\d+: .*?"),
    # a client that left before any authentication: a scanner's mark (weak evidence)
    ("preauth_closed", r"Connection (?:closed|reset) by " + _IP + _PORT + r" \[preauth\]"),
    (
        "connection_closed",
        r"Connection (?:closed|reset) by (?:(?:invalid |authenticating )?user (?P<user>.*?) )?"
        + _IP
        + r"(?: port \d+)?",
    ),
    (
        "accepted",
        r"Accepted (?P<method>\S+) for (?P<user>\S+) from " + _IP + _PORT + r"(?: ssh\d)?(?:: .*)?",
    ),
    (
        "publickey_failed",
        r"Failed publickey for (?:invalid user )?(?P<user>.*?) from "
        + _IP
        + _PORT
        + r"(?: ssh\d)?(?:: .*)?",
    ),
    (
        "session_opened",
        r"pam_\w+\(sshd:session\): session opened for user (?P<user>[^\s(]+)(?:\(uid=\d+\))? by .*",
    ),
    ("session_closed", r"pam_\w+\(sshd:session\): session closed for user (?P<user>\S+)"),
    ("connection", r"Connection from " + _IP + _PORT + r" on \S+ port \d+(?: rdomain \S*)?"),
    ("no_ident", r"Did not receive identification string from " + _IP + r"(?: port \d+)?"),
    ("bad_banner", r"banner exchange: Connection from " + _IP + _PORT + r": .*?"),
    (
        "bad_banner",
        r"Bad protocol version identification '.*' from " + _IP + r"(?: port \d+)?",
    ),
    ("kex_ident", r"kex_exchange_identification: .*"),
    (
        "negotiation_failed",
        r"Unable to negotiate with " + _IP + r"(?: port \d+)?: no matching .*",
    ),
    ("no_matching", r"(?:Unable to negotiate a \S+|no matching (?:\S+ )+found)\b.*"),
    (
        "max_auth_exceeded",
        r"maximum authentication attempts exceeded for (?:invalid user )?(?P<user>.*?) from "
        + _IP
        + _PORT
        + r"(?: ssh\d)?",
    ),
    (
        "too_many_failures",
        r"Disconnecting(?: (?:invalid |authenticating )?user (?P<user>\S+) " + _IP + _PORT + r")?"
        r": Too many authentication failures.*?",
    ),
    ("timeout", r"Timeout before authentication for " + _IP + r"(?: port \d+)?"),
    ("userauth_invalid_user", r"input_userauth_request: invalid user (?P<user>.*?)"),
    (
        "postponed",
        r"Postponed \S+ for (?:invalid user )?(?P<user>\S+) from " + _IP + _PORT + r"(?: ssh\d)?",
    ),
    ("user_not_allowed", r"User (?P<user>\S+) from " + _IP + r" not allowed because .*?"),
    ("root_refused", r"ROOT LOGIN REFUSED FROM " + _IP + r"(?: port \d+)?"),
    (
        "server",
        r"(?:Server listening on .*|Received signal \d+; terminating\.|Received SIGHUP; restarting\.)",
    ),
)

#: Events that mark a client leaving or failing before it authenticated: a scanner (weak).
SCANS: Final = frozenset({"preauth_closed", "no_ident", "bad_banner", "negotiation_failed"})


def _message_pattern() -> tuple[re.Pattern[str], dict[int, tuple[str, int, int, int]]]:
    """Return every message of MESSAGES in one alternation, and by branch what its groups are.

    The alternation tries the branches in table order and each runs to the line's end, so the
    first message that matches wins, as with one pattern per message, in one call (measured:
    bench/journal_ingest.py). Each branch is one outer group (``Match.lastindex``), mapped to
    (event, group of ip, of user, of method; 0 when the message has none).
    """
    meaning: dict[int, tuple[str, int, int, int]] = {}
    parts = []
    group = 0
    for event, text in MESSAGES:
        inner = re.compile(text)
        outer = group + 1
        where = {name: outer + index for name, index in inner.groupindex.items()}
        meaning[outer] = (event, where.get("ip", 0), where.get("user", 0), where.get("method", 0))
        parts.append("(" + _groups(text, frozenset(inner.groupindex)) + _END + ")")
        group = outer + inner.groups
    return re.compile("|".join(parts)), meaning


_LINE_PREFIX: Final = re.compile(_PREFIX)
#: PIDs remembered with their client's address (the least recently named is forgotten first).
_PID_LIMIT: Final = 65_536
#: Of those, how many :meth:`Sessions.state` saves (the most recent): a follower commits them
#: with every batch, so they stay few; more sessions than this open at once is not sshd's way.
SAVED_SESSIONS: Final = 4_096


class Sessions:
    """sshd's PID -> client address: whom a line that names no client is about.

    ``parse`` keeps one for the lines of one call; a follower (netlog, journal) keeps one for
    the whole log and passes it to every batch, and saves :meth:`state` with its position, so
    a session whose first line came in one batch (or before a restart) is attributed in the
    next. Bounded: the PID least recently named with an address is dropped first.
    """

    __slots__ = ("pids",)

    def __init__(self) -> None:
        self.pids: dict[str, str] = {}

    def state(self) -> list[list[str]]:
        """Return the most recent SAVED_SESSIONS (PID, address) pairs, oldest first (JSON-ready)."""
        pids = self.pids
        skip = len(pids) - SAVED_SESSIONS
        return [[pid, ip] for i, (pid, ip) in enumerate(pids.items()) if i >= skip]

    def restore(self, saved: object) -> None:
        """Load what :meth:`state` returned; anything not of that shape is ignored (a new start)."""
        if not isinstance(saved, list):
            return
        for pair in saved:
            if (
                isinstance(pair, list)
                and len(pair) == 2
                and isinstance(pair[0], str)
                and pair[0].isdigit()
                and isinstance(pair[1], str)
                and pair[1]
            ):
                self.pids.pop(pair[0], None)
                self.pids[pair[0]] = pair[1]
        while len(self.pids) > _PID_LIMIT:
            del self.pids[next(iter(self.pids))]


def _groups(pattern: str, keep: frozenset[str] = frozenset()) -> str:
    """Return *pattern* with named groups in *keep* made plain capturing, the others non-capturing."""
    return re.sub(r"\(\?P<(\w+)>", lambda m: "(" if m[1] in keep else "(?:", pattern)


def _scan_pattern() -> tuple[re.Pattern[bytes], dict[int, tuple[str, int]], int]:
    """Return the block pattern, what each branch's last group means, and the first not-understood group.

    A line is an attempt (``Failed``, ``Invalid user``: user and address captured), a scanner's
    mark (``SCANS``: address captured), or not understood (``Match.lastindex`` at or above the
    returned group; the line is ``Match[0][1:]``); the branch shows in ``Match.lastindex``,
    mapped to (event, user group or 0). Any other sshd line does not match at all.

    The line prefix is matched once, in an atomic group: after it, the line is an attempt, a
    message not understood, or understood (an empty group that the conditional at the end
    fails, and the atomic group forbids retrying another way). The pattern before it matched
    the prefix a second time inside ``\n(?!prefix known)`` for every line that was no attempt;
    this one took 1.08-1.15 s against 1.26-1.55 s CPU for the 1M-line log of
    bench/netlog_vs_fail2ban.py (alternated, load 1.7). One prefix parse is all there is: the
    host is one word and no message starts with ``error: `` or ``fatal: ``, so reading the
    prefix greedily decides the same as trying every way.
    """
    capture = frozenset({"ts", "user", "ip"})
    branches = [p for e, p in MESSAGES if e in ("auth_failed", "invalid_user")]
    events = ["auth_failed", "invalid_user"]
    for event, text in MESSAGES:
        if event in SCANS:
            branches.append(_groups(text, frozenset({"ip"})))
            events.append(event)
    meaning: dict[int, tuple[str, int]] = {}
    group = 1  # the timestamp
    parts = []
    for event, branch in zip(events, branches, strict=True):
        body = _groups(branch, capture)
        n = re.compile(body).groups
        group += n
        meaning[group] = (event, group - 1 if n == 2 else 0)
        parts.append(body)
    known = "(?:" + "|".join(_groups(p) for _, p in MESSAGES) + ")" + _END
    body = (
        r"\n(?>"
        + _groups(_PREFIX, capture)
        + "(?:(?:"
        + "|".join(parts)
        + ")"
        + _END
        + r"|(?!"
        + known
        + r")[^\n]*()"  # group + 1: an sshd line not understood
        + r"|())"  # group + 2: understood, no attempt nor scan: fails below
        + r"|[^\n]*())"  # group + 3: not an sshd line
        + f"(?({group + 2})(?!))"
    )
    return re.compile(body.encode(), re.MULTILINE), meaning, group + 1


#: One pattern for every message; ``_MESSAGE_GROUPS[m.lastindex]`` says which and where its fields are.
_MESSAGE, _MESSAGE_GROUPS = _message_pattern()

#: Group 1 the timestamp; ``SCAN_EVENTS[m.lastindex]`` is (event, user group or 0) with the
#: address in group ``m.lastindex``; ``m.lastindex >= SCAN_UNKNOWN`` a line not understood
#: (its text ``m[0][1:]``).
SCAN, SCAN_EVENTS, SCAN_UNKNOWN = _scan_pattern()


def classify(text: str) -> str:
    """Return OTHER for a blank line or another program's syslog line, else UNKNOWN."""
    if not text.strip() or (_SYSLOG_ANY.match(text) and not _LINE_PREFIX.match(text)):
        return OTHER
    return UNKNOWN


def parse(
    lines: Iterable[str],
    *,
    now: datetime,
    first_line: int = 1,
    tz: tzinfo = UTC,
    envelope: bool = True,
    sessions: Sessions | None = None,
) -> Iterator[NetEvent | NetLine]:
    """Yield an event for every understood line (PID-attributed when it names no client), else a NetLine.

    *sessions* carries the PID -> address memory from earlier calls to later ones (a follower's
    batches); without it the memory is this call's.
    """
    clock = TimeParser(now, tz)
    pids = sessions.pids if sessions is not None else {}
    message, meaning = _MESSAGE.match, _MESSAGE_GROUPS
    for lineno, text in syslog_lines(lines, first_line, envelope=envelope):
        head = _LINE_PREFIX.match(text)
        found = message(text, head.end()) if head is not None else None
        ts = clock(head["ts"]) if head is not None and found is not None else None
        if head is None or found is None or ts is None:
            yield NetLine(lineno, classify(text), text)
            continue
        event, ip_group, user_group, method_group = meaning[found.lastindex]  # type: ignore[index]
        pid = head["pid"] or ""  # "" when the tag has no PID: nothing to attribute by
        ip = (found[ip_group] or "") if ip_group else ""
        via = False
        if not pid:
            pass
        elif ip:
            pids.pop(pid, None)
            pids[pid] = ip
            if len(pids) > _PID_LIMIT:
                del pids[next(iter(pids))]
        else:
            ip = pids.get(pid, "")
            via = bool(ip)
        if event == "session_closed" and pid:
            pids.pop(pid, None)
        yield NetEvent(
            line=lineno,
            ts=ts,
            ip=ip,
            event=event,
            text=text,
            user=(found[user_group] or "") if user_group else "",
            pid=int(pid or 0),
            via_pid=via,
            method=(found[method_group] or "") if method_group else "",
        )

"""Syslog envelopes: every way a daemon's line reaches a log file, rewritten to one shape — pure.

The parsers read ``TIMESTAMP HOST TAG: MESSAGE`` (TAG ``prog[pid]`` or ``prog``), with
TIMESTAMP either traditional ``Mmm dd HH:MM:SS`` or RFC 3339. Other envelopes are rewritten to
that shape first, one line for one line (line numbers stay), and only when a buffer has them:

- RFC 5424 (``<38>1 2019-07-08T17:40:16.954-04:00 host sshd 57915 - [sd...] msg``; ``-`` for
  a missing PID or message ID, structured data dropped, a BOM before the message dropped);
- RFC 3164 with its ``<PRI>`` kept (``<38>Nov  2 15:40:14 host ...``: the PRI is dropped);
- unpadded days (``Nov 2 15:40:14``, some syslog daemons): padded to ``Nov  2``;
- RFC 3339 high precision (rsyslog's ``RSYSLOG_FileFormat``): already the shape;
- no host (``Nov  2 15:40:14 sshd[123]: ...``, busybox and some local loggers): host ``-``;
- Solaris/illumos message IDs (``sshd[123]: [ID 800047 auth.info] msg``): the ID is dropped.

Cheap when there is nothing to do, which is the common case: each kind is looked for with a
search that starts with a literal (C speed), and a log without host names is recognised from
its first lines (a file is written by one syslog daemon).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import AnyStr, Final

_TS: Final = (
    r"(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d"
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
)
#: A syslog timestamp, traditional or RFC 3339 (for parsers that look for an envelope themselves).
TIMESTAMP: Final = _TS
#: RFC 5424 §6: PRI VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]
_RFC5424: Final = (
    r"<\d{1,3}>\d{1,2} (\S+) (\S+) (\S+) (\S+) \S+ (?:-|(?:\[(?:[^\]\\\n]|\\.)*\])+)"
    r"(?: (?:\ufeff)?|(?=\n)|$)"
)
_PRI: Final = r"<\d{1,3}>(?=[A-Z][a-z]{2} [ \d]\d \d\d:|\d{4}-\d\d-\d\dT)"
_UNPADDED: Final = r"([A-Z][a-z]{2}) (\d \d\d:\d\d:\d\d )"
_SOLARIS: Final = r"(" + _TS + r" \S+ [^\s\[:]+(?:\[\d+\])?: )\[ID \d+ [\w-]+\.\w+\] "
_NO_HOST: Final = r"(" + _TS + r") ([^\s\[:]+\[\d+\]: |[^\s\[:]+: )"
#: Where a log without host names shows itself: its first lines.
_HEAD: Final = 64 << 10

#: (name, pattern after a line start); group numbers are local to each branch.
_BRANCHES: Final = (
    ("rfc5424", _RFC5424),
    ("pri", _PRI),
    ("unpadded", _UNPADDED),
    ("solaris", _SOLARIS),
    ("no_host", _NO_HOST),
)


def _b(pattern: str) -> bytes:
    """Return *pattern* for bytes (the BOM as its UTF-8 bytes)."""
    return pattern.replace(r"\ufeff", r"\xef\xbb\xbf").encode()


#: Each kind looked for after a newline (a search led by a literal runs at C speed) and at the start.
_PROBES: Final = {name: (re.compile("\n" + p), re.compile(p)) for name, p in _BRANCHES}
_BYTES_PROBES: Final = {
    name: (re.compile(_b("\n" + p)), re.compile(_b(p))) for name, p in _BRANCHES
}
_STR_CACHE: dict[frozenset[str], re.Pattern[str]] = {}
_BYTES_CACHE: dict[frozenset[str], re.Pattern[bytes]] = {}


#: One search over the whole buffer for what may change inside a file (a PRI, an unpadded day):
#: led by a literal newline, ~0.08 us per line (measured on the mail-log benchmark).
_MAYBE: Final = r"\n(?:<|[A-Z][a-z][a-z] \d )"
_MAYBE_STR: Final = (re.compile(_MAYBE), re.compile(_MAYBE[2:]))
_MAYBE_BYTES: Final = (re.compile(_b(_MAYBE)), re.compile(_b(_MAYBE[2:])))


def _kinds(buf: str) -> frozenset[str]:
    """Return the envelope kinds present in *buf* (the cheap checks first)."""
    found: set[str] = set()
    after_newline, at_start = _MAYBE_STR
    if after_newline.search(buf) is not None or at_start.match(buf) is not None:
        found.update(n for n in ("rfc5424", "pri", "unpadded") if _present(n, buf, _PROBES))
    head = buf[:_HEAD]  # a file is written by one syslog daemon: its head shows the rest
    found.update(n for n in ("solaris", "no_host") if _present(n, head, _PROBES))
    return frozenset(found)


def _bytes_kinds(buf: bytes) -> frozenset[str]:
    """Return the envelope kinds present in *buf* (bytes; the cheap checks first)."""
    found: set[str] = set()
    after_newline, at_start = _MAYBE_BYTES
    if after_newline.search(buf) is not None or at_start.match(buf) is not None:
        found.update(n for n in ("rfc5424", "pri", "unpadded") if _present(n, buf, _BYTES_PROBES))
    head = buf[:_HEAD]
    found.update(n for n in ("solaris", "no_host") if _present(n, head, _BYTES_PROBES))
    return frozenset(found)


def _present(
    name: str, buf: AnyStr, probes: dict[str, tuple[re.Pattern[AnyStr], re.Pattern[AnyStr]]]
) -> bool:
    after_newline, at_start = probes[name]
    return after_newline.search(buf) is not None or at_start.match(buf) is not None


def _source(kinds: frozenset[str]) -> str:
    body = "|".join(f"(?P<{name}>{_renumber(p, name)})" for name, p in _BRANCHES if name in kinds)
    return r"(?:^|(?<=\n))(?:" + body + ")"


def _renumber(pattern: str, name: str) -> str:
    """Return *pattern* with its plain groups named ``NAME_1``, ``NAME_2``, ... (one combined regex)."""
    count = 0

    def named(_: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return f"(?P<{name}_{count}>"

    return re.sub(r"(?<!\\)\((?!\?)", named, pattern)


def _canonical(kind: str | None, g: Callable[[str], str]) -> str:
    """Return the canonical start of a line matched by the branch *kind* (groups from *g*)."""
    if kind == "rfc5424":
        ts, host, app, pid = g("rfc5424_1"), g("rfc5424_2"), g("rfc5424_3"), g("rfc5424_4")
        return f"{ts} {host} {app}: " if pid == "-" else f"{ts} {host} {app}[{pid}]: "
    if kind == "unpadded":
        return f"{g('unpadded_1')}  {g('unpadded_2')}"
    if kind == "solaris":
        return g("solaris_1")
    if kind == "no_host":
        return f"{g('no_host_1')} - {g('no_host_2')}"
    return ""  # pri: dropped


def normalize(buf: str) -> str:
    """Return *buf* with every line's syslog envelope in the canonical shape (*buf* when it is)."""
    kinds = _kinds(buf)
    if not kinds:
        return buf
    pattern = _STR_CACHE.get(kinds)
    if pattern is None:
        pattern = _STR_CACHE[kinds] = re.compile(_source(kinds))
    return pattern.sub(lambda m: _canonical(m.lastgroup, m.group), buf)


def syslog_lines(
    lines: Iterable[str], first_line: int, *, envelope: bool = True
) -> Iterator[tuple[int, str]]:
    """Yield (line number, text) per line, its end dropped and its envelope made canonical.

    *envelope* False: the caller built canonical lines already (the journal).
    """
    for lineno, raw in enumerate(lines, first_line):
        text = raw.rstrip("\r\n")
        yield lineno, normalize(text) if envelope else text


def normalize_bytes(buf: bytes) -> bytes:
    """Return *buf* (bytes) with every line's syslog envelope in the canonical shape."""
    kinds = _bytes_kinds(buf)
    if not kinds:
        return buf
    pattern = _BYTES_CACHE.get(kinds)
    if pattern is None:
        pattern = _BYTES_CACHE[kinds] = re.compile(_b(_source(kinds)))

    def rewrite(m: re.Match[bytes]) -> bytes:
        def group(name: str) -> str:
            return m.group(name).decode("latin-1")  # bytes round-trip through latin-1

        return _canonical(m.lastgroup, group).encode("latin-1")

    return pattern.sub(rewrite, buf)

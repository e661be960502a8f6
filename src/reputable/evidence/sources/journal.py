"""systemd's journal in: ``journalctl --output=export`` read once, entries routed to the parsers, resumed by cursor.

Modern Debian and Ubuntu servers keep sshd, Postfix, Dovecot and Exim logs in the journal.
``journalctl`` (the only supported reader of journal files) is run with ``--output=export``
(systemd's Journal Export Format: measured a third of the CPU journalctl needs for ``-o json``)
and only the fields used (``--output-fields``); each entry is routed by ``SYSLOG_IDENTIFIER`` (else
``_SYSTEMD_UNIT``) to a parser, rebuilt as the syslog line that daemon would have written
(``2026-12-05T17:40:00Z host sshd[123]: message``; Exim's own ``2026-12-05 17:40:00 +0000
message``), and fed in batches to the same parsers and detectors as log files.

Resuming is exact: each batch's evidence is committed together with the cursor of its last
entry and the mail detectors' windows (``store.commit_source``, one transaction), and the next
run starts ``--after-cursor`` it — after a crash or ``kill -9`` too: no entry is counted twice
or missed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import subprocess
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat
from operator import methodcaller
from pathlib import Path
from typing import Any, Final

from reputable.core import log
from reputable.core.errors import ConfigError, InputError
from reputable.evidence.detectors.mail_config import MailParams
from reputable.evidence.detectors.net import NetDetector
from reputable.evidence.detectors.netconfig import NetSettings
from reputable.evidence.model import Evidence
from reputable.evidence.parsers import dovecot, netfilter, sshd
from reputable.evidence.parsers.netbase import NetEvent, NetLine
from reputable.evidence.parsers.syslog_time import TimeParser
from reputable.evidence.sources.follow import Position, PositionStore
from reputable.evidence.sources.maillog import MailRun

SOURCE: Final = "journal"
FIELDS: Final = "MESSAGE,SYSLOG_IDENTIFIER,_SYSTEMD_UNIT,SYSLOG_PID,_PID,_HOSTNAME"
#: Entries per batch (one commit each) in batch mode; following also commits when idle.
BATCH: Final = 20_000
#: Bytes per read of journalctl's output (~160 entries): the chunk, its pieces and their dicts
#: stay in the core's cache. Measured (bench/journal_ingest.py's Python side, CPU): 64 KiB
#: chunks 3.9-4.5 s, 1 MiB chunks 5.0 s for 500,000 entries.
_READ: Final = 1 << 16
#: journalctl's pipe (Linux's default holds 64 KiB, one read): 1 MiB lets journalctl run ahead
#: of the reader when the reader is descheduled, and the reader go on when journalctl is, so
#: fewer waits on a busy machine (reads stay _READ bytes). Measured: bench/journal_ingest.py.
_PIPE: Final = 1 << 20
MAIL: Final = ("postfix", "exim")
NET: Final = ("sshd", "dovecot", "netfilter")
_PARSE: Final = {"sshd": sshd.parse, "dovecot": dovecot.parse, "netfilter": netfilter.parse}


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def route(identifier: str, unit: str, message: str = "") -> str:
    """Return the parser for one entry: sshd, postfix, exim, dovecot, netfilter, or "" (none)."""
    ident = identifier.lower()
    if ident in ("sshd", "sshd-session") or unit.startswith(("ssh.service", "sshd.service", "sshd@", "ssh@")):  # fmt: skip
        return "sshd"
    if ident.startswith("postfix") or unit.startswith("postfix"):
        return "postfix"
    if ident == "dovecot" or ident.endswith("-login") or unit.startswith("dovecot"):
        return "dovecot"
    if ident in ("exim", "exim4") or unit.startswith("exim"):
        return "exim"
    if ident == "kernel" and " IN=" in message and " OUT=" in message:
        return "netfilter"
    return ""


#: The sshd events ``sshd.SCAN`` finds (attempts and scanners' marks), and all of sshd's.
_SCANNED: Final = sshd.ATTEMPTS | sshd.SCANS
_SSHD_EVENTS: Final = frozenset(event for event, _ in sshd.MESSAGES)


def sshd_scan_suffices(settings: NetSettings) -> bool:
    """True when every scenario that counts an sshd event counts only what ``sshd.SCAN`` finds.

    Then the block scan and ``NetDetector.attempt`` have the effect of parsing every line and
    observing it (the default scenarios); a scenario of another sshd event (a PID-attributed
    ``pam_check_pass``, say), an amount or a distinct field other than the user needs the parser.
    """
    for scenario in settings.scenarios:
        ours = scenario.tags & _SSHD_EVENTS
        if ours and (
            not ours <= _SCANNED or scenario.amount or scenario.distinct not in ("", "user")
        ):
            return False
    return True


@dataclass(frozen=True, slots=True)
class JournalSettings:
    """``[sources.journal]``: which units (all when empty) and which journal to read."""

    units: tuple[str, ...] = ()
    files: tuple[Path, ...] = ()  # journal files (``journalctl --file``); default: the system's
    directory: Path | None = None  # a journal directory (``journalctl --directory``)
    source: str = SOURCE
    journalctl: str = "journalctl"


def journal_settings(extra: dict[str, Any], base: Path) -> JournalSettings | None:
    """Return ``[sources.journal]`` of the config's extra sections, or None when it is absent."""
    sources = extra.get("sources", {})
    raw = sources.get("journal") if isinstance(sources, dict) else None
    if raw is None:
        return None
    where = "[sources.journal]"
    if not isinstance(raw, dict):
        raise ConfigError(f'{where} must be a table, e.g. units = ["ssh.service"]')
    known = {"units", "files", "directory", "source", "journalctl"}
    if set(raw) - known:
        raise ConfigError(f"{where} unknown key(s) {sorted(set(raw) - known)}; known: {', '.join(sorted(known))}")  # fmt: skip
    for key in ("units", "files"):
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f'{where} {key} must be a list of names, e.g. {key} = ["ssh.service"]')  # fmt: skip
    directory = raw.get("directory")
    return JournalSettings(
        units=tuple(raw.get("units", [])),
        files=tuple((base / f).resolve() for f in raw.get("files", [])),
        directory=(base / str(directory)).resolve() if directory else None,
        source=str(raw.get("source", SOURCE)),
        journalctl=str(raw.get("journalctl", "journalctl")),
    )


def command(settings: JournalSettings, cursor: str | None, *, follow: bool) -> list[str]:
    """Return the ``journalctl`` command line that reads the entries after *cursor*."""
    argv = [settings.journalctl, "--output=export", f"--output-fields={FIELDS}", "--no-pager"]
    for path in settings.files:
        argv.append(f"--file={path}")
    if settings.directory is not None:
        argv.append(f"--directory={settings.directory}")
    for unit in settings.units:
        argv.append(f"--unit={unit}")
    if cursor:
        argv.append(f"--after-cursor={cursor}")
    if follow:
        argv += ["--follow", "--no-tail"]
    return argv


@dataclass(slots=True)
class JournalRun:
    """One pass over journal entries: route, parse, detect, count (the journal's MailRun)."""

    params: MailParams
    net: NetSettings
    now: datetime
    source: str = SOURCE
    entries: int = 0  # entries read since the journal's first (all runs: a resumed run goes on)
    first: int = 0  # entries before this run (the saved position)
    cursor: str = ""
    routed: Counter[str] = field(default_factory=Counter)
    unrouted: int = 0
    bad: int = 0
    #: sshd's PID -> client address across batches and runs (saved with the cursor)
    sessions: sshd.Sessions = field(default_factory=sshd.Sessions)
    #: by format, the lines added since the last flush and (network formats) their entry numbers
    _pending: dict[str, tuple[list[bytes], list[int]]] = field(default_factory=dict)
    _cursor: bytes = b""  # the newest entry's cursor, not decoded yet
    _mail: dict[str, MailRun] = field(default_factory=dict)
    _net: dict[str, NetDetector] = field(default_factory=dict)
    _stamps: dict[bytes, tuple[bytes, bytes]] = field(default_factory=dict)  # by second's digits
    _seconds: dict[bytes, float] = field(default_factory=dict)  # those stamps' times (sshd scan)
    _routes: dict[tuple[bytes, bytes], str] = field(default_factory=dict)
    _clock: TimeParser = field(init=False)
    _sshd_scan: bool = field(init=False)  # sshd lines by the block scan (see sshd_scan_suffices)

    def __post_init__(self) -> None:
        self._clock = TimeParser(self.now)
        self._sshd_scan = sshd_scan_suffices(self.net)
        for fmt in MAIL:
            self._mail[fmt] = MailRun(self.params, TimeParser(self.now), self.source, fmt)
        for fmt in NET:
            self._net[fmt] = NetDetector(self.net, source=f"{self.source}:{fmt}")

    def add(self, entry: dict[bytes, bytes]) -> None:
        """Take one entry of ``journalctl --output=export`` (field name to raw value)."""
        self.add_entries((entry,))

    def add_entries(self, entries: Sequence[dict[bytes, bytes]]) -> None:
        """Take entries of ``journalctl --output=export`` in the journal's order."""
        # The hot loop of `ingest journal` (bench/journal_ingest.py): one call per chunk of
        # journalctl's output, not per entry, with what it uses held in locals. Nothing is
        # decoded here: routes are cached per raw (identifier, unit), the line is built in
        # bytes, and each batch's lines are decoded in one call at flush (UTF-8 decoding with
        # "replace" gives the same text line by line or joined: a newline is never part of a
        # multi-byte sequence). The cursor is decoded when it is saved.
        for entry in reversed(entries):
            cursor = entry.get(b"__CURSOR")
            if cursor:
                self._cursor = cursor
                break
        routes, stamps_of, pending_of = self._routes, self._stamps, self._pending
        routed = self.routed
        number = self.entries
        unrouted = 0
        for entry in entries:
            number += 1
            get = entry.get
            ident = get(b"SYSLOG_IDENTIFIER", b"")
            unit = get(b"_SYSTEMD_UNIT", b"")
            fmt = routes.get((ident, unit))
            if fmt is None:
                fmt = route(_text(ident), _text(unit))
                if len(routes) < 10_000:
                    routes[(ident, unit)] = fmt
            message = get(b"MESSAGE", b"")
            if not fmt:
                if ident == b"kernel":
                    fmt = route("kernel", _text(unit), _text(message))
                if not fmt:
                    unrouted += 1
                    continue
            routed[fmt] += 1
            usec = get(b"__REALTIME_TIMESTAMP", b"0")
            # Cached per second, keyed by the value's digits before the last six (the
            # microseconds): journalctl writes a decimal number here; anything else is parsed
            # in full (and counted as unreadable when it is not a number).
            stamps = stamps_of.get(usec[:-6])
            if stamps is None or not usec[-6:].isdigit():
                stamps = self._stamps_at(usec)
                if stamps is None:
                    self.bad += 1
                    continue
            pending = pending_of.get(fmt)
            if pending is None:
                pending = pending_of[fmt] = ([], [])
            if fmt == "exim":
                line = stamps[1] + message
            else:
                pid = get(b"SYSLOG_PID") or get(b"_PID")
                tag = ident or fmt.encode()
                if pid:
                    if not pid.isascii():  # read as ASCII: each other byte is one U+FFFD
                        pid = pid.decode("ascii", "replace").encode()
                    line = b"%s%s %s[%s]: %s" % (stamps[0], get(b"_HOSTNAME", b"-"), tag, pid, message)  # fmt: skip
                else:
                    line = b"%s%s %s: %s" % (stamps[0], get(b"_HOSTNAME", b"-"), tag, message)
            if b"\n" in line:  # a multi-line message (a binary field) is one line
                line = line.replace(b"\n", b" ")
            pending[0].append(line)
            if fmt not in MAIL:
                pending[1].append(number)
        self.entries = number
        self.unrouted += unrouted

    def _stamps_at(self, usec: bytes) -> tuple[bytes, bytes] | None:
        """Return the line stamps (syslog's, Exim's) of a ``__REALTIME_TIMESTAMP``; None if unreadable."""
        try:
            second = int(usec) // 1_000_000
            at = datetime.fromtimestamp(second, UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            return None
        iso = at.strftime("%Y-%m-%dT%H:%M:%S").encode()
        stamps = (iso + b"Z ", iso.replace(b"T", b" ") + b" +0000 ")
        if len(usec) > 6 and usec.isdigit():
            if len(self._stamps) > 100_000:
                self._stamps.clear()
                self._seconds.clear()
            self._stamps[usec[:-6]] = stamps
            self._seconds[iso + b"Z"] = float(second)
        return stamps

    def flush(self, *, final: bool = False) -> list[Evidence]:
        """Parse and detect what was added since the last flush; return the evidence it completed."""
        out: list[Evidence] = []
        pending, self._pending = self._pending, {}
        self._sync_cursor()
        for fmt, (raw, entry_no) in pending.items():
            text = (
                ""
                if fmt == "sshd" and self._sshd_scan
                else b"\n".join(raw).decode("utf-8", "replace")
            )
            if fmt in MAIL:
                run = self._mail[fmt]
                out += run.detect(text + "\n", f"journal:{fmt}", 1, fmt)
            elif fmt == "sshd" and self._sshd_scan:
                self._scan_sshd(raw, entry_no, self._net[fmt])
                out += self._net[fmt].take()
            elif fmt == "dovecot":
                detector = self._net[fmt]
                observe = detector.observe_fields
                for index, ts, event, ip, fields, line in dovecot.understood(
                    text.split("\n"), self._clock
                ):
                    observe(event, ts, ip, entry_no[index], line, fields)
                out += detector.take()
            else:
                detector = self._net[fmt]
                # the lines were built in the canonical envelope: no rewriting needed
                for item in self._parse(fmt, text.split("\n")):
                    if isinstance(item, NetEvent):
                        # The entry's number in the journal, not in this batch: the same
                        # evidence however the entries were batched (resumed runs too). Set
                        # in place: the event was made just now and is not shared (measured:
                        # dataclasses.replace took a sixth of the journal's Python time).
                        object.__setattr__(item, "line", entry_no[item.line - 1])
                        detector.observe(item)
                out += detector.take()
        for fmt in MAIL:
            run = self._mail[fmt]
            if final:
                out += run.finish()
            elif run.detector.now:
                out += run.finish(
                    until=run.detector.now - run.params.harvest.window.total_seconds()
                )
        return out

    def _parse(self, fmt: str, lines: list[str]) -> Iterator[NetEvent | NetLine]:
        """Run the network parser *fmt* over *lines* (sshd with the journal's session memory)."""
        if fmt == "sshd":
            return sshd.parse(lines, now=self.now, envelope=False, sessions=self.sessions)
        return _PARSE[fmt](lines, now=self.now, envelope=False)

    def _scan_sshd(self, raw: list[bytes], entry_no: list[int], detector: NetDetector) -> None:
        """Pour a batch's sshd lines into *detector* by the block scan (``ingest netlog``'s path).

        One ``sshd.SCAN`` pass over the joined lines: only attempts and scanners' marks cost
        Python work, the same effect as parsing every line and observing its event when the
        scenarios count nothing else of sshd's (``_sshd_scan``; measured:
        bench/journal_ingest.py). Addresses and users are given as text, as ``observe`` keys
        them, so buckets restored from a saved state (text keys) go on counting.
        """
        block = b"\n" + b"\n".join(raw)
        meaning, unknown, attempt, clock = (
            sshd.SCAN_EVENTS,
            sshd.SCAN_UNKNOWN,
            detector.attempt,
            self._clock,
        )
        count, seconds = block.count, self._seconds
        seen = last = 0
        stamp = b""
        ts: float | None = None
        for found in sshd.SCAN.finditer(block):
            g: int = found.lastindex  # type: ignore[assignment]  # every branch ends with a group
            if g >= unknown:
                continue
            if found[1] != stamp:
                stamp = found[1]
                ts = seconds.get(stamp)  # the stamps this run wrote; else (not kept) parsed
                if ts is None:
                    ts = clock(stamp.decode("ascii", "replace"))
            if ts is None:
                continue
            event, user_group = meaning[g]
            user = found[user_group].decode("utf-8", "replace") if user_group else ""
            # text keys, as observe's (the detector's bucket tables take str or bytes)
            entry = attempt(event, ts, found[g].decode("ascii"), user)  # type: ignore[arg-type]
            if entry is not None:  # a sample: its entry number and text
                pos = found.start()
                seen += count(b"\n", last, pos + 1)
                last = pos + 1
                entry[0] = entry_no[seen - 1]
                entry[1] = found[0][1:].decode("utf-8", "replace")

    def _sync_cursor(self) -> None:
        if self._cursor:
            self.cursor = self._cursor.decode("ascii", "replace")
            self._cursor = b""

    def state(self) -> str:
        """Return the cursor and the mail detectors' windows as JSON (saved with the evidence)."""
        self._sync_cursor()
        return json.dumps(
            {
                "cursor": self.cursor,
                **{fmt: self._mail[fmt].detector.state() for fmt in MAIL},
                **{fmt: self._net[fmt].state() for fmt in NET},
                "sshd_sessions": self.sessions.state(),
            }
        )

    def restore(self, saved: str | None) -> None:
        """Load what :meth:`state` saved (the cursor and the windows)."""
        if not saved:
            return
        data = json.loads(saved)
        if isinstance(data, dict):
            self.cursor = str(data.get("cursor", ""))
            for fmt in MAIL:
                if isinstance(data.get(fmt), dict):
                    self._mail[fmt].detector.restore(data[fmt])
            for fmt in NET:
                if isinstance(data.get(fmt), list):
                    self._net[fmt].restore(data[fmt])
            self.sessions.restore(data.get("sshd_sessions"))

    @property
    def read(self) -> int:
        """Entries read by this run."""
        return self.entries - self.first

    @property
    def by_cause(self) -> Counter[str]:
        """Evidence made, by cause (mail and network detectors)."""
        total: Counter[str] = Counter()
        for run in self._mail.values():
            total.update(run.by_cause)
        for detector in self._net.values():
            total["compromised"] += sum(detector.by_scenario.values())
        return total


def _chunks(
    proc: subprocess.Popen[bytes], idle: float, *, follow: bool = True
) -> Iterator[bytes | None]:
    """Yield journalctl's output as it comes; None after *idle* seconds without any (following).

    Not following, each chunk is a full read (``_READ`` bytes but the last): reading what
    journalctl has flushed so far gave 4 KiB chunks whenever the reader kept up, and a
    Python-side cost per chunk (measured: bench/journal_ingest.py).
    """
    assert proc.stdout is not None  # Popen(stdout=PIPE) always has it
    if not follow:
        read = proc.stdout.read
        while data := read(_READ):
            yield data
        return
    fd = proc.stdout.fileno()
    while True:
        ready, _, _ = select.select([fd], [], [], idle)
        if not ready:
            yield None
            continue
        data = os.read(fd, _READ)
        if not data:
            return
        yield data


def export_entries(chunks: Iterable[bytes | None]) -> Iterator[dict[bytes, bytes] | None]:
    """Yield the entries of the journal export format read in *chunks* (None passed through)."""
    for entries in export_batches(chunks):
        if entries is None:
            yield None
        else:
            yield from entries


def export_batches(chunks: Iterable[bytes | None]) -> Iterator[list[dict[bytes, bytes]] | None]:
    """Yield the entries of the journal export format read in *chunks*, a list per chunk (None passed through).

    systemd's Journal Export Format: ``NAME=value`` lines, or for a value that is not
    printable text ``NAME``, a newline, its size as 64-bit little-endian, the bytes and a
    newline; a blank line ends an entry.

    A chunk's whole entries of text fields only (nearly all chunks) are made into dicts by C
    code alone: the text up to its last blank line split at blank lines, each piece
    ``dict(map(split, lines))``. A line without ``=`` (a binary field's name, whose value may
    hold blank lines, or a stray blank line) makes that fail with ValueError: that chunk is
    read entry by entry instead (:func:`_entries_in`). Measured: bench/journal_ingest.py.
    """
    buf = b""
    split, eq, once = bytes.split, _EQ, _ONCE
    for data in chunks:
        if data is None:
            yield None
            continue
        buf = buf + data if buf else data
        end = buf.rfind(b"\n\n")
        if end < 0:
            continue
        try:
            got = [
                dict(map(split, piece.split(b"\n"), eq, once)) for piece in buf[:end].split(b"\n\n")
            ]
        except ValueError:  # a binary field, or blank lines: entry by entry
            got, pos = _entries_in(buf)
            buf = buf[pos:]
        else:
            buf = buf[end + 2 :]
        if got:
            yield got
    if buf:
        found = _entry_at(buf, 0, final=True)
        if found is not None and found[0]:
            yield [found[0]]


def _entries_in(buf: bytes) -> tuple[list[dict[bytes, bytes]], int]:
    """Return the whole entries at the start of *buf* and where the first unfinished one starts."""
    got: list[dict[bytes, bytes]] = []
    split = _SPLIT_FIELD
    pos = 0
    while True:
        end = buf.find(b"\n\n", pos)
        if end < 0:
            return got, pos
        try:
            entry = dict(map(split, buf[pos:end].split(b"\n")))
        except ValueError:  # a binary field, or blank lines: field by field
            found = _entry_at(buf, pos, final=False)
            if found is None:
                return got, pos  # the entry goes on in the next chunk
            entry, pos = found
            if entry:
                got.append(entry)
            continue
        pos = end + 2
        got.append(entry)


_SPLIT_FIELD: Final = methodcaller("split", b"=", 1)
#: ``map(bytes.split, lines, _EQ, _ONCE)`` is ``line.split(b"=", 1)`` for each line, a fifth
#: cheaper than the methodcaller (measured on bench/journal_ingest.py's export output); the
#: endless repeats are shared, map stops at the end of the lines.
_EQ: Final = repeat(b"=")
_ONCE: Final = repeat(1)


def _entry_at(buf: bytes, pos: int, *, final: bool) -> tuple[dict[bytes, bytes], int] | None:
    """Return the entry that starts at *pos* and where the next starts, field by field.

    A blank line at *pos* gives an empty entry. None when the entry's end has not arrived yet;
    with *final* (the input ended) the fields read up to there make the entry.
    """
    entry: dict[bytes, bytes] = {}
    size = len(buf)
    while True:
        nl = buf.find(b"\n", pos)
        if nl < 0:
            return (entry, size) if final else None
        if nl == pos:  # a blank line ends the entry
            return entry, nl + 1
        eq = buf.find(b"=", pos, nl)
        if eq >= 0:
            entry[buf[pos:eq]] = buf[eq + 1 : nl]
            pos = nl + 1
            continue
        end = nl + 9 + int.from_bytes(buf[nl + 1 : nl + 9], "little") if nl + 9 <= size else -1
        if end < 0 or end + 1 > size:  # a binary field whose bytes have not all arrived
            return (entry, size) if final else None
        entry[buf[pos:nl]] = buf[nl + 9 : end]
        pos = end + 1


def ingest_journal(
    run: JournalRun,
    settings: JournalSettings,
    store: PositionStore | None,
    *,
    follow: bool = False,
    batch: int = BATCH,
    idle: float = 0.5,
    should_stop: Callable[[], bool] = lambda: False,
    on_commit: Callable[[int, int], None] | None = None,
) -> int:
    """Read the journal after the saved cursor through *run*; return the evidence stored.

    Without a *store* (a dry run) nothing is saved and the reading starts at the beginning.
    Every *batch* entries — and, when following, whenever journalctl has been quiet for
    *idle* seconds — the evidence and the new cursor are committed together.
    """
    name = f"{settings.source}:{','.join(settings.units) or '*'}"
    saved = store.source_position(name) if store is not None else None
    if saved is not None:
        run.restore(saved.state)
        run.entries = run.first = saved.offset
    argv = command(settings, run.cursor or None, follow=follow)
    try:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )  # our own argv
    except OSError as exc:
        raise InputError(
            f"cannot run {settings.journalctl}: {exc.strerror or exc}; install systemd's journalctl"
            " or set [sources.journal] journalctl"
        ) from exc
    assert proc.stdout is not None  # stdout=PIPE
    with contextlib.suppress(OSError):  # above /proc/sys/fs/pipe-max-size: the default pipe
        fcntl.fcntl(proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, _PIPE)
    stored = 0
    since = 0
    committed = run.entries

    def commit(final: bool) -> None:
        nonlocal stored, since, committed
        evidence = run.flush(final=final)
        if store is not None:
            position = Position(name, 0, 0, "journal", run.entries, run.entries, run.state())
            added = store.commit_source(position, evidence)
            stored += added
            if on_commit is not None:
                on_commit(run.entries, added)
        since = 0
        committed = run.entries

    try:
        for read in export_batches(_chunks(proc, idle, follow=follow)):
            if read is None:
                if run.entries != committed:
                    commit(False)
                if should_stop():
                    break
                continue
            stop = False
            entries = read
            while entries:  # a batch ends at exactly *batch* entries: cut the chunk there
                room = batch - since
                if len(entries) > room:
                    part, entries = entries[:room], entries[room:]
                else:
                    part, entries = entries, []
                run.add_entries(part)
                since += len(part)
                if since >= batch:
                    commit(False)
                    if should_stop():
                        stop = True
                        break
            if stop:
                break
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            _, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    if proc.returncode not in (0, -15, None) and not follow:
        message = err.decode("utf-8", "replace").strip().splitlines()
        raise InputError(f"journalctl failed: {message[-1] if message else proc.returncode}")
    commit(not follow)
    return stored


async def follow_journal(config: Any, store_factory: Callable[[], Any], stop: Any) -> None:
    """Follow ``[sources.journal]`` until *stop* (an asyncio.Event) is set (the `serve` hook)."""
    import asyncio  # only serve needs it

    from reputable.evidence.detectors.netconfig import net_settings
    from reputable.evidence.sources.maillog import config_params

    settings = journal_settings(config.extra, config.path.parent if config.path else Path.cwd())
    if settings is None:
        return
    store = store_factory()
    try:
        while not stop.is_set():
            run = JournalRun(config_params(config), net_settings(config.extra), datetime.now(UTC), settings.source)  # fmt: skip
            log.info("journal_following", units=list(settings.units))
            try:
                await asyncio.to_thread(
                    ingest_journal, run, settings, store, follow=True, should_stop=stop.is_set
                )
            except InputError as exc:
                log.error("journal_follow_failed", error=str(exc))
            if (
                not stop.is_set()
            ):  # journalctl ended (rotation, a restart): start again after a pause
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 5)
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()

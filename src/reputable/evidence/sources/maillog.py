"""Mail logs in: batch files (plain or .gz) and followed files, through the parsers and detectors.

``follow_maillogs`` is the hook `serve` runs: it follows every path of ``[sources.maillog]``
and commits evidence with the file position (see sources/follow.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reputable.core import log
from reputable.core.errors import ConfigError, InputError, ReputableError
from reputable.evidence.detectors.mail import MailDetector
from reputable.evidence.detectors.mail_config import MailParams, mail_params
from reputable.evidence.model import Evidence
from reputable.evidence.parsers.mailevent import Event, MailEvent
from reputable.evidence.parsers.maillog import PARSERS, Tally, sniff
from reputable.evidence.parsers.syslog_time import TimeParser
from reputable.evidence.sources.follow import Follower, PositionStore

CHUNK_BYTES: Final = 4 << 20
SOURCE: Final = "maillog"
#: The events the detectors use; --dry-run asks for every event instead.
DETECT_EVENTS: Final = frozenset(
    {
        Event.QUEUED,
        Event.DISCONNECT,
        Event.UNKNOWN_RECIPIENT,
        Event.RELAY_DENIED,
        Event.RBL_REJECT,
        Event.REJECTED,
        Event.AUTH_FAILURE,
        Event.LOST_CONNECTION,
        Event.PREGREET,
        Event.PIPELINING,
    }
)
TRAP_EVENTS: Final = DETECT_EVENTS | {Event.DELIVERED}


@dataclass(frozen=True, slots=True)
class MaillogSettings:
    """``[sources.maillog]``: what serve follows and how timestamps are read."""

    paths: tuple[Path, ...] = ()
    format: str = "auto"  # auto, postfix or exim
    timezone: tzinfo = UTC  # zone of timestamps that carry none (syslog, Exim)
    poll: float = 1.0  # seconds between looks at a followed file
    source: str = SOURCE


def maillog_settings(extra: dict[str, Any], base: Path) -> MaillogSettings:
    """Return ``[sources.maillog]`` from the config's extra sections (defaults when absent)."""
    sources = extra.get("sources", {})
    raw = sources.get("maillog", {}) if isinstance(sources, dict) else None
    if not isinstance(raw, dict):
        raise ConfigError("[sources.maillog] must be a table")
    unknown = set(raw) - {"paths", "format", "timezone", "poll", "source"}
    if unknown:
        raise ConfigError(
            f"[sources.maillog] unknown key(s) {sorted(unknown)}; known: paths, format, timezone, poll, source"
        )
    paths = raw.get("paths", [])
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise ConfigError(
            '[sources.maillog] paths must be a list of file names, e.g. ["/var/log/mail.log"]'
        )
    fmt = str(raw.get("format", "auto"))
    if fmt != "auto" and fmt not in PARSERS:
        raise ConfigError(f"[sources.maillog] format {fmt!r}: use auto, {', '.join(PARSERS)}")
    try:
        zone: tzinfo = (
            UTC if raw.get("timezone", "UTC") == "UTC" else ZoneInfo(str(raw["timezone"]))
        )
        poll = float(raw.get("poll", 1.0))
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"[sources.maillog] {exc}; timezone is an IANA name like Europe/Berlin"
        ) from exc
    return MaillogSettings(
        tuple((base / p).resolve() for p in paths),
        fmt,
        zone,
        max(poll, 0.05),
        str(raw.get("source", SOURCE)),
    )


def read_chunks(path: Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[str]:
    """Yield the text of *path* (``.gz`` too) in pieces of about *chunk_bytes* that end at line ends.

    One buffer is filled again and again (after the previous piece's unfinished line) and
    decoded in place: no new 4 MB of bytes per piece (measured, ~40% less time in here).
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        f = opener(path, "rb")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    with f:
        buf = bytearray(chunk_bytes)
        view = memoryview(buf)
        have = 0  # bytes at the start of buf: the end of the last piece's last, unfinished line
        while True:
            if have == len(buf):  # one line longer than the buffer: make room
                view.release()
                buf.extend(bytes(len(buf)))
                view = memoryview(buf)
            try:
                n = f.readinto(view[have:])
            except (OSError, EOFError) as exc:
                raise InputError(f"cannot read {path}: {exc}") from exc
            if not n:
                break
            end = have + n
            cut = buf.rfind(b"\n", 0, end) + 1
            if cut == 0:
                have = end
                continue
            yield str(view[:cut], "utf-8", "replace")
            rest = bytes(view[cut:end])
            buf[: len(rest)] = rest
            have = len(rest)
        if have:
            yield str(view[:have], "utf-8", "replace") + "\n"


def first_time(path: Path, times: TimeParser) -> float:
    """Return the time of the first dated line of *path* (for ordering rotated files), else +inf."""
    for chunk in read_chunks(path, 1 << 16):
        for line in chunk.splitlines()[:50]:
            head = (
                line[:15]
                if not line[:1].isdigit()
                else line.split(" ", 2)[0]
                + (" " + line.split(" ", 2)[1] if line[4:5] == "-" and line[10:11] == " " else "")
            )
            at = times(head)
            if at is not None:
                return at
        break
    return float("inf")


@dataclass(slots=True)
class MailRun:
    """One pass over mail logs: parse, detect, and count everything for the summary."""

    params: MailParams
    times: TimeParser
    source: str = SOURCE
    fmt: str = "auto"
    wanted: frozenset[Event] = DETECT_EVENTS
    tally: Tally = field(default_factory=Tally)
    by_cause: Counter[str] = field(default_factory=Counter)
    by_ip: Counter[str] = field(default_factory=Counter)
    detector: MailDetector = field(init=False)

    def __post_init__(self) -> None:
        self.detector = MailDetector(self.params, self.source)
        if self.params.traps.addresses or self.params.traps.domains:
            self.wanted = self.wanted | TRAP_EVENTS

    def events(self, text: str, where: str, first_line: int, fmt: str) -> Iterator[MailEvent]:
        """Yield the wanted events of *text* and count its lines and events."""
        self.tally.count_lines(text, fmt, where, first_line)
        events = self.tally.events
        for ev in PARSERS[fmt](text, first_line=first_line, times=self.times, wanted=self.wanted):
            events[ev.event.value] += 1
            yield ev

    def detect(self, text: str, where: str, first_line: int, fmt: str) -> list[Evidence]:
        """Return the evidence completed by the lines of *text* (events are not tallied here)."""
        self.tally.count_lines(text, fmt, where, first_line)
        events = PARSERS[fmt](
            text, first_line=first_line, times=self.times, wanted=self.wanted, number=False
        )
        return self._count(self.detector.feed(events))

    def finish(self, until: float | None = None) -> list[Evidence]:
        """Close the windows that ended by *until* (all when None); return their evidence."""
        return self._count(self.detector.flush(until))

    def _count(self, items: list[Evidence]) -> list[Evidence]:
        for item in items:
            self.by_cause[item.cause.value] += 1
            self.by_ip[str(item.subject)] += 1
        return items

    def format_of(self, first_chunk: str) -> str:
        """Return the configured format, or the one sniffed from *first_chunk*."""
        return self.fmt if self.fmt != "auto" else sniff(first_chunk)


def ingest_files(run: MailRun, paths: list[Path], sink: Callable[[list[Evidence]], int]) -> int:
    """Read *paths* oldest first through *run*, handing evidence to *sink*; return how many were stored."""
    ordered = sorted(paths, key=lambda p: first_time(p, run.times))
    stored = 0
    for path in ordered:
        line = 1
        fmt = ""
        for chunk in read_chunks(path):
            fmt = fmt or run.format_of(chunk)
            before = run.tally.read
            stored += sink(run.detect(chunk, str(path), line, fmt))
            line += run.tally.read - before  # the tally counted the chunk's lines already
    return stored + sink(run.finish())


def _follow_once(
    follower: Follower, run: MailRun, fmt: str, *, idle_until: float | None = None
) -> tuple[int, str]:
    """Read what is new in one followed file; commit each batch with its evidence and state.

    Windows close by the log's own time while lines arrive; when nothing new came, the ones
    that ended before *idle_until* (wall-clock time minus the window, in `serve`) close too.
    """
    detector = run.detector
    added = 0
    window = run.params.harvest.window.total_seconds()
    read = False
    for batch in follower.batches():
        read = True
        fmt = fmt or run.format_of(batch.text)
        evidence = run.detect(batch.text, str(batch.path), batch.first_line, fmt)
        evidence += run.finish(until=detector.now - window)
        added += follower.commit(batch, evidence, state=json.dumps(detector.state()))
    if not read and idle_until is not None:
        evidence = run.finish(until=idle_until)
        if evidence:
            added += follower.save(evidence, state=json.dumps(detector.state()))
    return added, fmt


async def follow_maillogs(
    config: Any, store_factory: Callable[[], PositionStore], stop: asyncio.Event
) -> None:
    """Follow every ``[sources.maillog]`` path until *stop* is set (the `serve` hook)."""
    settings = maillog_settings(config.extra, config.path.parent if config.path else Path.cwd())
    if not settings.paths:
        return
    params = mail_params(config.extra)
    store = store_factory()
    try:
        followers = []
        for path in settings.paths:
            name = f"{settings.source}:{path}"
            follower = Follower(path, store, name)
            run = MailRun(
                params,
                TimeParser(datetime.now(UTC), settings.timezone),
                settings.source,
                settings.format,
            )
            if (
                follower.position is not None
                and follower.position.state
                and run.detector is not None
            ):
                run.detector.restore(json.loads(follower.position.state))
            followers.append((follower, run, "" if settings.format == "auto" else settings.format))
        log.info("maillog_following", paths=[str(p) for p in settings.paths])
        while not stop.is_set():
            for i, (follower, run, known) in enumerate(followers):
                run.times = TimeParser(datetime.now(UTC), settings.timezone)
                try:
                    idle = time.time() - params.harvest.window.total_seconds()
                    added, fmt = await asyncio.to_thread(
                        _follow_once, follower, run, known, idle_until=idle
                    )
                    followers[i] = (follower, run, fmt)
                    if added:
                        log.info("maillog_evidence", path=str(follower.path), added=added)
                except ReputableError as exc:
                    log.error("maillog_follow_failed", path=str(follower.path), error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.poll)
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()

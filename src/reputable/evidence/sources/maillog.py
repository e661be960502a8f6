"""Mail logs in: batch files (plain or .gz) and followed files, through the parsers and detectors.

``follow_logs`` is the one follow path: `serve` runs it through ``follow_maillogs`` for the
paths of ``[sources.maillog]``, `ingest maillog --follow` for its arguments. It commits evidence
with the file position and the detectors' windows, and resumes from both (see sources/follow.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reputable.core import log
from reputable.core.errors import ConfigError, ReputableError
from reputable.evidence.detectors.mail import MailDetector
from reputable.evidence.detectors.mail_config import MailParams, mail_params
from reputable.evidence.model import Evidence
from reputable.evidence.parsers.envelope import normalize
from reputable.evidence.parsers.mailevent import Event, MailEvent
from reputable.evidence.parsers.maillog import PARSERS, Tally, sniff
from reputable.evidence.parsers.syslog_time import TimeParser
from reputable.evidence.sources.follow import CHUNK_BYTES as FOLLOW_CHUNK_BYTES
from reputable.evidence.sources.follow import Follower, PositionStore
from reputable.evidence.sources.inputs import label, read_chunks

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
        Event.PROTOCOL_VIOLATION,
        Event.RDNS_MISMATCH,
        # no detector's, but rare: parsing them costs less than counting them by their text
        # over every buffer (a batch ingest counts the others, see postfix._LITERALS)
        Event.HANGUP,
        Event.BLOCKED,
    }
)
#: With spam traps: deliveries (trap hits on accepted mail) and their senders (qmgr from=<>).
TRAP_EVENTS: Final = DETECT_EVENTS | {Event.DELIVERED, Event.MESSAGE}


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


def config_params(config: Any) -> MailParams:
    """Return the mail-detector parameters of *config*, its own DNSBL zones named (never evidence)."""
    own = (
        zone.name
        for zone in (
            getattr(config, "ip_zone", None),
            getattr(config, "domain_zone", None),
            getattr(config, "allow_zone", None),
        )
        if zone is not None
    )
    return mail_params(config.extra, own)


def first_time(text: str, times: TimeParser) -> float:
    """Return the time of the first dated line of *text* (for ordering rotated files), else +inf."""
    for line in normalize(text[: 1 << 16]).splitlines()[:50]:
        head = (
            line[:15]
            if not line[:1].isdigit()
            else line.split(" ", 2)[0]
            + (" " + line.split(" ", 2)[1] if line[4:5] == "-" and line[10:11] == " " else "")
        )
        at = times(head)
        if at is not None:
            return at
    return float("inf")


@dataclass(slots=True)
class MailRun:
    """One pass over mail logs: parse, detect, and count everything for the summary."""

    params: MailParams
    times: TimeParser
    source: str = SOURCE
    fmt: str = "auto"
    wanted: frozenset[Event] = DETECT_EVENTS
    #: Count every line's event for the summary (``understood``); following shows no summary
    #: and skips it (it costs the full pattern: docs/benchmarks.md, Mail logs).
    account: bool = True
    tally: Tally = field(default_factory=Tally)
    by_cause: Counter[str] = field(default_factory=Counter)
    by_ip: Counter[str] = field(default_factory=Counter)
    detector: MailDetector = field(init=False)

    def __post_init__(self) -> None:
        self.detector = MailDetector(self.params, self.source)
        if self.params.traps.addresses or self.params.traps.domains:
            self.wanted = self.wanted | TRAP_EVENTS

    def events(self, text: str, where: str, first_line: int, fmt: str) -> Iterator[MailEvent]:
        """Yield the wanted events of *text* (format *fmt*, "" when not known) and count its lines."""
        self.tally.count_lines(text, fmt, where, first_line)
        if fmt:
            yield from PARSERS[fmt](
                text, first_line=first_line, times=self.times, wanted=self.wanted,
                counts=self.tally.events,
            )  # fmt: skip

    def detect(self, text: str, where: str, first_line: int, fmt: str) -> list[Evidence]:
        """Return the evidence completed by the lines of *text* (format *fmt*, "" when not known)."""
        self.tally.count_lines(text, fmt, where, first_line)
        if not fmt:
            return []
        events = PARSERS[fmt](
            text, first_line=first_line, times=self.times, wanted=self.wanted, number=False,
            counts=self.tally.events if self.account else None,
        )  # fmt: skip
        return self._count(self.detector.feed(events))

    def finish(self, until: float | None = None) -> list[Evidence]:
        """Close the windows that ended by *until* (all when None); return their evidence."""
        return self._count(self.detector.flush(until))

    def _count(self, items: list[Evidence]) -> list[Evidence]:
        for item in items:
            self.by_cause[item.cause.value] += 1
            self.by_ip[str(item.subject)] += 1
        return items

    def format_of(self, text: str) -> str:
        """Return the configured format, or the one sniffed from *text* ("" when it has no line of one)."""
        return self.fmt if self.fmt != "auto" else sniff(text)


def ingest_files(run: MailRun, paths: list[Path], sink: Callable[[list[Evidence]], int]) -> int:
    """Read *paths* oldest first through *run*, handing evidence to *sink*; return how many were stored.

    Each input is read exactly once (a pipe, a FIFO or ``-`` too): the first piece of every
    input is read to order them by their first timestamp, then each goes on from there.
    """
    opened = []
    for path in paths:
        chunks = read_chunks(path)
        first = next(chunks, "")
        opened.append((first_time(first, run.times), path, first, chunks))
    opened.sort(key=lambda item: item[0])  # stable: inputs with no date keep their order
    stored = 0
    for _, path, first, rest in opened:
        line = 1
        fmt = ""
        where = label(path)
        for chunk in itertools.chain((first,), rest):
            if not chunk:
                continue
            fmt = fmt or run.format_of(chunk)
            before = run.tally.read
            stored += sink(run.detect(chunk, where, line, fmt))
            line += run.tally.read - before  # the tally counted the chunk's lines already
    return stored + sink(run.finish())


class FollowedLog:
    """One followed mail log: its follower, a run whose windows are those saved with its position,
    and its format ("" until the first Postfix or Exim line arrives).

    The one follow path of `serve` and `ingest maillog --follow` (:func:`follow_logs`).
    """

    def __init__(
        self, path: Path, store: PositionStore, settings: MaillogSettings, params: MailParams,
        now: datetime, *, chunk_bytes: int = FOLLOW_CHUNK_BYTES,
    ) -> None:  # fmt: skip
        self.follower = Follower(path, store, f"{settings.source}:{path}", chunk_bytes=chunk_bytes)
        self.settings = settings
        self.run = MailRun(
            params, TimeParser(now, settings.timezone), settings.source, settings.format,
            account=False,
        )  # fmt: skip
        self.fmt = "" if settings.format == "auto" else settings.format
        saved = self.follower.position.state if self.follower.position is not None else None
        if saved:
            data = json.loads(saved)
            if isinstance(data, dict):
                fmt = data.pop("format", "")
                if not self.fmt and fmt in PARSERS:
                    self.fmt = fmt
                self.run.detector.restore(data)

    @property
    def path(self) -> Path:
        """The followed file."""
        return self.follower.path

    def _state(self) -> str:
        return json.dumps({**self.run.detector.state(), "format": self.fmt})

    def poll(self, now: datetime) -> int:
        """Read what is new; commit each batch with its evidence and state; return evidence added.

        Windows close by the log's own time while lines arrive; when nothing new came, the ones
        that ended a window before *now* close too.
        """
        run = self.run
        run.times = TimeParser(now, self.settings.timezone)
        detector = run.detector
        window = run.params.harvest.window.total_seconds()
        added = 0
        read = False
        for batch in self.follower.batches():
            read = True
            self.fmt = self.fmt or run.format_of(batch.text)
            evidence = run.detect(batch.text, str(batch.path), batch.first_line, self.fmt)
            evidence += run.finish(until=detector.now - window)
            added += self.follower.commit(batch, evidence, state=self._state())
        if not read:
            evidence = run.finish(until=now.timestamp() - window)
            if evidence:
                added += self.follower.save(evidence, state=self._state())
        return added


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def follow_logs(
    settings: MaillogSettings,
    params: MailParams,
    store: PositionStore,
    stop: asyncio.Event,
    *,
    clock: Callable[[], datetime] = _utcnow,
    on_evidence: Callable[[Path, int], None] | None = None,
) -> None:
    """Follow every path of *settings* until *stop* is set, resuming where the store says.

    A failing file (unreadable, say) is logged and tried again at the next poll; a file with no
    Postfix or Exim line yet is followed on (its lines are not understood) until one arrives.
    """
    logs = [FollowedLog(path, store, settings, params, clock()) for path in settings.paths]
    log.info("maillog_following", paths=[str(p) for p in settings.paths])
    while not stop.is_set():
        for followed in logs:
            try:
                added = await asyncio.to_thread(followed.poll, clock())
            except ReputableError as exc:
                log.error("maillog_follow_failed", path=str(followed.path), error=str(exc))
                continue
            if added:
                log.info("maillog_evidence", path=str(followed.path), added=added)
                if on_evidence is not None:
                    on_evidence(followed.path, added)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.poll)


async def follow_maillogs(
    config: Any, store_factory: Callable[[], PositionStore], stop: asyncio.Event
) -> None:
    """Follow every ``[sources.maillog]`` path until *stop* is set (the `serve` hook)."""
    settings = maillog_settings(config.extra, config.path.parent if config.path else Path.cwd())
    if not settings.paths:
        return
    store = store_factory()
    try:
        await follow_logs(settings, config_params(config), store, stop)
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()

"""Reading network logs (sshd, web, netfilter, flows) into the detectors: the I/O edge of ingest.

Memory is flat in the size of the log: files are read in blocks, only detector state (per
active address) is kept, and evidence is handed to the sink after every block. The sshd
format takes the fast path (``sshd.SCAN``), every other one the line parsers.

``follow_netlogs`` is the hook `serve` runs: it follows every ``[[sources.netlog]]`` entry
(``path`` and ``format``) with the generic follower (sources/follow.py), committing the
evidence of each batch together with the file position.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, Final

from reputable.core import log
from reputable.core.errors import ConfigError, InputError, ReputableError
from reputable.evidence.detectors.net import NetDetector
from reputable.evidence.detectors.netconfig import NetSettings, net_settings
from reputable.evidence.model import Evidence
from reputable.evidence.parsers import sshd
from reputable.evidence.parsers.envelope import normalize_bytes
from reputable.evidence.parsers.net import NET_PARSERS, parse_lines
from reputable.evidence.parsers.netbase import OTHER, UNKNOWN, NetEvent, NetLine
from reputable.evidence.parsers.syslog_time import SKEW, TimeParser
from reputable.evidence.sources.follow import Follower, PositionStore
from reputable.evidence.sources.inputs import MAX_LINE, label, open_binary, zone_named

BLOCK: Final = 8 << 20  # bytes read at a time
EXAMPLES: Final = 5  # lines not understood shown in the summary

Sink = Callable[[list[Evidence]], int]


@dataclass(frozen=True, slots=True, kw_only=True)
class NetlogSummary:
    """What one ingest did: lines read and understood, events, evidence and the busiest addresses."""

    path: str
    format: str
    lines: int
    understood: int
    other: int
    unknown: int
    examples: tuple[tuple[int, str], ...]
    events: tuple[tuple[str, int], ...]
    evidence: tuple[tuple[str, int], ...]
    stored: int
    top_ips: tuple[tuple[str, int], ...]
    seconds: float

    def to_json(self) -> dict[str, object]:
        """Return the summary as a JSON object."""
        return {
            "path": self.path,
            "format": self.format,
            "lines": self.lines,
            "understood": self.understood,
            "other_programs_or_blank": self.other,
            "not_understood": self.unknown,
            "examples": [{"line": n, "text": t} for n, t in self.examples],
            "events": dict(self.events),
            "evidence": {"compromised": dict(self.evidence)},
            "stored": self.stored,
            "top_ips": [{"ip": ip, "events": n} for ip, n in self.top_ips],
            "seconds": round(self.seconds, 3),
        }


class _Tally:
    """Counts of lines that produced no event, with the first few not understood."""

    __slots__ = ("examples", "other", "unknown")

    def __init__(self) -> None:
        self.other = 0
        self.unknown = 0
        self.examples: list[tuple[int, str]] = []

    def add(self, item: NetLine) -> None:
        if item.kind == OTHER:
            self.other += 1
            return
        self.unknown += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append((item.line, item.text[:300]))


#: Lines of the first block that vote on the format of ``--format auto``.
VOTERS: Final = 200


def sniff(first: bytes, now: datetime) -> str:
    """Return the format most of the first lines of a log are understood as ("" when none).

    Every parser reads the first VOTERS non-blank lines; the one that makes the most events
    wins (a tie goes to the earlier in NET_PARSERS).
    """
    lines = [x for x in first.decode("utf-8", "replace").split("\n") if x.strip()][:VOTERS]
    best, most = "", 0
    for name in NET_PARSERS:
        if name == "apache":  # the same parser as nginx
            continue
        events = sum(isinstance(i, NetEvent) for i in parse_lines(name, lines, now=now))
        if events > most:
            best, most = name, events
    return best


def check_format(name: str) -> None:
    """Raise InputError unless *name* is a known network-log format (or auto)."""
    if name != "auto" and name not in NET_PARSERS:
        raise InputError(
            f"unknown log format {name!r}; expected auto or one of: {', '.join(NET_PARSERS)}"
        )


def _blocks(stream: io.BufferedIOBase) -> Iterator[bytes]:
    """Yield ``\\n`` + whole lines (without the last newline), up to BLOCK bytes at a time.

    ``read1`` returns what a pipe has (``tail -F | ... -``) instead of waiting for a full
    block. A line longer than MAX_LINE is cut there, the rest of it dropped (bounded memory).
    """
    read = stream.read1
    leftover = b""
    skipping = False
    while True:
        data = read(BLOCK)
        if not data:
            if leftover:
                yield b"\n" + leftover
            return
        if skipping:
            nl = data.find(b"\n")
            if nl < 0:
                continue
            data, skipping = data[nl + 1 :], False
        buf = leftover + data if leftover else data
        cut = buf.rfind(b"\n")
        if cut < 0:
            leftover = buf
        else:
            leftover = buf[cut + 1 :]
            yield b"\n" + buf[:cut]
        if len(leftover) >= MAX_LINE:
            yield b"\n" + leftover[:MAX_LINE]
            leftover, skipping = b"", True


def scan_sshd(
    blocks: Iterable[bytes],
    detector: NetDetector,
    clock: TimeParser,
    tally: _Tally,
    sink: Sink | None,
) -> tuple[int, int]:
    """Run the sshd fast path over *blocks* (of ``_blocks``); return (lines read, evidence stored).

    The hot loop of the benchmark (bench/netlog_vs_fail2ban.py), optimised by measurement:
    one regex pass per block, Python work only for attempts and lines not understood, line
    numbers counted only for sample lines, syslog times computed from a per-hour base.
    """
    finditer = sshd.SCAN.finditer
    meaning, unknown = sshd.SCAN_EVENTS, sshd.SCAN_UNKNOWN
    attempt = detector.attempt
    limit = (clock.now + SKEW).timestamp()
    hours: dict[bytes, float] = {}
    base = 0
    stored = 0
    for raw_block in blocks:
        block = normalize_bytes(raw_block)
        count = block.count
        seen = 0
        last = 0
        stamp = b""
        ts: float | None = None
        for found in finditer(block):
            g: int = found.lastindex  # type: ignore[assignment]  # every branch ends with a group
            if g >= unknown:
                pos = found.start()
                seen += count(b"\n", last, pos + 1)
                last = pos + 1
                text = found[0][1:].decode("utf-8", "replace")
                tally.add(NetLine(base + seen, sshd.classify(text), text))
                continue
            raw_ts = found[1]
            if raw_ts != stamp:
                stamp = raw_ts
                ts = _syslog_seconds(raw_ts, hours, limit, clock)
            if ts is None:
                pos = found.start()
                seen += count(b"\n", last, pos + 1)
                last = pos + 1
                tally.add(NetLine(base + seen, UNKNOWN, found[0][1:].decode("utf-8", "replace")))
                continue
            event, user_group = meaning[g]
            entry = attempt(event, ts, found[g], found[user_group] if user_group else b"")
            if entry is not None:
                pos = found.start()
                seen += count(b"\n", last, pos + 1)
                last = pos + 1
                entry[0] = base + seen
                entry[1] = found[0]
        base += count(b"\n")
        if sink is not None and detector.found:
            stored += sink(detector.take())
    return base, stored


def _syslog_seconds(
    raw: bytes, hours: dict[bytes, float], limit: float, clock: TimeParser
) -> float | None:
    """Return a timestamp from *raw* bytes; ``Mmm dd HH:MM:SS`` from a cached hour start.

    An hour, not a day: a zone's offset changes inside a day (summer time).
    """
    hour = hours.get(raw[:9]) if len(raw) == 15 else None
    if hour is not None:
        return hour + int(raw[10:12]) * 60 + int(raw[13:15])
    ts = clock(raw.decode("ascii", "replace"))
    if ts is not None and len(raw) == 15 and raw[:1].isalpha():
        start = ts - (int(raw[10:12]) * 60 + int(raw[13:15]))
        if start + 3600 <= limit:  # the whole hour is before the year boundary of TimeParser
            hours[raw[:9]] = start
    return ts


def ingest_netlog(
    path: Path,
    fmt: str,
    settings: NetSettings,
    *,
    now: datetime,
    sink: Sink | None,
    source: str | None = None,
    on_item: Callable[[NetEvent | NetLine, tuple[str, ...]], None] | None = None,
    tz: tzinfo = UTC,
) -> NetlogSummary:
    """Read *path* as *fmt* through the detectors; hand evidence to *sink* (None: dry run).

    Timestamps without a zone (syslog) are read in *tz*.
    """
    check_format(fmt)
    started = time.perf_counter()
    tally = _Tally()
    stored = 0
    with open_binary(path) as stream:
        blocks = _blocks(stream)
        first = next(blocks, b"")  # read once: kept, then the rest follows it
        if fmt == "auto":
            fmt = sniff(first, now)
            if not fmt:
                raise InputError(
                    f"{label(path)}: no line of a known format ({', '.join(NET_PARSERS)})"
                    " among the first lines; give --format"
                )
        detector = NetDetector(settings, source=source or f"netlog:{fmt}:{label(path)}")
        every = itertools.chain((first,) if first else (), blocks)
        if fmt == "sshd" and on_item is None:
            lines, stored = scan_sshd(every, detector, TimeParser(now, tz), tally, sink)
        else:
            lines = 0
            text = (
                line.decode("utf-8", "replace")
                for block in every
                for line in block[1:].split(b"\n")
            )
            for item in parse_lines(fmt, text, now=now, tz=tz):
                lines = item.line
                if isinstance(item, NetLine):
                    tally.add(item)
                    tags: tuple[str, ...] = ()
                else:
                    tags = detector.observe(item)
                if on_item is not None:
                    on_item(item, tags)
                if sink is not None and len(detector.found) >= 1000:
                    stored += sink(detector.take())
    found = detector.take()
    if sink is not None and found:
        stored += sink(found)
    by_scenario = Counter(detector.by_scenario)
    return NetlogSummary(
        path=label(path),
        format=fmt,
        lines=lines,
        understood=lines - tally.other - tally.unknown,
        other=tally.other,
        unknown=tally.unknown,
        examples=tuple(tally.examples),
        events=tuple(sorted(detector.events.items())),
        evidence=tuple(sorted(by_scenario.items())),
        stored=stored,
        top_ips=tuple(detector.top_ips(10)),
        seconds=time.perf_counter() - started,
    )


@dataclass(frozen=True, slots=True)
class FollowedLog:
    """One ``[[sources.netlog]]`` entry: a file `serve` follows, and its format."""

    path: Path
    format: str
    timezone: tzinfo = UTC


def followed_logs(extra: dict[str, Any], base: Path) -> tuple[FollowedLog, ...]:
    """Return the ``[[sources.netlog]]`` entries of config.extra (paths relative to *base*)."""
    sources = extra.get("sources", {})
    raw = sources.get("netlog", []) if isinstance(sources, dict) else None
    hint = '[[sources.netlog]] entries need path and format, e.g. path = "/var/log/auth.log", format = "sshd"'
    if not isinstance(raw, list):
        raise ConfigError(hint)
    out = []
    for entry in raw:
        if not isinstance(entry, dict) or not {"path", "format"} <= set(entry) <= {
            "path",
            "format",
            "timezone",
        }:
            raise ConfigError(f"{hint} (and optionally timezone); got {entry!r}")
        fmt = str(entry["format"])
        if fmt not in NET_PARSERS:
            raise ConfigError(
                f"[[sources.netlog]] format {fmt!r}: expected one of {', '.join(NET_PARSERS)}"
            )
        zone = zone_named(str(entry.get("timezone", "UTC")), "[[sources.netlog]] timezone")
        out.append(FollowedLog(base / str(entry["path"]), fmt, zone))
    return tuple(out)


def resume_detector(
    follower: Follower, detector: NetDetector, sessions: sshd.Sessions | None = None
) -> None:
    """Load into *detector* the buckets saved with *follower*'s position (a restart goes on counting).

    The state is what :func:`_follow_once` commits with each batch; a position saved by an
    older version (no state) or a state not of that shape starts with empty buckets. With
    *sessions* (an sshd log), sshd's PID -> address memory saved with them is loaded too.
    """
    saved = follower.position.state if follower.position is not None else None
    if not saved:
        return
    try:
        data = json.loads(saved)
    except ValueError:
        log.warning("netlog_state_unreadable", name=follower.name)
        return
    if isinstance(data, dict) and isinstance(data.get("buckets"), list):
        detector.restore(data["buckets"])
    if isinstance(data, dict) and sessions is not None:
        sessions.restore(data.get("sessions"))


def _follow_once(
    follower: Follower,
    detector: NetDetector,
    fmt: str,
    now: datetime,
    tz: tzinfo = UTC,
    sessions: sshd.Sessions | None = None,
) -> int:
    """Read what is new in one followed file; commit each batch with its evidence and buckets.

    The detector's buckets are saved with the position in the same transaction, so a restart
    (kill -9 included) resumes the counts of the lines it had read: an address halfway to a
    threshold is listed when the rest of its burst arrives after the restart. An sshd log's
    *sessions* (PID -> address) go from batch to batch and are saved the same way, so a line
    that names no client is attributed to the client its PID named in an earlier batch.
    """
    added = 0
    for batch in follower.batches():
        lines = batch.text.splitlines()
        first = batch.first_line
        if fmt == "sshd" and sessions is not None:
            items = sshd.parse(lines, now=now, first_line=first, tz=tz, sessions=sessions)
        else:
            items = parse_lines(fmt, lines, now=now, first_line=first, tz=tz)
        for item in items:
            if isinstance(item, NetEvent):
                detector.observe(item)
        saved: dict[str, object] = {"buckets": detector.state()}
        if sessions is not None:
            saved["sessions"] = sessions.state()
        state = json.dumps(saved, separators=(",", ":"))
        added += follower.commit(batch, detector.take(), state=state)
    return added


async def follow_netlogs(
    config: Any, store_factory: Callable[[], PositionStore], stop: asyncio.Event
) -> None:
    """Follow every ``[[sources.netlog]]`` file until *stop* is set (the `serve` hook)."""
    logs = followed_logs(config.extra, config.path.parent if config.path else Path.cwd())
    if not logs:
        return
    settings = net_settings(config.extra)
    store = store_factory()
    try:
        followers = []
        for entry in logs:
            name = f"netlog:{entry.format}:{entry.path}"
            follower = Follower(entry.path, store, name)
            detector = NetDetector(settings, source=name)
            sessions = sshd.Sessions() if entry.format == "sshd" else None
            resume_detector(follower, detector, sessions)
            followers.append((follower, detector, entry.format, entry.timezone, sessions))
        log.info("netlog_following", paths=[str(e.path) for e in logs])
        while not stop.is_set():
            for follower, detector, fmt, tz, sessions in followers:
                try:
                    added = await asyncio.to_thread(
                        _follow_once, follower, detector, fmt, datetime.now(UTC), tz, sessions
                    )
                    if added:
                        log.info("netlog_evidence", path=str(follower.path), added=added)
                except ReputableError as exc:
                    log.error("netlog_follow_failed", path=str(follower.path), error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()

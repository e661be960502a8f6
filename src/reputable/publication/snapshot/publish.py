"""Keep the snapshot in step with the store: rebuild when serial, config or an expiry moves."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import queue
import sys
import threading
import time
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from reputable.core.errors import SnapshotError
from reputable.publication.ports import ListingSource
from reputable.publication.settings import PublicationConfig as Config
from reputable.publication.settings import ZoneConfig
from reputable.publication.snapshot.build import (
    Chunk,
    HostRun,
    ListingChunks,
    ListingRow,
    around,
    build,
)
from reputable.publication.snapshot.layout import MappedFile, write_snapshot
from reputable.publication.snapshot.overlay import (
    gather,
    overlay_of,
    overlay_path,
    rebuild_since,
    remove_overlay,
    supports,
    write_overlay,
)

#: ``freshness`` results: nothing to do / only listings changed (an overlay may do) / rebuild.
FRESH = "fresh"
CHANGED = "changed"
REBUILD = "rebuild"


def fingerprint(config: Config) -> str:
    """Return a digest of the configuration that shapes answers (zone codes, TXT URL)."""

    def zone(z: ZoneConfig) -> dict[str, object]:
        return {"codes": {c.value: str(a) for c, a in z.codes.items()}, "url": z.lookup_url}

    raw = json.dumps(
        {
            "ip": zone(config.ip_zone),
            "domain": zone(config.domain_zone),
            "allow": zone(config.allow_zone),
            # Format of the per-listing facts (cause, since, until, subject) beside each
            # answer: a snapshot written without them is stale, so serve rebuilds it.
            "facts": 1,
        },
        sort_keys=True,
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Published:
    """What one rebuild produced."""

    serial: int
    listings: int
    allows: int
    seconds: float
    path: Path


def freshness(path: Path, *, serial: int, digest: str, now: datetime) -> str:
    """Say how the snapshot at *path* (with its overlay) stands against the store and clock.

    FRESH: it answers for *serial*. CHANGED: only listings moved since it was built (an overlay
    may catch up). REBUILD: missing, built for another configuration, or a listing expired.
    """
    try:
        base = MappedFile(path)
    except SnapshotError:
        return REBUILD
    header = base.header
    if header.get("fingerprint") != digest or _expired(header, now):
        return REBUILD
    if header.get("serial") == serial:
        return FRESH
    overlay = overlay_of(base, overlay_path(path))
    if overlay is not None:
        if _expired(overlay.header, now):
            return REBUILD
        if overlay.header.get("serial") == serial:
            return FRESH
    return CHANGED


def _expired(header: dict[str, object], now: datetime) -> bool:
    next_expiry = header.get("next_expiry")
    return isinstance(next_expiry, int | float) and next_expiry <= now.timestamp()


def stale(path: Path, *, serial: int, digest: str, now: datetime) -> bool:
    """True when the snapshot at *path* is missing or behind the store, config or clock."""
    return freshness(path, serial=serial, digest=digest, now=now) != FRESH


def publish(source: ListingSource, config: Config, now: datetime) -> Published:
    """Build the snapshot of *source* at *now* and swap it into place atomically."""
    started = time.perf_counter()
    serial = source.serial()
    # Read before the rows: an overlay on this snapshot re-answers every change after it,
    # including one that lands while the rows are read (re-answering is harmless).
    cursor = source.audit_cursor() if supports(source) else None
    # The build makes millions of tuples and makes no cycles: the collector's passes cost
    # ~0.5 of 2.9 s CPU at 1M rows (see docs/benchmarks.md, "Snapshot build (session 6,
    # round 2)").
    collecting = gc.isenabled()
    gc.disable()
    try:
        built = build(
            _listings(source, now),
            source.allow_rows(active_at=now),
            ip_zone=config.ip_zone,
            domain_zone=config.domain_zone,
            allow_zone=config.allow_zone,
            serial=serial,
            now=now,
        )
    finally:
        if collecting:
            gc.enable()
    built.header["fingerprint"] = fingerprint(config)
    if cursor is not None:
        built.header["audit_cursor"] = cursor
        built.header["moves"] = True  # policy runs after this cursor name what they touch
        since = _since(source, config, now, serial)
        if since is not None:
            built.header["since"] = since
    write_snapshot(config.snapshot_path, built.header, built.sections)
    remove_overlay(config.snapshot_path)  # workers ignore it anyway: built on another base
    return Published(
        serial=serial,
        listings=int(str(built.header["listings"])),
        allows=int(str(built.header["allows"])),
        seconds=time.perf_counter() - started,
        path=config.snapshot_path,
    )


def _listings(source: ListingSource, now: datetime) -> Iterable[ListingRow] | ListingChunks:
    """Return the active listings of *source* at *now*: in chunks when it reads them so
    (``SQLiteStore.listing_chunks``: hosts in columns, no tuple per row), else as rows."""
    chunked = getattr(source, "listing_chunks", None)
    if chunked is None:
        return source.listing_rows(active_at=now)

    def runs() -> Iterator[Chunk]:
        for chunk in chunked(active_at=now, around=around):
            if isinstance(chunk, tuple):  # (subjects, cause, reasons, listed_at, others)
                subjects, cause, reasons, listed_at, others = chunk
                listed = array("d", [listed_at]) * len(subjects)  # extends as a memcpy
                if isinstance(reasons, tuple):  # NamedReasons: each names its host alike
                    named = (reasons[0], reasons[1])  # (before, after)
                    yield HostRun(subjects, cause, (), listed, None, named=named, others=others)
                else:
                    yield HostRun(subjects, cause, reasons, listed, None, others=others)
            else:
                yield chunk

    return ListingChunks(_read_ahead(runs()))


#: Chunks `_read_ahead` holds ready at most (8,192 rows each: a few MB).
READ_AHEAD = 4
#: Seconds a thread holds the GIL before another waiting for it gets it, while `_read_ahead`
#: runs (Python's default: 0.005).
SWITCH_INTERVAL = 0.0005


def _read_ahead(chunks: Iterator[Chunk]) -> Iterator[Chunk]:
    """Yield *chunks* as read by a thread that keeps up to READ_AHEAD of them ready.

    SQLite reads a window (the ``group_concat`` of its subjects) with the GIL released, so
    on a second core the store reads the next windows while this thread packs the last one:
    at 1M hosts, 0.7-1.1 s CPU of reading (0.57 s of it SQLite's steps) and 0.76 s of
    packing ran one after the other (issue 16, docs/benchmarks.md "First answer after a 1M
    import: reading beside building"). The
    thread runs the whole of the store's generator, its read transaction included, and has
    ended before the last chunk's successor is taken, so the caller never uses the store's
    connection at the same time. An error in the reader is raised here; a caller that stops
    early stops the reader (its generator closes, ending the transaction) before going on.
    """
    ready: queue.Queue[tuple[bool, Chunk | BaseException | None]] = queue.Queue(READ_AHEAD)
    stop = threading.Event()

    def read() -> None:
        try:
            for chunk in chunks:
                if stop.is_set():
                    break
                ready.put((True, chunk))
        except BaseException as exc:  # handed over to the consumer, which raises it
            ready.put((False, exc))
        else:
            ready.put((False, None))
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    reader = threading.Thread(target=read, name="snapshot-read", daemon=True)
    # The reader takes the GIL back after each SQLite step, up to four times a window; at the
    # default 5 ms switch interval each take waits out the packing thread's slice, which left
    # the reader behind the packer it was meant to feed.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, SWITCH_INTERVAL))
    reader.start()
    try:
        while True:
            more, item = ready.get()
            if not more:
                if isinstance(item, BaseException):
                    raise item
                break
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while reader.is_alive():  # let a reader blocked on a full queue see the stop
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=0.05)
        reader.join()
        sys.setswitchinterval(interval)


def _since(
    source: ListingSource, config: Config, now: datetime, serial: int
) -> dict[str, Any] | None:
    """Return what changed from the snapshot in place to the one being built (its ``since``
    header, overlay.py), or None when the audit cannot say (zone transfers then compare
    whole zones)."""
    if not supports(source):
        return None
    try:
        previous = MappedFile(config.snapshot_path).header
    except SnapshotError:
        return None
    if previous.get("fingerprint") != fingerprint(config):
        return None  # answers moved without an audit row: the configuration
    return rebuild_since(source, previous, serial, now)


def publish_overlay(source: ListingSource, config: Config, now: datetime) -> Published | None:
    """Write the overlay of the changes since the current snapshot; None if a rebuild must.

    Costs a few index probes per changed address and a build of their rows: milliseconds for
    a one-entry change on a snapshot of any size (docs/benchmarks.md, "DNS scale (session 5)").
    """
    started = time.perf_counter()
    if not supports(source):
        return None
    try:
        header = MappedFile(config.snapshot_path).header
    except SnapshotError:
        return None
    if header.get("fingerprint") != fingerprint(config) or _expired(header, now):
        return None
    data = gather(source, header, now)
    if data is None:
        return None
    built = build(
        data.listings,
        data.allows,
        ip_zone=config.ip_zone,
        domain_zone=config.domain_zone,
        allow_zone=config.allow_zone,
        serial=data.serial,
        now=now,
    )
    built.header["fingerprint"] = fingerprint(config)
    path = overlay_path(config.snapshot_path)
    write_overlay(path, header, data, built.header, built.sections)
    return Published(
        serial=data.serial,
        listings=len(data.addresses),
        allows=len(data.allows),
        seconds=time.perf_counter() - started,
        path=path,
    )

"""Enforcement files kept current: ``[[sinks]]`` rendered after each snapshot, then loaded.

A sink is one export (nftables, ipset, rpz) written atomically to a path (temporary file in
the same folder, then ``os.replace``) and, optionally, a command that loads it (``nft -f``,
``ipset restore -file``, ``unbound-control auth_zone_reload``). ``serve`` calls
:func:`refresh` whenever a new snapshot appears; a failing command is logged and retried at
the next snapshot, it never stops serving DNS.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any, Final, Protocol

from reputable.core import log
from reputable.core.cause import Cause, parse_cause
from reputable.core.errors import ConfigError, InputError, ReputableError
from reputable.publication.exports import ipset, nftables, rpz
from reputable.publication.exports.ranges import Row, listed_space_rows, stream_space

KINDS: Final = (nftables.NAME, ipset.NAME, rpz.NAME)
COMMAND_TIMEOUT: Final = 60.0


class SinkStore(Protocol):
    """What a sink reads: the active listings and allowlist as plain rows, and the serial."""

    def listing_rows(self, *, active_at: datetime) -> Iterable[Row]:
        """Yield (subject, family, cause, reason, listed_at, expires_at) of active listings."""
        ...

    def allow_rows(self, *, active_at: datetime) -> Iterable[Row]:
        """Yield (subject, family, note, expires_at) of active allowlist entries."""
        ...

    def serial(self) -> int:
        """Return the change counter."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Sink:
    """One ``[[sinks]]`` entry."""

    kind: str
    path: Path
    command: tuple[str, ...] = ()
    causes: frozenset[Cause] | None = None
    name: str = "reputable"  # nftables table / ipset set name
    hooks: tuple[str, ...] = ("input",)
    origin: str = "rpz.reputable.test"  # RPZ zone name


def parse_sinks(raw: Any, base: Path) -> tuple[Sink, ...]:
    """Return the ``[[sinks]]`` array *raw*; relative paths resolve against *base*."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError("[[sinks]] must be an array of tables: [[sinks]] kind = ... path = ...")
    sinks: list[Sink] = []
    for i, item in enumerate(raw):
        where = f"sinks[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: must be a table with kind and path")
        kind = str(item.get("kind", ""))
        if kind not in KINDS:
            raise ConfigError(f"{where}.kind {kind!r}: use one of {', '.join(KINDS)}")
        if not item.get("path"):
            raise ConfigError(f'{where}: path = "FILE" is required (where the {kind} file goes)')
        command = item.get("command", [])
        if isinstance(command, str) or not all(isinstance(c, str) for c in command):
            raise ConfigError(
                f'{where}.command: use an argument list, e.g. ["nft", "-f", "{{path}}"]'
            )
        try:
            causes = (
                frozenset(parse_cause(str(c)) for c in item["causes"]) if "causes" in item else None
            )
        except ValueError as exc:
            raise ConfigError(f"{where}.causes: {exc}") from exc
        path = Path(str(item["path"]))
        sink = Sink(
            kind=kind,
            path=path if path.is_absolute() else (base / path).resolve(),
            command=tuple(command),
            causes=causes,
            name=str(item.get("name", "reputable")),
            hooks=tuple(str(h) for h in item.get("hooks", ["input"])),
            origin=str(item.get("origin", "rpz.reputable.test")).strip("."),
        )
        try:
            render(sink, [], [], serial=0)  # names and hooks are checked by the renderers
        except InputError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        sinks.append(sink)
    return tuple(sinks)


def render(sink: Sink, rows: Sequence[Row], allow_rows: Sequence[Row], *, serial: int) -> str:
    """Return the text of *sink* for ``listing_rows`` *rows* and ``allow_rows`` (pure)."""
    if sink.kind == rpz.NAME:
        header = rpz.RpzHeader(origin=sink.origin, serial=serial)
        return rpz.render_rows(rows, allow_rows, header=header, causes=sink.causes).text
    space = listed_space_rows(rows, allow_rows, causes=sink.causes)
    if sink.kind == nftables.NAME:
        options = nftables.NftOptions(table=sink.name, hooks=sink.hooks, comment=f"serial {serial}")
        return nftables.render(space, options)
    return ipset.render(space, ipset.IpsetOptions(name=sink.name))


def stream(sink: Sink, store: SinkStore, now: datetime) -> Iterator[str]:
    """Yield the text of *sink* for the listings active at *now*, in pieces, in flat memory.

    A store with sorted reads (``ip_rows_sorted``, ``domain_rows_sorted``: the SQL stores)
    streams straight from its cursors; any other store (the in-memory fake) goes through
    `render`. Both give the same text.
    """
    ip_sorted = getattr(store, "ip_rows_sorted", None)
    domain_sorted = getattr(store, "domain_rows_sorted", None)
    if ip_sorted is None or domain_sorted is None:
        yield render(
            sink,
            list(store.listing_rows(active_at=now)),
            list(store.allow_rows(active_at=now)),
            serial=store.serial(),
        )
        return
    allow_rows = list(store.allow_rows(active_at=now))  # the allowlist: small, in memory
    serial = store.serial()
    ip_rows = chain.from_iterable(ip_sorted(active_at=now))
    if sink.kind == rpz.NAME:
        header = rpz.RpzHeader(origin=sink.origin, serial=serial)
        names = chain.from_iterable(domain_sorted(active_at=now))
        yield from rpz.RpzStream(names, ip_rows, allow_rows, header=header, causes=sink.causes)
        return
    space = stream_space(ip_rows, allow_rows, causes=sink.causes)
    if sink.kind == nftables.NAME:
        options = nftables.NftOptions(table=sink.name, hooks=sink.hooks, comment=f"serial {serial}")
        yield from nftables.render_stream(space, options)
        return
    yield from ipset.render_stream(space, ipset.IpsetOptions(name=sink.name))


def write_atomic(path: Path, text: str, *, make_folder: bool = True) -> None:
    """Write *text* to *path* through a temporary file in the same folder and os.replace.

    Sinks make their folder; an export given ``-o`` (*make_folder* false) refuses a missing
    one, so that a typo does not leave a tree of new folders behind.
    """
    write_atomic_stream(path, (text,), make_folder=make_folder)


def write_atomic_stream(path: Path, pieces: Iterable[str], *, make_folder: bool = True) -> int:
    """Write the text *pieces* to *path* as `write_atomic` does; return the bytes written.

    An exception while *pieces* is iterated leaves *path* as it was (the temporary file goes).
    """
    if make_folder:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise InputError(
            f"{path}: the folder {path.parent} does not exist; create it or fix the path"
        )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for piece in pieces:
                handle.write(piece)
            size = handle.tell()
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return size


def command_line(sink: Sink) -> list[str]:
    """Return the sink's load command with ``{path}`` filled in."""
    return [part.replace("{path}", str(sink.path)) for part in sink.command]


def refresh(sinks: Sequence[Sink], store: SinkStore, now: datetime) -> Mapping[Path, bool]:
    """Write every sink for the listings active at *now* and run its command; path -> ok."""
    if not sinks:
        return {}
    results: dict[Path, bool] = {}
    for sink in sinks:  # each streams from the store: flat memory at millions of listings
        write_atomic_stream(sink.path, stream(sink, store, now))
        results[sink.path] = _run(sink)
    return results


def _run(sink: Sink) -> bool:
    if not sink.command:
        log.info("sink_written", kind=sink.kind, path=str(sink.path))
        return True
    argv = command_line(sink)
    try:
        done = subprocess.run(
            argv, check=False, capture_output=True, text=True, timeout=COMMAND_TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.error("sink_command_failed", kind=sink.kind, command=" ".join(argv), error=str(exc))
        return False
    if done.returncode != 0:
        log.error(
            "sink_command_failed",
            kind=sink.kind,
            command=" ".join(argv),
            exit_code=done.returncode,
            stderr=done.stderr.strip()[-500:],
        )
        return False
    log.info("sink_loaded", kind=sink.kind, path=str(sink.path), command=argv[0])
    return True


def sinks_of(config: Any) -> tuple[Sink, ...]:
    """Return the ``[[sinks]]`` of *config* (a reputable Config), checked."""
    base = config.path.parent if config.path else Path.cwd()
    return parse_sinks(config.extra.get("sinks"), base)


def _snapshot_key(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    try:  # a one-entry change lands in the overlay beside the snapshot (snapshot/overlay.py)
        overlay = path.with_name(path.name + ".overlay").stat().st_mtime_ns
    except FileNotFoundError:
        overlay = 0
    return st.st_ino, st.st_mtime_ns, st.st_size, overlay


async def follow_sinks(
    config: Any, store_factory: Callable[[], SinkStore], stop: asyncio.Event
) -> None:
    """Refresh every sink whenever a new snapshot file appears, until *stop* (serve's hook)."""
    sinks = sinks_of(config)
    if not sinks:
        return
    interval = max(0.1, config.dns.reload_interval.total_seconds())
    store = store_factory()
    seen: tuple[int, int, int, int] | None = None
    try:
        while not stop.is_set():
            key = _snapshot_key(config.snapshot_path)
            if key is not None and key != seen:
                try:
                    results = await asyncio.to_thread(refresh, sinks, store, datetime.now(UTC))
                except (ReputableError, OSError) as exc:
                    log.error("sinks_failed", error=str(exc))
                    results = {}
                # A failed load is tried again at the next snapshot or after one interval.
                seen = key if results and all(results.values()) else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()

"""What every route reads: config, the current snapshot, the store (in threads), limits, metrics."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from reputable.config import Config
from reputable.publication.lookup import Zones
from reputable.publication.snapshot.holder import SnapshotHolder
from reputable.store.sqlite import SQLStore
from reputable.web.crowdsec import BouncerStreams
from reputable.web.intake import parser_pool
from reputable.web.limits import RateLimiter
from reputable.web.metrics import HttpMetrics
from reputable.web.notify import MailSettings, mail_settings
from reputable.web.settings import HttpSettings

T = TypeVar("T")


class Stores:
    """The store, used from worker threads only: one writer, a few readers (SQLite WAL)."""

    def __init__(self, opener: Callable[[], SQLStore], readers: int = 2) -> None:
        self._opener = opener
        self._local = threading.local()
        self._opened: list[SQLStore] = []
        self._opened_lock = threading.Lock()
        self._inline: SQLStore | None = None
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="http-store-write")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="http-store-read")

    def _store(self) -> SQLStore:
        store: SQLStore | None = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = self._opener()
            with self._opened_lock:
                self._opened.append(store)
        return store

    def open(self) -> SQLStore:
        """Return a connection of the caller's own (e.g. for a streamed export); close it."""
        return self._opener()

    def read_now(self, work: Callable[[SQLStore], T]) -> T:
        """Return ``work(store)`` run right here, on the event loop's own connection.

        Only for short indexed reads on the lookup path: handing work to a thread costs more
        than the read itself (measured: a thread hop ~500 µs per request on a loaded
        2-core machine, the evidence read of one subject ~30 µs), so lookups read inline.
        """
        store = self._inline
        if store is None:
            store = self._inline = self._opener()
            with self._opened_lock:
                self._opened.append(store)
        return work(store)

    async def read(self, work: Callable[[SQLStore], T]) -> T:
        """Return ``work(store)`` run in a reader thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: work(self._store()))

    async def write(self, work: Callable[[SQLStore], T]) -> T:
        """Return ``work(store)`` run in the one writer thread (writes never interleave)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, lambda: work(self._store()))

    def close(self) -> None:
        """Stop the threads and close every connection they opened."""
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        with self._opened_lock:
            for store in self._opened:
                store.close()
            self._opened.clear()


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True, kw_only=True)
class Context:
    """The state the routes share (one per running app)."""

    config: Config
    settings: HttpSettings
    stores: Stores
    snapshots: SnapshotHolder
    zones: Zones
    metrics: HttpMetrics = field(default_factory=HttpMetrics)
    clock: Callable[[], datetime] = _now
    on_evidence: Callable[[], None] = lambda: None  # wakes the policy loop in `serve`
    delist_limiter: RateLimiter = field(default_factory=RateLimiter)
    bouncers: BouncerStreams = field(default_factory=BouncerStreams)
    mail: MailSettings = field(default_factory=lambda: MailSettings(relay=None))  # [mail]
    _parsers: ProcessPoolExecutor | None = None

    def parsers(self) -> ProcessPoolExecutor:
        """Return the evidence parser process (started at the first large body)."""
        if self._parsers is None:
            self._parsers = parser_pool()
        return self._parsers

    def reset_parsers(self) -> None:
        """Stop the parser process (a new one starts at the next large body)."""
        if self._parsers is not None:
            self._parsers.shutdown(wait=False, cancel_futures=True)
            self._parsers = None

    def close(self) -> None:
        """Stop the parser processes (waiting for them) and close the store connections."""
        if self._parsers is not None:
            self._parsers.shutdown(wait=True, cancel_futures=True)
            self._parsers = None
        self.stores.close()

    @classmethod
    def create(
        cls, config: Config, settings: HttpSettings, opener: Callable[[], SQLStore]
    ) -> Context:
        """Return the context of *config* with stores made by *opener*."""
        return cls(
            config=config,
            settings=settings,
            stores=Stores(opener),
            snapshots=SnapshotHolder(config.snapshot_path),
            zones=Zones.of(config),
            mail=mail_settings(config),
        )

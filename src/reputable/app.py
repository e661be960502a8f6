"""Composition root: the only place (with cli/ and testing.py) that wires concrete parts.

``reputable serve`` is one supervisor process running one TaskGroup: it keeps the snapshot
in step with the store (rebuilding in a child process, so the supervisor's memory stays
flat whatever the list size), keeps the DNS worker processes running, serves the HTTP API
(``web/``, on ``http.listen``), and exposes their counters to Prometheus.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import TYPE_CHECKING, Any

from reputable.builder import build_command
from reputable.config import Config
from reputable.core import log, privileges, sdnotify
from reputable.core.errors import ConfigError, ReputableError
from reputable.listings.engine import evaluate_new
from reputable.listings.rules import Limits
from reputable.publication.dnsbl.worker import Worker, metrics_path
from reputable.publication.metrics import (
    Activity,
    read_worker_files,
    render,
    render_activity,
    render_server,
)
from reputable.publication.snapshot.layout import readable
from reputable.publication.snapshot.publish import (
    CHANGED,
    FRESH,
    fingerprint,
    freshness,
    publish_overlay,
)
from reputable.reputation.aggregate import PrefixTable, load_pfx2as
from reputable.store.coordination import EVIDENCE_CHANNEL, ChangeFeed, change_feed, leader_lock
from reputable.store.dsn import is_postgres, open_store, shown
from reputable.store.sqlite import SQLStore
from reputable.web.pages.settings import page_settings
from reputable.web.settings import check_bind, http_settings

if TYPE_CHECKING:
    from reputable.store.maintenance import StoreGauges

WORKER_RESTART_DELAY = 1.0
EVIDENCE_GATHER = 1.0  # seconds the policy waits after the API reports new evidence
#: A full snapshot rebuild folds the overlay into the base once the first change in it is
#: this old (seconds) or it holds this many addresses (publication/snapshot/overlay.py).
OVERLAY_REBUILD_SECONDS = 60.0
OVERLAY_REBUILD_SIZE = 500
#: How long a child (snapshot build, policy run, DNS worker) gets to end after SIGTERM.
CHILD_STOP_SECONDS = 0.8
#: Seconds between two evidence retention rounds.
RETENTION_EVERY = 600.0
#: Seconds between two attempts of a follower to become the policy leader.
LEADER_RETRY = 1.0


async def run_child(cmd: list[str]) -> int:
    """Run *cmd* and return its exit code; if we are cancelled (stopping), end it first.

    The child stays in our process group, and a cancelled wait terminates it, waits up to
    CHILD_STOP_SECONDS and then kills it, so no child outlives ``serve``.
    """
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.DEVNULL)
    try:
        return await proc.wait()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), CHILD_STOP_SECONDS)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()


def store_path(config: Config) -> Path:
    """Return the SQLite file named by ``store.dsn`` (a PostgreSQL DSN has none: ConfigError)."""
    if is_postgres(config.store_dsn):
        raise ConfigError(
            f"store.dsn {shown(config.store_dsn)!r} is PostgreSQL: this works on a SQLite file"
            " only; use PostgreSQL's own tools (pg_dump, VACUUM) on that database"
        )
    if not config.store_dsn.startswith("sqlite:///"):
        raise ConfigError(f"store.dsn {config.store_dsn!r}: use sqlite:///FILE or postgresql://...")
    return Path(config.store_dsn.removeprefix("sqlite:///"))


def _prune_batch(path: Path, before: datetime, after_id: int) -> tuple[int, int]:
    """Prune one batch of old evidence on a connection of this thread's own.

    The connection lives and dies inside the thread: a retention task cancelled while a batch
    runs (serve stopping) cannot close it under SQLite's feet.
    """
    import sqlite3

    from reputable.store.maintenance import prune_evidence

    db = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
    try:
        return prune_evidence(db, before, after_id=after_id)
    finally:
        db.close()


def pid_path(config: Config) -> Path:
    """Return the file where serve writes its process id (``reputable reload`` reads it)."""
    return config.data_dir / "reputable.pid"


def limits(config: Config) -> Limits:
    """Return the listing breadth limits of *config*."""
    return Limits(max_prefix_v4=config.max_prefix_v4, max_prefix_v6=config.max_prefix_v6)


def prefix_table(config: Config) -> PrefixTable | None:
    """Return the pfx2as table when prefix escalation is switched on, else None."""
    if config.pfx2as is None or config.policy.escalate_prefix <= 0:
        return None
    return load_pfx2as(config.pfx2as)


def _config_args(config: Config) -> list[str]:
    return ["--config", str(config.path)] if config.path else []


class Supervisor:
    """Runs `reputable serve`: publisher, DNS workers and the metrics endpoint."""

    def __init__(
        self,
        config: Config,
        store: SQLStore,
        *,
        metrics_listen: str | None,
        worker: Worker | None = None,
        first_build: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self.config = config
        #: The config serve started with: what a reload cannot change without a restart
        #: (listen addresses, workers, sources, store) is compared with it, not with the
        #: config of the last reload, and /health asks the address the workers listen on.
        self.running = config
        #: The first snapshot build, started by the launcher before serve's imports.
        self.first_build = first_build
        self.store = store
        self.metrics_listen = metrics_listen
        self.workers: list[subprocess.Popen[bytes] | None] = [None] * config.dns.workers
        self.digest = fingerprint(config)
        self.overlay_since: float | None = None  # when the first change went to an overlay
        self.background: asyncio.Future[bool] | None = None  # a full rebuild behind an overlay
        self.stopping = asyncio.Event()
        self.local_worker: Worker | None = worker
        self.http = http_settings(config)  # a bad [http] section fails before anything starts
        page_settings(config)  # so does a bad [mail] or [web] section
        self.evidence_arrived = asyncio.Event()  # set by the HTTP API: evaluate at once
        self.http_metrics: Callable[[], str] | None = None
        self.policy_metrics: Callable[[], str] | None = None
        self.started = time.time()
        self._queries: tuple[float, int] | None = None  # (time, total) at the last /status
        self.reloads = 0
        #: Counters of this process for /metrics (see publication/metrics.render_activity).
        self.activity = Activity()
        #: Several nodes on one store: only the holder of this lock evaluates the policy
        #: (store/coordination.py). Made here, before serve drops its privileges.
        self.leader = leader_lock(config.store_dsn)
        self.leading = False

    # -- publisher --------------------------------------------------------------------------
    async def rebuild_if_stale(self, *, wait: bool = False) -> bool:
        """Bring the snapshot level with the store; True if it (or its overlay) was rewritten.

        A few changed addresses go into the overlay at once (milliseconds, any list size).
        Anything else starts a full rebuild in a child, in the background, so later one-entry
        changes still reach the overlay while it runs (*wait*: until it is done); so does an
        overlay older than OVERLAY_REBUILD_SECONDS or holding OVERLAY_REBUILD_SIZE addresses.
        """
        now = datetime.now(UTC)
        state = freshness(
            self.config.snapshot_path, serial=self.store.serial(), digest=self.digest, now=now
        )
        if state == CHANGED:
            try:
                result = publish_overlay(self.store, self.config, now)
            except (OSError, ValueError) as exc:  # the full rebuild below reports it too
                log.warning("overlay_failed", error=str(exc))
                result = None
            if result is not None:
                log.info(
                    "overlay_written",
                    serial=result.serial,
                    addresses=result.listings,
                    ms=round(result.seconds * 1000, 1),
                )
                if self.overlay_since is None:
                    self.overlay_since = time.monotonic()
                # Secondaries get the overlay's serial by NOTIFY + IXFR (dnsbl/transfer.py):
                # the base is rebuilt later, when the overlay grows big or old.
                if result.listings >= OVERLAY_REBUILD_SIZE:
                    self.rebuild_in_background()
                return True
        elif state == FRESH:
            since = self.overlay_since
            if since is not None and time.monotonic() - since >= OVERLAY_REBUILD_SECONDS:
                self.rebuild_in_background()
            return False
        self.rebuild_in_background()  # one build at a time: joins the running one
        if wait and self.background is not None:
            return await asyncio.shield(self.background)
        return False

    def rebuild_in_background(self) -> None:
        """Start a full rebuild that folds the overlay into the base (one at a time)."""
        if self.background is None or self.background.done():
            self.background = asyncio.ensure_future(self.rebuild())

    async def rebuild(self) -> bool:
        """Rebuild the whole snapshot in a child process; True if it succeeded."""
        self.overlay_since = None
        began = time.perf_counter()
        try:
            code = await run_child(build_command(self.config.path))
        except OSError as exc:  # it runs in the background: say it here, nobody awaits it
            log.error("snapshot_build_failed", error=str(exc))
            code = -1
        return self.built(code, time.perf_counter() - began)

    async def first_snapshot(self) -> None:
        """Have a snapshot in place before DNS starts (a missing or unreadable one is built).

        The launcher's first build is joined even when its snapshot is in place already (the
        launcher's checks ran past it): it stays the running build until it ends, and is
        reaped and counted like every build.
        """
        if self.first_build is not None:
            await self.join_first_build(self.first_build)
        elif not readable(self.config.snapshot_path):
            await self.rebuild_if_stale(wait=True)

    async def join_first_build(self, proc: subprocess.Popen[bytes]) -> None:
        """Wait until the first build (the launcher started it) has put its snapshot in place.

        The child's last steps (the serve plan, its exit) run on while DNS starts; it stays
        the running build (`background`) until it ends, so no second build starts meanwhile.
        """
        self.background = asyncio.ensure_future(self.finish_build(proc))
        while not self.background.done() and not readable(self.config.snapshot_path):
            await asyncio.sleep(0.01)  # 100 looks a second, only until DNS can answer

    async def finish_build(self, proc: subprocess.Popen[bytes]) -> bool:
        """Wait for the build child *proc* (polled: no asyncio child); True if it succeeded."""
        began = time.perf_counter()
        try:
            while proc.poll() is None:
                await asyncio.sleep(0.01)
        finally:
            if proc.returncode is None:  # cancelled: serve is stopping
                proc.terminate()
                try:
                    proc.wait(CHILD_STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        return self.built(proc.returncode, time.perf_counter() - began)

    def built(self, code: int, seconds: float) -> bool:
        """Count a finished build child (exit *code*, *seconds*) for /metrics; True if it built."""
        self.activity.snapshot_build_seconds = seconds
        self.activity.snapshot_builds[code == 0] += 1
        if code != 0:
            log.error("snapshot_build_failed", exit_code=code)
        return code == 0

    async def publisher(self) -> None:
        """Follow the store: rebuild the snapshot whenever its serial, config or expiry moves.

        On PostgreSQL a NOTIFY of the serial (any node's change) wakes it at once; the serial
        is polled every ``reload_interval`` all the same (SQLite, or the listener is down).
        """
        interval = self.config.dns.reload_interval.total_seconds()
        feed = change_feed(self.config.store_dsn)
        try:
            while not self.stopping.is_set():
                try:
                    await self.rebuild_if_stale()
                except ReputableError as exc:
                    log.error("publisher_failed", error=str(exc))
                await self.wait_change(feed, interval)
        finally:
            if self.background is not None and not self.background.done():
                self.background.cancel()
            await feed.close()

    async def wait_change(
        self, feed: ChangeFeed, timeout: float, *, wake: asyncio.Event | None = None
    ) -> bool:
        """Wait for a change on *feed*, *wake*, *timeout* or stopping; True if the feed woke us."""
        change = asyncio.ensure_future(feed.wait(timeout))
        others = [self.stopping] if wake is None else [self.stopping, wake]
        waiters = [asyncio.ensure_future(event.wait()) for event in others]
        await asyncio.wait({change, *waiters}, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        if not change.done():
            change.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await change
            return False
        return change.result()

    # -- policy ---------------------------------------------------------------------------
    async def full_evaluation(self) -> None:
        """Evaluate every subject once at start-up, in a child process (flat memory here)."""
        cmd = [sys.executable, "-m", "reputable", *_config_args(self.config), "policy", "run"]
        code = await run_child(cmd)
        if code != 0:
            log.error("policy_run_failed", exit_code=code)

    async def policy_loop(self) -> None:
        """Evaluate the subjects touched by new evidence every policy interval, as leader.

        Several nodes may share one store: only the holder of the leader lock evaluates (and
        runs the full evaluation when it becomes leader); the others try again every
        LEADER_RETRY seconds, so a dead leader is replaced within about that long once the
        store has released its lock. On PostgreSQL the leader also wakes on a NOTIFY of new
        evidence written by any node.
        """
        store = open_store(self.config)  # its own connection: runs in a worker thread
        evidence = change_feed(self.config.store_dsn, (EVIDENCE_CHANNEL,))
        full: asyncio.Task[None] | None = None
        # One thread uses and closes it: a cancel (SIGTERM) ends this task at once but not a
        # running evaluate_new, and closing its connection under it crashed CPython's sqlite3
        # (SIGSEGV in sqlite3_last_insert_rowid); the close queued behind it runs once it ends.
        thread = ThreadPoolExecutor(1, thread_name_prefix="policy")
        loop = asyncio.get_running_loop()
        interval = self.config.policy.interval.total_seconds()
        prefixes = await asyncio.to_thread(prefix_table, self.config)
        try:
            while not self.stopping.is_set():
                leading = await loop.run_in_executor(thread, self.leader.try_acquire)
                if leading != self.leading:
                    self.leading = leading
                    event = "policy_leader" if leading else "policy_follower"
                    log.info(event, lock=self.leader.name)
                    if leading and (full is None or full.done()):
                        full = asyncio.create_task(self.full_evaluation())
                if not leading:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stopping.wait(), LEADER_RETRY)
                    continue
                try:
                    outcome = await loop.run_in_executor(
                        thread,
                        partial(
                            evaluate_new,
                            store,
                            self.config.policy,
                            self.config.reputation,
                            datetime.now(UTC),
                            prefixes=prefixes,
                        ),
                    )
                    self.activity.policy_runs += 1
                    self.activity.policy_seconds_total += outcome.seconds
                    self.activity.policy_last_seconds = outcome.seconds
                    self.activity.policy_written += len(outcome.changes.upserts)
                    self.activity.policy_delisted += len(outcome.changes.ends)
                    if not outcome.changes.empty():
                        log.info(
                            "policy_evaluated",
                            targets=outcome.targets,
                            listed=len(outcome.decisions),
                            written=len(outcome.changes.upserts),
                            delisted=len(outcome.changes.ends),
                            ms=round(outcome.seconds * 1000, 1),
                        )
                except ReputableError as exc:
                    log.error("policy_failed", error=str(exc))
                # Our API's evidence, or (PostgreSQL) a NOTIFY of any node's new evidence.
                heard = await self.wait_change(evidence, interval, wake=self.evidence_arrived)
                if self.evidence_arrived.is_set() or heard:
                    # Woken by the API: gather what else arrives for a moment, so a stream
                    # of posts costs one evaluation per second, not one per post.
                    await asyncio.sleep(EVIDENCE_GATHER)
                    self.evidence_arrived.clear()
        finally:
            if full is not None:
                full.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await full  # ends the `policy run` child first
            await evidence.close()
            self.leading = False
            thread.submit(self.leader.release)
            thread.submit(store.close)
            thread.shutdown(wait=False)

    async def leader_duty(self, duty: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run a store-wide *duty* (feeds, re-probes, webhooks) only while this node leads.

        With several nodes on one store one of them fetches the feeds, re-probes and POSTs
        the webhooks (twice would mean duplicate deliveries); the duty is cancelled when
        leadership is lost and started again on the node that takes over.
        """
        while not self.stopping.is_set():
            if not self.leading:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), LEADER_RETRY)
                continue
            task = asyncio.create_task(duty())
            while self.leading and not task.done():
                await asyncio.wait({task}, timeout=LEADER_RETRY)
            if task.done():
                return task.result()  # ended by itself: nothing configured, or stopping
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            log.info("leader_duty_stopped", duty=duty.__name__)

    # -- sources --------------------------------------------------------------------------
    async def feeds(self) -> None:
        """Refresh the configured feeds (imported only once there are feeds: httpx is heavy)."""
        while not self.store.feeds():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), 10)
            if self.stopping.is_set():
                return
        from reputable.listings.feeds import refresh_feeds

        await refresh_feeds(self.config, lambda: open_store(self.config), self.stopping)

    async def maillogs(self) -> None:
        """Follow the ``[sources.maillog]`` files, if any are configured."""
        if not self.config.extra.get("sources", {}).get("maillog"):
            return
        from reputable.evidence.sources.maillog import follow_maillogs

        await follow_maillogs(self.config, lambda: open_store(self.config), self.stopping)

    async def netlogs(self) -> None:
        """Follow the ``[[sources.netlog]]`` files, if any are configured."""
        if not self.config.extra.get("sources", {}).get("netlog"):
            return
        from reputable.evidence.sources.netlog import follow_netlogs

        await follow_netlogs(self.config, lambda: open_store(self.config), self.stopping)

    async def journal(self) -> None:
        """Follow systemd's journal when ``[sources.journal]`` is configured."""
        if "journal" not in self.config.extra.get("sources", {}):
            return
        from reputable.evidence.sources.journal import follow_journal

        await follow_journal(self.config, lambda: open_store(self.config), self.stopping)

    async def probes(self) -> None:
        """Probe new senders' reverse DNS when ``[probes] auto_rdns`` is on."""
        if not self.config.extra.get("probes", {}).get("auto_rdns"):
            return
        from reputable.evidence.sources.probes.auto import probe_new_senders

        await probe_new_senders(self.config, lambda: open_store(self.config), self.stopping)

    async def reprobes(self) -> None:
        """Re-probe relay/proxy listings made by probes: daily, and at once on a removal request."""
        from reputable.evidence.sources.probes.guard import RateLimiter
        from reputable.evidence.sources.settings import parse_settings
        from reputable.listings.reprobe import ROUND_SECONDS, reprobe_round

        settings = parse_settings(self.config.extra)
        limiter = RateLimiter(settings.probes.per_target, settings.probes.per_minute)
        every = self.config.policy.reprobe_every.total_seconds()
        store = open_store(self.config)
        try:
            while not self.stopping.is_set():
                try:
                    for result in await reprobe_round(
                        store, settings, every, datetime.now(UTC), limiter=limiter
                    ):
                        log.info("reprobed", target=result.target, result=result.result)
                        key = str(result.result)
                        self.activity.probes[key] = self.activity.probes.get(key, 0) + 1
                except ReputableError as exc:
                    log.error("reprobe_failed", error=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), ROUND_SECONDS)
        finally:
            store.close()

    async def sinks(self) -> None:
        """Keep the ``[[sinks]]`` (nftables, ipset, rpz files) current after each snapshot."""
        if not self.config.extra.get("sinks"):
            return
        from reputable.publication.sinks import follow_sinks

        await follow_sinks(self.config, lambda: open_store(self.config), self.stopping)

    async def webhooks(self) -> None:
        """Queue listing events and deliver them to the ``[[webhooks]]`` endpoints."""
        if not self.config.extra.get("webhooks"):
            return
        from reputable.publication.webhooks.deliver import run_webhooks

        await run_webhooks(self.config, lambda: open_store(self.config), self.stopping)

    async def policy_service(self) -> None:
        """Answer Postfix policy requests on ``policy_service.listen`` from the snapshot."""
        if not self.config.extra.get("policy_service"):
            return
        from reputable.policyd.server import run_policy_service

        def ready(service: Any) -> None:
            self.policy_metrics = service.metrics

        await run_policy_service(
            self.config,
            lambda: open_store(self.config),
            self.stopping,
            on_evidence=self.evidence_arrived.set,
            service_ready=ready,
        )

    async def retention(self) -> None:
        """Prune evidence older than ``[retention] evidence`` every 10 minutes, in small batches."""
        from reputable.store.maintenance import evidence_retention
        from reputable.store.sqlite_tx import DB_ERRORS

        policy = self.config.policy
        keep = evidence_retention(
            self.config.extra.get("retention"), policy.recidivism_window + policy.max_listing
        )
        if keep is None:
            return
        postgres = is_postgres(self.config.store_dsn)
        path = None if postgres else store_path(self.config)
        while not self.stopping.is_set():
            before, after_id, total = datetime.now(UTC) - keep, 0, 0
            while not self.stopping.is_set():
                try:
                    if path is None:  # PostgreSQL: the store's pool is shared by threads
                        batch = partial(self.store.prune_batch, before, after_id)
                    else:
                        batch = partial(_prune_batch, path, before, after_id)
                    deleted, after_id = await asyncio.to_thread(batch)
                except DB_ERRORS as exc:
                    log.error("retention_failed", error=str(exc))
                    break
                total += deleted
                if deleted == 0:
                    break
                await asyncio.sleep(0.05)  # let writers in between batches
            if total:
                log.info("evidence_pruned", rows=total, before=before)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), RETENTION_EVERY)

    # -- workers ----------------------------------------------------------------------------
    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        cmd = [
            sys.executable,
            "-m",
            "reputable.dnsworker",
            *_config_args(self.config),
            "--index",
            str(index),
        ]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE)

    async def start_workers(self) -> None:
        """Start the DNS workers and wait until each has bound its sockets.

        With one worker, DNS runs in this process (threads; the compiled loop releases the
        GIL), which saves a whole interpreter's memory and start-up; with several, each is
        its own process sharing the port with SO_REUSEPORT.
        """
        if len(self.workers) == 1:
            if self.local_worker is not None:  # started by the launcher before the imports
                log.info("dns_ready", workers=1, listen=self.config.dns.listen, mode="in-process")
                return
            self.local_worker = Worker(self.config, 0)
            await asyncio.to_thread(self.local_worker.start)
            log.info("dns_ready", workers=1, listen=self.config.dns.listen, mode="in-process")
            return
        for index in range(len(self.workers)):
            self.workers[index] = self._spawn(index)
        for index, proc in enumerate(self.workers):
            if proc is None or proc.stdout is None:
                continue
            first = await asyncio.to_thread(proc.stdout.readline)
            if first.strip() != b"ready":
                code = await asyncio.to_thread(proc.wait)
                raise ReputableError(f"DNS worker {index} failed to start (exit code {code})")
        log.info("dns_ready", workers=len(self.workers), listen=self.config.dns.listen)

    async def watchdog(self) -> None:
        """Restart a DNS worker that died."""
        while not self.stopping.is_set():
            for index, proc in enumerate(self.workers):
                if proc is not None and proc.poll() is not None and not self.stopping.is_set():
                    log.error("dns_worker_died", worker=index, exit_code=proc.returncode)
                    await asyncio.sleep(WORKER_RESTART_DELAY)
                    self.workers[index] = self._spawn(index)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), 0.5)

    def stop_workers(self) -> None:
        """Terminate the DNS workers and wait for them."""
        if self.local_worker is not None:
            self.local_worker.stop()
            self.local_worker = None
        for proc in self.workers:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in self.workers:
            if proc is not None:
                try:
                    proc.wait(timeout=CHILD_STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    # -- metrics ----------------------------------------------------------------------------
    def metrics_text(self) -> str:
        """Return the Prometheus exposition of all workers' counters."""
        paths = [metrics_path(self.config, i) for i in range(len(self.workers))]
        return (
            render(read_worker_files(paths), serial=self.store.serial())
            + (self.http_metrics() if self.http_metrics is not None else "")
            + (self.policy_metrics() if self.policy_metrics is not None else "")
            + self.server_text()
            + render_activity(self.activity)
            + "# HELP reputable_policy_leader 1 while this node is the policy evaluator.\n"
            + "# TYPE reputable_policy_leader gauge\n"
            + f"reputable_policy_leader {int(self.leading)}\n"
        )

    def server_text(self) -> str:
        """Return the supervisor's gauges (build info, snapshot age, listings by zone/cause)."""
        from reputable import __version__

        now = time.time()
        try:
            mtime: float | None = self.config.snapshot_path.stat().st_mtime
        except OSError:
            mtime = None
        zones = {4: self.config.ip_zone.name, 6: self.config.ip_zone.name}
        listings: dict[tuple[str, str], int] = {}
        gauges = self._gauges()
        for (family, cause), count in gauges.listings.items():
            key = (zones.get(family, self.config.domain_zone.name), cause)
            listings[key] = listings.get(key, 0) + count
        return render_server(
            version=__version__,
            python=sys.version.split()[0],
            started=self.started,
            now=now,
            snapshot_mtime=mtime,
            listings=listings,
            evidence=gauges.evidence,
            feeds=gauges.feeds,
            followers=gauges.followers,
        )

    def _gauges(self) -> StoreGauges:
        """The store's gauges: a read-only SQLite connection of this thread's, or the pool's."""
        from reputable.store.maintenance import store_gauges

        if is_postgres(self.config.store_dsn):
            return self.store.gauges(datetime.now(UTC))
        return store_gauges(store_path(self.config), datetime.now(UTC))

    def status(self) -> dict[str, object]:
        """Return what `reputable status` shows: uptime, snapshot, listings, queries/s, sources."""
        from reputable import __version__
        from reputable.publication.snapshot.layout import MappedFile

        now = time.time()
        records = read_worker_files(
            [metrics_path(self.config, i) for i in range(len(self.workers))]
        )
        total = sum(int(c) for r in records for c in r["counters"])
        previous, self._queries = self._queries, (now, total)
        if previous is not None and now - previous[0] >= 0.5:
            rate = (total - previous[1]) / (now - previous[0])
        else:
            rate = total / max(now - self.started, 1e-3)
        snapshot: dict[str, object] = {"path": str(self.config.snapshot_path)}
        with contextlib.suppress(OSError, ReputableError):
            snapshot["age_seconds"] = round(now - self.config.snapshot_path.stat().st_mtime, 3)
            snapshot["serial"] = MappedFile(self.config.snapshot_path).header.get("serial")
        gauges = self._gauges()
        return {
            "version": __version__,
            "pid": os.getpid(),
            "uptime_seconds": round(now - self.started, 3),
            "reloads": self.reloads,
            "policy_leader": self.leading,
            "serial": self.store.serial(),
            "snapshot": snapshot,
            "listings": sum(gauges.listings.values()),
            "dns_workers": len(records),
            "queries_total": total,
            "queries_per_second": round(rate, 3),
            "feeds": [
                {"name": name, "ok": error is None, "error": error, "last_success": success}
                for name, (success, error) in sorted(gauges.feeds.items())
            ],
            "followers": [
                {"name": name, "lag_bytes": behind, "lag_seconds": round(waited, 3)}
                for name, (behind, waited) in sorted(gauges.followers.items())
            ],
        }

    def reload(self) -> None:
        """Re-read the config file (SIGHUP, `reputable reload`); keep the old one if it is bad.

        Policy, zone codes and TXT URLs take effect at once (the publisher rebuilds the
        snapshot and the DNS workers swap it in without dropping a query); listen addresses,
        workers and sources' files need a restart, which the log line says.
        """
        from reputable.config import load_config

        sdnotify.notify(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")
        try:
            fresh = load_config(self.config.path)
            log.format_from(fresh.extra.get("log"))
        except ReputableError as exc:
            log.error("reload_failed", error=str(exc), kept="the running config")
        else:
            restart = [
                key
                for key, old, new in (
                    ("dns", self.running.dns, fresh.dns),
                    ("sources", self.running.extra.get("sources"), fresh.extra.get("sources")),
                    ("store", self.running.store_dsn, fresh.store_dsn),
                )
                if old != new
            ]
            self.config = fresh
            self.digest = fingerprint(fresh)
            self.reloads += 1
            log.info("config_reloaded", path=fresh.path, restart_needed=restart or "none")
        sdnotify.notify("READY=1")

    def health(self) -> tuple[int, dict[str, object]]:
        """Ask our own DNS listener for the IP zone's SOA: (200, ...) if it answered, else 503."""
        import dns.exception
        import dns.message
        import dns.query
        import dns.rcode

        host, port = self.running.dns.listen[0]
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
        zone = self.config.ip_zone.name
        try:
            query = dns.message.make_query(zone, "SOA", use_edns=0)
            reply, _ = dns.query.udp_with_fallback(query, host, port=port, timeout=1)
        except (OSError, dns.exception.DNSException) as exc:
            return 503, {"status": "failing", "dns": f"{host}:{port} did not answer: {exc}"}
        if reply.rcode() != dns.rcode.NOERROR or not reply.answer:
            rcode = dns.rcode.to_text(reply.rcode())
            return 503, {
                "status": "failing",
                "dns": f"{host}:{port} answered {rcode} for {zone} SOA",
            }
        serial = reply.answer[0][0].serial
        return 200, {"status": "ok", "dns": f"{host}:{port}", "zone": zone, "serial": serial}

    # -- http -------------------------------------------------------------------------------
    async def http_api(self) -> None:
        """Serve the HTTP API on ``http.listen`` (imported only when it is switched on)."""
        if self.http.listen is None:
            return
        from reputable.web.context import Context
        from reputable.web.server import run_http

        ctx = Context.create(self.config, self.http, lambda: open_store(self.config))
        ctx.on_evidence = self.evidence_arrived.set
        self.http_metrics = ctx.metrics.render
        await run_http(ctx, self.stopping)

    def start_metrics_server(self) -> ThreadingHTTPServer | None:
        """Serve GET /metrics on ``metrics_listen`` in a thread (None when disabled)."""
        if not self.metrics_listen:
            return None
        host, _, port = self.metrics_listen.rpartition(":")
        text: Callable[[], str] = self.metrics_text
        health: Callable[[], tuple[int, dict[str, object]]] = self.health
        status: Callable[[], dict[str, object]] = self.status

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the stdlib's name
                path = self.path.split("?", 1)[0]
                if path in {"/health", "/status"}:
                    code, report = health() if path == "/health" else (200, status())
                    body = (json.dumps(report) + "\n").encode()
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if path != "/metrics":
                    self.send_error(404, "only /metrics, /health and /status live here")
                    return
                body = text().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # stdlib name
                return

        server = ThreadingHTTPServer((host.strip("[]"), int(port)), Handler)
        Thread(target=server.serve_forever, daemon=True, name="metrics").start()
        log.info("metrics_ready", listen=self.metrics_listen)
        return server

    def drop_privileges(self) -> None:
        """Become ``user`` now that every socket is bound; its data_dir must be writable."""
        account = privileges.lookup(self.config.extra.get("user"))
        if account is None:
            return
        wal: list[Path] = []
        if not is_postgres(self.config.store_dsn):
            db = store_path(self.config)
            wal = [db.with_name(db.name + suffix) for suffix in ("", "-wal", "-shm")]
        privileges.give_files(account, [*wal, self.config.snapshot_path])
        if privileges.drop(account):
            log.info("privileges_dropped", user=account.name, uid=account.uid)
        if not os.access(self.config.data_dir, os.W_OK):
            raise ConfigError(
                f"user = {account.name!r} cannot write data_dir {self.config.data_dir}:"
                f" chown -R {account.name} {self.config.data_dir}"
            )

    async def run(self) -> None:
        """Evaluate, publish, start workers, then supervise until stopped."""
        started = time.perf_counter()
        # Answer from the last snapshot at once; the publisher swaps in a fresh one if the
        # store moved while we were down. Only a missing snapshot, or one this version cannot
        # read (an older format), must be built first.
        await self.first_snapshot()
        if not readable(self.config.snapshot_path):
            raise ReputableError(
                f"no snapshot at {self.config.snapshot_path}: the first build failed (see above)"
            )
        if self.http.listen is not None:
            check_bind(*self.http.listen)  # a taken port is one clear line, before anything runs
        server = self.start_metrics_server()
        try:
            await self.start_workers()
            self.drop_privileges()
            log.info(
                "serve_ready", seconds=round(time.perf_counter() - started, 3), pid=os.getpid()
            )
            sdnotify.notify(f"READY=1\nSTATUS=answering DNS\nMAINPID={os.getpid()}")
            # Several nodes on one store: the leader alone evaluates (store/coordination.py).
            # Tried here, before the tasks start, so the start-up evaluation begins at once
            # (the HTTP app's imports hold the loop for seconds); a follower that takes over
            # later runs it from the policy loop.
            self.leading = self.leader.try_acquire()
            if self.leading:
                log.info("policy_leader", lock=self.leader.name)
            async with asyncio.TaskGroup() as group:
                # DNS answers from the existing snapshot first; the full evaluation follows.
                if self.leading:
                    group.create_task(self.full_evaluation())
                group.create_task(self.publisher())
                group.create_task(self.watchdog())
                group.create_task(self.policy_loop())
                group.create_task(self.leader_duty(self.feeds))
                group.create_task(self.probes())
                group.create_task(self.leader_duty(self.reprobes))
                group.create_task(self.netlogs())
                group.create_task(self.maillogs())
                group.create_task(self.journal())
                group.create_task(self.sinks())
                group.create_task(self.leader_duty(self.webhooks))
                group.create_task(self.policy_service())
                group.create_task(self.http_api())
                group.create_task(self.retention())
        finally:
            sdnotify.notify("STOPPING=1")
            self.stopping.set()
            self.stop_workers()
            if server is not None:
                server.shutdown()


def serve(
    config: Config,
    *,
    metrics_listen: str | None,
    worker: Worker | None = None,
    first_build: subprocess.Popen[bytes] | None = None,
) -> None:
    """Run the blocklist server until SIGINT/SIGTERM.

    *worker*: DNS already answering; *first_build*: the snapshot build already running.
    """
    from reputable.config_check import preflight

    preflight(config, metrics_listen)  # the whole config and --metrics, before anything binds
    if config.extra.get("sinks"):  # a bad [[sinks]] entry stops serve before it starts
        from reputable.publication.sinks import sinks_of

        sinks_of(config)
    if config.extra.get("webhooks"):  # so does a bad [[webhooks]] entry
        from reputable.publication.webhooks.settings import parse_webhooks

        parse_webhooks(config.extra["webhooks"])
    if config.extra.get("policy_service"):  # and a bad [policy_service]
        from reputable.policyd.settings import parse_policy

        parse_policy(config.extra["policy_service"])
    privileges.lookup(config.extra.get("user"))  # an unknown user fails before anything else
    from reputable.store.maintenance import evidence_retention

    evidence_retention(  # so does a bad [retention]
        config.extra.get("retention"), config.policy.recidivism_window + config.policy.max_listing
    )
    store = open_store(config)
    from reputable.core.lifeline import adopt_children

    adopt_children()  # children end when serve does, even by SIGKILL (core/lifeline.py)
    supervisor = Supervisor(
        config, store, metrics_listen=metrics_listen, worker=worker, first_build=first_build
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        import signal

        def stop(signum: int, frame: object) -> None:
            with contextlib.suppress(RuntimeError):  # the loop just closed: stopping anyway
                loop.call_soon_threadsafe(supervisor.stopping.set)

        # signal.signal, not loop.add_signal_handler: asyncio puts the defaults back when
        # the loop closes, and a second signal during the cleanup below would then raise
        # KeyboardInterrupt (or end us by SIGTERM) halfway through stopping the children.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, stop)
        signal.signal(signal.SIGHUP, lambda *_: loop.call_soon_threadsafe(supervisor.reload))
        pid_file = pid_path(config)
        pid_file.write_text(f"{os.getpid()}\n")
        runner = asyncio.create_task(supervisor.run())
        stopper = asyncio.create_task(supervisor.stopping.wait())
        done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if runner not in done:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        else:
            stopper.cancel()
            runner.result()

    import signal

    previous = {
        sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        asyncio.run(main())
    finally:
        for sig in previous:  # already stopping: a second signal must not cut the cleanup
            signal.signal(sig, signal.SIG_IGN)
        supervisor.stop_workers()
        store.close()
        with contextlib.suppress(OSError):
            pid_path(config).unlink()
        for sig, handler in previous.items():
            signal.signal(sig, handler)

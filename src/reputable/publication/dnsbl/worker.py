"""A DNS worker process: UDP and TCP on every listen address, answering from the snapshot.

The UDP loop is the hot path. It is a plain blocking ``recvfrom``/``sendto`` loop in a thread
per socket, because asyncio's datagram transport costs about a third of the throughput here
(see bench/dns_vs_rbldnsd.py); when the compiled loop (``_fastdns``) is built it takes over the
common queries in batches. TCP, reloads and counter flushes run on an asyncio loop in another
thread. A reload swaps one reference between two packets, so no query is dropped.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reputable.core import log, privileges
from reputable.core.errors import ReputableError, SnapshotError
from reputable.publication.dnsbl import fastpath, rrl
from reputable.publication.dnsbl.access import Access
from reputable.publication.dnsbl.wire import Responder, ZoneSpec, refusal
from reputable.publication.settings import PublicationConfig as Config
from reputable.publication.snapshot.overlay import overlay_of, overlay_path
from reputable.publication.snapshot.view import Snapshot

if TYPE_CHECKING:  # asyncio is imported when TCP starts, after UDP answers (~20 ms)
    from reputable.publication.dnsbl.tcp import TcpService
    from reputable.publication.dnsbl.transfer import Transfers

#: How often the housekeeping thread looks at the stop flag (shutdown stays well under 2 s).
STOP_POLL_SECONDS = 0.1


def zone_specs(config: Config) -> list[ZoneSpec]:
    """Return the zones of *config* in counter order: ip, domain, allow."""
    return [
        ZoneSpec(config.ip_zone.name, "ip", config.ip_zone.ttl),
        ZoneSpec(config.domain_zone.name, "domain", config.domain_zone.ttl),
        ZoneSpec(config.allow_zone.name, "allow", config.allow_zone.ttl),
    ]


def limiter_of(config: Config, module: Any) -> rrl.Limiter | None:
    """Return the response rate limiter *config* asks for (compiled with *module*), or None."""
    limits = config.dns.rrl
    overrides = [(r.network, r.rrl) for r in config.dns.access if r.rrl is not None]
    rules = rrl.rules_for(limits.responses_per_second, limits.exempt, overrides)
    return rrl.limiter_for(limits.responses_per_second, limits.slip, rules, module)


def metrics_path(config: Config, index: int) -> Path:
    """Return the file where worker *index* publishes its counters."""
    return config.snapshot_path.with_name(f"{config.snapshot_path.name}.worker{index}.json")


def serve_plan(config: Config, responder: Responder) -> dict[str, Any] | None:
    """Return what a start needs to answer before its imports (``fastpath.early_start``).

    None when an early start could not serve *config* as the worker would: several workers,
    the compiled loop off, or per-client access rules (the early loop answers everyone).
    """
    dns = config.dns
    args = fastpath.engine_args(responder)
    if dns.workers != 1 or not dns.fast_path or not Access(dns.access).open or args is None:
        return None
    if config.path is None:
        return None
    try:
        text = config.path.read_text(encoding="utf-8")
    except OSError:
        return None
    return {
        "config": text,
        "snapshot": str(config.snapshot_path),
        "listen": [list(endpoint) for endpoint in dns.listen],
        "engine": args,
    }


def record_plan(config: Config) -> None:
    """Write (or remove) the serve plan after a snapshot build, so the next start is early."""
    specs = zone_specs(config)
    responder = Responder(
        Snapshot(config.snapshot_path),
        specs,
        nameservers=config.dns.nameservers,
        hostmaster=config.dns.hostmaster,
        negative_ttl=config.dns.negative_ttl,
        counters=[0] * (4 * (len(specs) + 1)),
        max_udp=config.dns.max_udp_answer,
        amplification=config.dns.max_amplification,
    )
    plan = serve_plan(config, responder)
    if plan is not None:
        fastpath.write_plan(config.snapshot_path, plan)
    else:
        with contextlib.suppress(OSError):
            fastpath.plan_path(config.snapshot_path).unlink(missing_ok=True)


class Worker:
    """One DNS server process's state: the current responder and its sockets."""

    def __init__(
        self, config: Config, index: int, early: fastpath.EarlyStart | None = None
    ) -> None:
        self.config = config
        self.index = index
        self.early = early
        self.zones = zone_specs(config)
        self.counters = [0] * (4 * (len(self.zones) + 1))
        self.access = Access(config.dns.access)
        self.limiter = limiter_of(config, fastpath.extension() if config.dns.fast_path else None)
        self.stopping = threading.Event()
        self.snapshot_id: tuple[int, int] | None = None
        self.overlay_id: tuple[int, int] | None = None  # the overlay file last looked at
        self.transfers: Transfers | None = None  # zone transfers: set up with TCP
        self.notify_due = True  # NOTIFY the secondaries (worker 0) at start and after reloads
        self.notified: int | None = None  # the serial last NOTIFYed
        self._notifying: object = None  # the running NOTIFY task (a reference keeps it alive)
        self.responder = self._load()
        self.reloads = 0
        self.udp: list[socket.socket] = []
        self.tcp: list[socket.socket] = []
        self.tcp_service: TcpService | None = None

    # -- snapshot ---------------------------------------------------------------------------
    def _overlay_identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(overlay_path(self.config.snapshot_path))
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns)

    def _load(self, base: Snapshot | None = None) -> Responder:
        """Return a responder over the snapshot file (or *base*, re-read) and its overlay."""
        started = time.perf_counter()
        path = self.config.snapshot_path
        if base is None:
            snapshot = Snapshot(path)
            st = snapshot.file.stat
            self.snapshot_id = (st.st_ino, st.st_mtime_ns)
        else:
            snapshot = Snapshot(path, mapped=base.file)
        self.overlay_id = self._overlay_identity()
        snapshot.attach_overlay(overlay_path(path))
        dns = self.config.dns
        responder = Responder(
            snapshot,
            self.zones,
            nameservers=dns.nameservers,
            hostmaster=dns.hostmaster,
            negative_ttl=dns.negative_ttl,
            counters=self.counters,
            max_udp=dns.max_udp_answer,
            amplification=dns.max_amplification,
        )
        if self.transfers is not None:
            self.transfers.remember(snapshot)
            responder.outside = self.transfers.soa_reply if self.transfers.rpz else None
        log.info(
            "snapshot_loaded",
            worker=self.index,
            serial=snapshot.serial,
            listings=snapshot.listings,
            overlay=None if snapshot.overlay is None else len(snapshot.overlay),
            overlay_serial=snapshot.effective_serial,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return responder

    def reload_if_changed(self) -> bool:
        """Swap in a new snapshot when the file was replaced; return True if it was."""
        try:
            st = os.stat(self.config.snapshot_path)
        except OSError:
            return False
        try:
            if (st.st_ino, st.st_mtime_ns) != self.snapshot_id:
                self.responder = self._load()
                self.notify_due = True  # a new serial for the secondaries
            elif self._overlay_identity() != self.overlay_id:
                # Only the overlay moved: same base mapping, new changed addresses and a new
                # serial, which the secondaries fetch by IXFR after our NOTIFY.
                current = self.responder.snapshot
                path = overlay_path(self.config.snapshot_path)
                if current.overlay is not None and overlay_of(current.file, path) is None:
                    # The overlay file was removed or now belongs to a base that is not in
                    # place yet (a rebuild is swapping in): keep answering the changes this
                    # overlay holds until the new base appears, rather than fall back to
                    # the base alone (which lacks them). overlay_id is left as it was, so
                    # the next poll looks again.
                    return False
                self.responder = self._load(current)
                self.notify_due = True
            else:
                return False
        except SnapshotError as exc:
            log.warning("snapshot_rejected", worker=self.index, error=str(exc))
            return False
        self.reloads += 1
        return True

    # -- sockets ----------------------------------------------------------------------------
    def bind(self) -> None:
        """Open UDP and TCP sockets on every listen address (SO_REUSEPORT: workers share)."""
        for host, port in self.config.dns.listen:
            try:
                udp, tcp = fastpath.bind_pair(host, port, shared=self.config.dns.workers > 1)
            except OSError as exc:
                raise ReputableError(
                    f"cannot listen on {host}:{port}: {exc.strerror}; is another DNS server"
                    " running there? change [dns] listen in reputable.toml"
                ) from exc
            self.udp.append(udp)
            self.tcp.append(tcp)

    def udp_loop(self, sock: socket.socket) -> None:
        """Answer UDP queries on *sock* until stopped (the hot loop; see bench/)."""
        loop = fastpath.loop_for(sock.fileno()) if self.config.dns.fast_path else None
        log.info("udp_loop", worker=self.index, compiled=loop is not None)
        if loop is None:
            self._udp_loop_python(sock)
        else:
            self._udp_loop_compiled(sock, loop)

    def _udp_loop_compiled(self, sock: socket.socket, loop: fastpath.Loop) -> None:
        # The C loop answers the common IPv4-zone queries a batch at a time and returns the
        # rest for Responder.respond. The engine follows self.responder between batches, so a
        # reload swaps snapshots without dropping a query.
        responder: Responder | None = None
        engine: fastpath.Engine | None = None
        counters = self.counters
        stopping = self.stopping
        run = loop.run
        answer = self._answer
        limiter = self.limiter if isinstance(self.limiter, fastpath.compiled_limiter()) else None
        while not stopping.is_set():
            current = self.responder
            if current is not responder:
                responder = current
                engine = fastpath.engine_for(current)
            try:
                rest = run(engine, counters, 500, self.access.open, limiter)
            except OSError:
                if stopping.is_set():
                    return
                continue
            for packet, client in rest:
                answer(sock, packet, client)

    def _udp_loop_python(self, sock: socket.socket) -> None:
        # Measured cheap wins (docs/benchmarks.md): a non-blocking recvfrom, with poll() only
        # when the queue is empty, saves the poll() a socket timeout adds before every packet;
        # the common case is inlined with bound methods and try/except instead of suppress().
        sock.setblocking(False)
        recvfrom = sock.recvfrom
        sendto = sock.sendto
        answer = self._answer
        access = self.access
        limiter = self.limiter
        is_set = self.stopping.is_set
        waiter = select.poll()
        waiter.register(sock, select.POLLIN)
        while not is_set():
            try:
                packet, client = recvfrom(4096)
            except BlockingIOError:
                waiter.poll(500)
                continue
            except OSError:
                if is_set():
                    return
                continue
            if not access.open or limiter is not None:
                answer(sock, packet, client)
                continue
            try:
                reply = self.responder.respond(packet, 512)
            except Exception as exc:  # supervisor boundary: one bad packet never stops the loop
                self.counters[-1] += 1
                log.error("query_failed", worker=self.index, error=repr(exc))
                continue
            if reply is not None:
                try:  # noqa: SIM105  # suppress() costs ~0.2 µs per packet here (measured)
                    sendto(reply, client)
                except OSError:
                    pass

    def _answer(self, sock: socket.socket, packet: bytes, client: Any) -> None:
        """Answer one UDP packet in Python (access control, Responder.respond, RRL, sendto)."""
        if not self.access.open:
            action = self.access.action(client[0])
            if action != "answer":
                self._deny(sock, packet, client, action)
                return
        try:
            reply = self.responder.respond(packet, 512)
        except Exception as exc:  # supervisor boundary: one bad packet never stops the loop
            self.counters[-1] += 1
            log.error("query_failed", worker=self.index, error=repr(exc))
            return
        self._send(sock, reply, client)

    def _send(self, sock: socket.socket, reply: bytes | None, client: Any) -> None:
        """Send *reply* to *client* as response rate limiting allows (drop, TC, or as is)."""
        if reply is not None and self.limiter is not None:
            verdict = self.limiter.check(client[0], reply, int(time.monotonic()))
            if verdict == rrl.DROP:
                return
            if verdict == rrl.SLIP:
                reply = rrl.slipped(reply)
        if reply is not None:
            with contextlib.suppress(OSError):
                sock.sendto(reply, client)

    def _deny(self, sock: socket.socket, packet: bytes, client: Any, action: str) -> None:
        self.counters[-2] += 1  # refused, outside any zone's counters
        if action == "refuse":
            self._send(sock, refusal(packet), client)

    # -- TCP and housekeeping ---------------------------------------------------------------
    def _tcp_answer(self, packet: bytes, host: str) -> bytes | Iterator[bytes | None] | None:
        """Answer one query received over TCP (None closes the connection)."""
        action = "answer" if self.access.open else self.access.action(host)
        if action == "ignore":
            return None
        if action == "refuse":
            self.counters[-2] += 1
            return refusal(packet)
        try:
            if self.transfers is not None and self.transfers.wants(packet):
                # Built message by message in a thread (TcpService), sent as they come.
                return self._guarded(self.transfers.stream(packet, host))
            return self.responder.respond(packet, None)
        except Exception as exc:  # supervisor boundary: one bad query never stops TCP
            self.counters[-1] += 1
            log.error("query_failed", worker=self.index, error=repr(exc), transport="tcp")
            return None

    def _guarded(self, messages: Iterator[bytes]) -> Iterator[bytes | None]:
        """Yield *messages*; a failure midway is counted, logged and closes the connection."""
        try:
            yield from messages
        except Exception as exc:  # supervisor boundary: one bad transfer never stops TCP
            self.counters[-1] += 1
            log.error("query_failed", worker=self.index, error=repr(exc), transport="tcp")
            yield None

    async def housekeeping(self) -> None:
        """Serve TCP, reload changed snapshots and publish counters until stopped."""
        import asyncio

        from reputable.publication.dnsbl.tcp import TcpLimits, TcpService

        if "transfer" in self.config.extra:  # else AXFR/IXFR stay REFUSED by the responder
            from reputable.publication.dnsbl.transfer import Transfers

            self.transfers = Transfers(self.config)
            self.transfers.remember(self.responder.snapshot)
            if self.transfers.rpz:
                self.responder.outside = self.transfers.soa_reply
        dns = self.config.dns
        self.tcp_service = TcpService(
            self._tcp_answer,
            TcpLimits(
                idle_timeout=dns.tcp_idle_timeout,
                write_timeout=dns.tcp_write_timeout,
                max_clients=dns.tcp_max_clients,
                max_per_client=dns.tcp_max_per_client,
            ),
        )
        await self.tcp_service.start(self.tcp)
        interval = dns.reload_interval.total_seconds()
        try:
            next_check = 0.0
            while not self.stopping.is_set():
                if time.monotonic() >= next_check:
                    self.reload_if_changed()
                    self.flush_counters()
                    next_check = time.monotonic() + interval
                elif self._overlay_identity() != self.overlay_id:
                    # A one-entry change must answer within 2 s: the overlay is looked for
                    # every STOP_POLL_SECONDS (one stat), not only every reload_interval.
                    self.reload_if_changed()
                if self.notify_due and self.index == 0 and self.transfers is not None:
                    self.notify_due = False
                    self._notifying = asyncio.create_task(self._notify())
                await asyncio.sleep(min(interval, STOP_POLL_SECONDS))
        finally:
            await self.tcp_service.close()

    async def _notify(self) -> None:
        """Send NOTIFY for every zone to each ``[transfer] notify`` secondary (RFC 1996)."""
        from reputable.publication.dnsbl.transfer import send_notify

        serial = self.responder.snapshot.effective_serial
        if serial != self.notified:  # a base that only folds the overlay in: nothing new
            self.notified = serial
            await send_notify(self.config, serial)

    def flush_counters(self) -> None:
        """Write this worker's counters where the supervisor reads them (atomic replace)."""
        path = metrics_path(self.config, self.index)
        zones = [z.name for z in self.zones] + ["-"]
        tcp = self.tcp_service
        data = {
            "worker": self.index,
            "pid": os.getpid(),
            "zones": zones,
            "counters": self.counters,
            "serial": self.responder.snapshot.serial,
            "reloads": self.reloads,
            "rrl": list(self.limiter.counts()) if self.limiter is not None else [0, 0],
            "tcp": [tcp.connections, tcp.evicted, tcp.refused] if tcp is not None else [0, 0, 0],
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)

    def plan(self) -> dict[str, Any] | None:
        """Return the serve plan of this worker's configuration (see :func:`serve_plan`)."""
        return serve_plan(self.config, self.responder)

    def _adopt_early(self, plan: dict[str, Any] | None) -> list[tuple[socket.socket, bytes, Any]]:
        """Take the early start's sockets if it served what this worker serves; else bind."""
        early, self.early = self.early, None
        if early is None:
            self.bind()
            return []
        same = plan is not None and {k: v for k, v in plan.items() if k != "config"} == {
            k: v for k, v in early.plan.items() if k != "config"
        }
        if not same:
            early.close()
            log.warning("early_start_discarded", reason="the configuration changed")
            self.bind()
            return []
        self.udp, self.tcp, pending = early.handover()
        for slot, count in enumerate(early.counters):
            self.counters[slot] += count
        log.info(
            "early_start_adopted",
            answered=early.counters[0] + early.counters[1],
            left_for_python=len(pending),
            overflow=early.overflow,
        )
        return pending

    def start(self) -> None:
        """Bind and start the UDP threads and the TCP/reload thread; return at once."""
        plan = self.plan()
        pending = self._adopt_early(plan)
        for sock, packet, client in pending:
            self._answer(sock, packet, client)
        if plan is not None:
            fastpath.write_plan(self.config.snapshot_path, plan)
        elif self.index == 0:
            with contextlib.suppress(OSError):
                fastpath.plan_path(self.config.snapshot_path).unlink(missing_ok=True)
        self._threads = [
            threading.Thread(target=self.udp_loop, args=(s,), daemon=True, name="udp")
            for s in self.udp
        ]
        self._threads.append(
            threading.Thread(target=self._run_housekeeping, daemon=True, name="housekeeping")
        )
        for thread in self._threads:
            thread.start()
        log.info(
            "dns_worker_ready", worker=self.index, listen=self.config.dns.listen, pid=os.getpid()
        )

    def _run_housekeeping(self) -> None:
        import asyncio

        asyncio.run(self.housekeeping())

    def stop(self) -> None:
        """Stop serving, join the threads and publish the last counters."""
        self.stopping.set()
        deadline = time.monotonic() + 1.5
        for thread in getattr(self, "_threads", []):
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        for sock in (*self.udp, *self.tcp):
            sock.close()
        self.flush_counters()

    def run(self) -> None:
        """Start, announce readiness on stdout, and serve until SIGTERM/SIGINT."""
        self.start()
        privileges.drop(privileges.lookup(self.config.extra.get("user")))  # bound: root no more
        print("ready", flush=True)
        self.stopping.wait()
        self.stop()

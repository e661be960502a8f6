"""Glue for the optional compiled packet loop (``_fastdns``): find it, feed it a snapshot.

The extension answers the common IPv4-zone queries in C, in batches (recvmmsg/sendmmsg), and
hands every other packet back to Python, which answers it with ``Responder.respond``. It is
built by ``pip install`` when a C compiler is present (setup.py, optional); without it, or
with ``REPUTABLE_NO_FASTPATH=1`` or ``[dns] fast_path = false``, the worker runs its
pure-Python loop and answers the same bytes.

It also starts ``reputable serve`` early (:func:`early_start`): before the configuration and
the rest of the server are imported (~0.05 s of imports here, as much again as the
interpreter itself), the launcher binds the sockets and runs the C loop over the last
snapshot, with the engine arguments the previous start recorded next to the snapshot (a
"serve plan", valid only for the very same configuration text). Packets the C engine leaves
to Python wait until the worker takes over (:meth:`Worker.start`), which first checks that
the plan still matches what the configuration says. This module therefore imports nothing
heavier than the snapshot layout.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import threading
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, Protocol

from reputable.core.errors import SnapshotError
from reputable.publication.snapshot.layout import MappedFile

if TYPE_CHECKING:
    from reputable.publication.dnsbl.wire import Responder

#: Set to a non-empty value other than "0" to force the pure-Python loop (tests, debugging).
DISABLE_ENV: Final = "REPUTABLE_NO_FASTPATH"
#: Packets received per system call.
BATCH: Final = 64
#: Poll timeout of the early loop: how soon it sees the worker take over (ms).
EARLY_POLL_MS: Final = 5
#: Packets left for Python that the early loop keeps until the worker takes over.
EARLY_PENDING: Final = 65536
#: The snapshot sections the C engine reads, in the order it expects them.
SECTIONS: Final = (
    "v4_host_addr",
    "v4_host_dns",  # the answer value of each host (deduplicated), not its listings'
    "v4_range_start",
    "v4_range_val",
    "val_index",
    "val_atoms",
    "atom_code",
    "atom_txt_off",
    "atom_txt_len",
    "strings",
)


class Engine(Protocol):
    """One snapshot's IPv4 zone compiled for the C loop (``_fastdns.Engine``)."""

    def respond(self, packet: bytes, max_size: int) -> tuple[bytes, int] | None:
        """Return (UDP reply, counter slot), or None when Python must answer *packet*."""


class Loop(Protocol):
    """Batched receive/answer/send on one UDP socket (``_fastdns.Loop``)."""

    def run(
        self,
        engine: Engine | None,
        counters: list[int],
        timeout_ms: int,
        handle: bool,
        limiter: Any = None,
    ) -> list[tuple[bytes, Any]]:
        """Answer one batch; return the (packet, client address) pairs left for Python."""


def extension() -> ModuleType | None:
    """Return the compiled module, or None when it is not built or disabled by the env var."""
    if os.environ.get(DISABLE_ENV, "") not in ("", "0"):
        return None
    try:
        from reputable.publication.dnsbl import _fastdns  # type: ignore[attr-defined]  # C
    except ImportError:
        return None
    module: ModuleType = _fastdns
    return module


def engine_args(responder: Responder) -> dict[str, Any] | None:
    """Return the arguments of the C engine for *responder*'s IP zone (JSON-able), or None.

    The C loop counts into the first zone's HIT and MISS slots (0 and 1), so it needs the IP
    zone first (``worker.zone_specs`` order); any other layout leaves every packet to Python.
    The SOA serial (the first of the five 32-bit fields that end SOA RDATA, RFC 1035 3.3.13)
    is left out: it is the snapshot's and filled in from it.
    """
    zones = responder.zones
    if not zones or zones[0].spec.kind != "ip":
        return None
    zone = zones[0]
    return {
        "zone": zone.wire.hex(),
        "others": [other.wire.hex() for other in zones[1:]],
        "ttl": zone.ttl,
        "negative_ttl": zone.negative_ttl,
        "soa_names": zone.soa_rdata[:-20].hex(),
        "soa_times": zone.soa_rdata[-16:].hex(),
        "counters": len(responder.counters),
        "max_udp": responder.max_udp,
        "amplification": responder.amplification,
    }


def _engine(
    module: ModuleType,
    snapshot: MappedFile,
    args: dict[str, Any],
    defer: Any = None,
    serial: int | None = None,
) -> Engine:
    """Return the C engine over *snapshot*; the IPv4 addresses in *defer* (a sorted ``u32``
    array: an overlay's changed addresses) are left to Python, which answers them from it.
    *serial*: the SOA's (the overlay's when there is one; the snapshot's by default)."""
    serial = int(snapshot.header["serial"] if serial is None else serial) & 0xFFFFFFFF
    soa = (
        bytes.fromhex(args["soa_names"])
        + struct.pack(">I", serial)
        + bytes.fromhex(args["soa_times"])
    )
    engine: Engine = module.Engine(
        [snapshot.section(name) for name in SECTIONS],
        bytes.fromhex(args["zone"]),
        [bytes.fromhex(other) for other in args["others"]],
        args["ttl"],
        args["negative_ttl"],
        soa,
        args["max_udp"],
        args["amplification"],
        defer,
    )
    return engine


def engine_for(responder: Responder, module: ModuleType | None = None) -> Engine | None:
    """Return a C engine answering *responder*'s IPv4 zone, or None if it cannot."""
    module = module or extension()
    args = engine_args(responder)
    if module is None or args is None:
        return None
    try:
        overlay = responder.snapshot.overlay
        defer = overlay.v4_sorted if overlay is not None and overlay.v4 else None
        snapshot = responder.snapshot
        return _engine(module, snapshot.file, args, defer, snapshot.effective_serial)
    except (ValueError, TypeError, SnapshotError) as exc:
        from reputable.core import log

        log.warning("fast_path_unavailable", serial=responder.snapshot.serial, error=str(exc))
        return None


def compiled_limiter() -> type:
    """Return the compiled ``Limiter`` class (a class nothing is an instance of without it)."""
    module = extension()
    limiter: type = getattr(module, "Limiter", _NoLimiter)
    return limiter


class _NoLimiter:
    """Stands for the compiled Limiter class when the extension is missing."""


def loop_for(fileno: int, module: ModuleType | None = None) -> Loop | None:
    """Return a batched C loop over the UDP socket *fileno*, or None without the extension."""
    module = module or extension()
    if module is None:
        return None
    loop: Loop = module.Loop(fileno, BATCH)
    return loop


# -- early start ---------------------------------------------------------------------------------
def plan_path(snapshot_path: Path) -> Path:
    """Return where the serve plan for the snapshot at *snapshot_path* is kept."""
    return snapshot_path.with_name(snapshot_path.name + ".plan.json")


def write_plan(snapshot_path: Path, plan: dict[str, Any]) -> None:
    """Record *plan* for the next start (atomic replace; left alone when it is unchanged)."""
    path = plan_path(snapshot_path)
    text = json.dumps(plan, sort_keys=True)
    try:
        if path.exists() and path.read_text(encoding="utf-8") == text:
            return
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError:  # a read-only data dir costs the early start, nothing else
        return


def snapshot_path_of(config_path: Path, text: str) -> Path | None:
    """Return the snapshot path *text* names, by the rules of ``config.parse_config``."""
    import tomllib

    raw = tomllib.loads(text)
    base = config_path.parent.resolve()
    data_dir = (base / str(raw.get("data_dir", "."))).resolve()
    dns = raw.get("dns", {})
    snapshot = Path(str(dns.get("snapshot", "reputable.snapshot")))
    return snapshot if snapshot.is_absolute() else data_dir / snapshot


def bind_pair(host: str, port: int, *, shared: bool) -> tuple[socket.socket, socket.socket]:
    """Return a bound UDP socket and a listening TCP socket on *host*:*port*.

    *shared*: SO_REUSEPORT, so several worker processes share the port. Raises OSError.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    udp = socket.socket(family, socket.SOCK_DGRAM)
    tcp = socket.socket(family, socket.SOCK_STREAM)
    try:
        for sock in (udp, tcp):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if shared:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((host, port))
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        udp.settimeout(0.5)
        tcp.listen(128)  # connections wait in the backlog until TCP is served
        tcp.setblocking(False)
    except OSError:
        udp.close()
        tcp.close()
        raise
    return udp, tcp


class EarlyStart:
    """UDP answered by the C loop from the last snapshot while the rest of serve starts."""

    def __init__(self, plan: dict[str, Any], snapshot: MappedFile, engine: Engine) -> None:
        self.plan = plan
        self.snapshot = snapshot  # keeps the mapping alive for the engine
        self.engine = engine
        self.counters = [0] * int(plan["engine"]["counters"])
        self.pending: list[tuple[socket.socket, bytes, Any]] = []
        self.overflow = 0
        self.udp: list[socket.socket] = []
        self.tcp: list[socket.socket] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def bind(self) -> None:
        """Bind every listen address the way the worker does (one worker: no SO_REUSEPORT)."""
        for host, port in self.plan["listen"]:
            udp, tcp = bind_pair(host, port, shared=False)
            self.udp.append(udp)
            self.tcp.append(tcp)

    def start(self, module: ModuleType) -> None:
        """Run one C loop per UDP socket in a thread."""
        for sock in self.udp:
            loop: Loop = module.Loop(sock.fileno(), BATCH)
            thread = threading.Thread(
                target=self._run, args=(sock, loop), daemon=True, name="udp-early"
            )
            thread.start()
            self._threads.append(thread)

    def _run(self, sock: socket.socket, loop: Loop) -> None:
        pending = self.pending
        while not self._stop.is_set():
            try:
                rest = loop.run(self.engine, self.counters, EARLY_POLL_MS, True)
            except OSError:
                continue
            for packet, client in rest:
                if len(pending) < EARLY_PENDING:
                    pending.append((sock, packet, client))
                else:
                    self.overflow += 1

    def handover(
        self,
    ) -> tuple[list[socket.socket], list[socket.socket], list[tuple[socket.socket, bytes, Any]]]:
        """Stop the early loops; return the sockets and the packets left for Python."""
        self._stop.set()
        for thread in self._threads:
            thread.join()
        return self.udp, self.tcp, self.pending

    def close(self) -> None:
        """Stop and close everything (the plan no longer matches the configuration)."""
        self.handover()
        for sock in (*self.udp, *self.tcp):
            sock.close()


def early_start(config_path: Path) -> EarlyStart | None:
    """Answer from the last snapshot now if the last start left a plan for this very config.

    Returns None (and the caller starts the normal way) when the extension is missing or
    disabled, there is no plan, the configuration text changed since it was written, or
    anything about the snapshot or the sockets is off: the normal start reports those.
    """
    module = extension()
    if module is None:
        return None
    early: EarlyStart | None = None
    try:
        text = config_path.read_text(encoding="utf-8")
        snapshot_path = snapshot_path_of(config_path, text)
        if snapshot_path is None:
            return None
        plan = json.loads(plan_path(snapshot_path).read_text(encoding="utf-8"))
        if plan.get("config") != text or plan.get("snapshot") != str(snapshot_path):
            return None
        snapshot = MappedFile(snapshot_path)
        # Addresses changed since the snapshot (its overlay) wait for the worker, which
        # answers them from the overlay.
        from array import array

        from reputable.publication.snapshot.overlay import overlay_of, overlay_path

        overlay = overlay_of(snapshot, overlay_path(snapshot_path))
        defer = None
        serial = None if overlay is None else int(overlay.header["serial"])
        if overlay is not None and overlay.header["overlay"]["v4"]:
            defer = array("I", sorted(int(a) for a in overlay.header["overlay"]["v4"]))
        engine = _engine(module, snapshot, plan["engine"], defer, serial)
        early = EarlyStart(plan, snapshot, engine)
        early.bind()
        early.start(module)
    except (OSError, ValueError, KeyError, TypeError, SnapshotError):
        if early is not None:
            early.close()
        return None
    return early

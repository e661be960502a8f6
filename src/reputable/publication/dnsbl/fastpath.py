"""Glue for the optional compiled packet loop (``_fastdns``): find it, feed it a snapshot.

The extension answers the common IPv4-zone queries in C, in batches (recvmmsg/sendmmsg), and
hands every other packet back to Python, which answers it with ``Responder.respond``. It is
built by ``pip install`` when a C compiler is present (setup.py, optional); without it, or
with ``REPUTABLE_NO_FASTPATH=1`` or ``[dns] fast_path = false``, the worker runs its
pure-Python loop and answers the same bytes.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any, Final, Protocol

from reputable.core import log
from reputable.publication.dnsbl.wire import HIT, MISS, Responder

#: Set to a non-empty value other than "0" to force the pure-Python loop (tests, debugging).
DISABLE_ENV: Final = "REPUTABLE_NO_FASTPATH"
#: Packets received per system call.
BATCH: Final = 64
#: The snapshot sections the C engine reads, in the order it expects them.
SECTIONS: Final = (
    "v4_host_addr",
    "v4_host_val",
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
        self, engine: Engine | None, counters: list[int], timeout_ms: int, handle: bool
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


def engine_for(responder: Responder, module: ModuleType | None = None) -> Engine | None:
    """Return a C engine answering *responder*'s IPv4 zone, or None if it cannot.

    The C loop counts into the first zone's HIT and MISS slots, so it needs the IP zone
    first (``worker.zone_specs`` order); any other layout leaves every packet to Python.
    """
    module = module or extension()
    zones = responder.zones
    if module is None or not zones or zones[0].spec.kind != "ip" or (HIT, MISS) != (0, 1):
        return None
    zone = zones[0]
    snapshot = responder.snapshot
    try:
        sections = [snapshot.file.section(name) for name in SECTIONS]
        engine: Engine = module.Engine(
            sections,
            zone.wire,
            [other.wire for other in zones[1:]],
            zone.ttl,
            zone.negative_ttl,
            zone.soa_rdata,
        )
    except (ValueError, TypeError) as exc:
        log.warning("fast_path_unavailable", serial=snapshot.serial, error=str(exc))
        return None
    return engine


def loop_for(fileno: int, module: ModuleType | None = None) -> Loop | None:
    """Return a batched C loop over the UDP socket *fileno*, or None without the extension."""
    module = module or extension()
    if module is None:
        return None
    loop: Loop = module.Loop(fileno, BATCH)
    return loop

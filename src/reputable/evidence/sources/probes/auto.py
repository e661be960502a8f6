"""Serve's automatic rDNS probe of addresses newly seen connecting to the operator's mail servers.

Off unless ``[probes] auto_rdns = true``. Every round reads the evidence stored since the last
round (cursor ``probe_rdns``), keeps single addresses whose evidence comes from one of
``probes.auto_rdns_sources`` (mail logs by default; IPv6 is scored per /64, so IPv6 senders
are not probed automatically), and probes those not probed within ``probes.auto_rdns_every``,
at most ``probes.per_minute`` a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from reputable.core import log
from reputable.core.address import IPAddress, parse_address
from reputable.core.errors import InputError
from reputable.evidence.model import Evidence, EvidenceRecord
from reputable.evidence.sources.probes.guard import RateLimiter
from reputable.evidence.sources.probes.runner import run_probe
from reputable.evidence.sources.resolver import DnsResolver, Resolver
from reputable.evidence.sources.settings import SourceSettings, parse_settings

CURSOR: Final = "probe_rdns"
ROUND_SECONDS: Final = 10.0
MAX_PENDING: Final = 10_000


class ExtraConfig(Protocol):
    """The part of the configuration read here (reputable.config.Config has it)."""

    @property
    def extra(self) -> dict[str, Any]:
        """Unknown top-level sections, among them ``[probes]`` and ``[resolver]``."""
        ...


class AutoStore(Protocol):
    """What the automatic probe needs from the store."""

    def cursor(self, name: str) -> int:
        """Return a saved position."""
        ...

    def set_cursor(self, name: str, value: int) -> None:
        """Save a position."""
        ...

    def evidence_targets_since(self, after_id: int) -> tuple[set[str], int]:
        """Return targets of evidence stored after *after_id*, and the newest id."""
        ...

    def evidence_records(self, subjects: Sequence[str], limit: int = 200) -> list[EvidenceRecord]:
        """Return the newest evidence about *subjects*."""
        ...

    def add_evidence(self, items: Iterable[Evidence]) -> int:
        """Store evidence; return how many were new."""
        ...

    def close(self) -> None:
        """Release the store."""
        ...


def _address(target: str) -> IPAddress | None:
    try:
        return parse_address(target)
    except InputError:
        return None  # a domain or an IPv6 /64: not an address to probe


def wanted(records: Sequence[EvidenceRecord], settings: SourceSettings, now: float) -> bool:
    """True when *records* show a mail connection and no rDNS probe within auto_rdns_every."""
    conf = settings.probes
    seen = any(r.source.startswith(conf.auto_rdns_sources) for r in records)
    recent = any(
        r.source == "probe:rdns" and now - r.observed_at.timestamp() < conf.auto_rdns_every
        for r in records
    )
    return seen and not recent


async def auto_rdns_round(
    store: AutoStore,
    settings: SourceSettings,
    pending: deque[IPAddress],
    limiter: RateLimiter,
    resolver: Resolver,
    now: datetime,
) -> int:
    """Queue newly seen addresses and probe as many as the budget allows; return how many ran."""
    targets, newest = store.evidence_targets_since(store.cursor(CURSOR))
    store.set_cursor(CURSOR, newest)
    for target in sorted(targets):
        address = _address(target)
        if address is not None and len(pending) < MAX_PENDING and address not in pending:
            pending.append(address)
    ran = 0
    while pending and ran < settings.probes.per_minute:
        address = pending.popleft()
        if not wanted(store.evidence_records([str(address)], limit=50), settings, now.timestamp()):
            continue
        result = await run_probe(
            "rdns",
            str(address),
            settings=settings,
            store=store,
            now=now,
            limiter=limiter,
            resolver=resolver,
        )
        if result.result == "refused":  # the overall budget is spent: try again next round
            pending.appendleft(address)
            break
        ran += 1
    return ran


async def probe_new_senders(
    config: ExtraConfig, store_factory: Callable[[], AutoStore], stop: asyncio.Event
) -> None:
    """Run rounds of the automatic rDNS probe until *stop* is set (no-op unless auto_rdns)."""
    settings = parse_settings(config.extra)
    if not settings.probes.auto_rdns:
        return
    pending: deque[IPAddress] = deque()
    limiter = RateLimiter(settings.probes.per_target, settings.probes.per_minute)
    resolver = DnsResolver(settings.resolver)
    while not stop.is_set():
        try:
            store = store_factory()
            try:
                ran = await auto_rdns_round(
                    store, settings, pending, limiter, resolver, datetime.now(UTC)
                )
            finally:
                store.close()
            if ran:
                log.info("auto_rdns", probed=ran, pending=len(pending))
        except Exception as exc:  # a supervisor loop: log and go on
            log.error("auto_rdns_failed", error=f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), ROUND_SECONDS)

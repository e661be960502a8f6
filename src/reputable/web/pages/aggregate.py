"""The dashboard's numbers, kept up to date incrementally.

* Daily counts of evidence (per source) and of new listings (per cause) live in memory and
  are advanced from the last row id seen (evidence and the append-only audit log), so a view
  reads only what arrived since the previous one.
* Top /24s come from the snapshot's sorted host array, computed once per snapshot serial
  (the overlay's few changed addresses counted again on top of the base's count).
* DNS queries per second and the hit ratio come from the DNS workers' counter files, as
  the difference between two readings.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from reputable.config import Config
from reputable.publication.dnsbl.worker import metrics_path
from reputable.publication.metrics import RESULTS, read_worker_files
from reputable.publication.snapshot.view import Snapshot
from reputable.store.sqlite import SQLStore

DAY = 86400


@dataclass(slots=True)
class DnsRate:
    """Queries per second and hit ratio between the last two readings."""

    total: int = 0
    per_second: float | None = None
    hit_ratio: float | None = None


@dataclass(slots=True)
class Aggregates:
    """Incremental daily counts, per-snapshot top networks, DNS rates."""

    evidence_after: int = 0
    audit_after: int = 0
    evidence: Counter[tuple[int, str]] = field(default_factory=Counter)  # (day, source)
    listings: Counter[tuple[int, str]] = field(default_factory=Counter)  # (day, cause)
    top_serial: int = -1
    top24: list[tuple[str, int]] = field(default_factory=list)
    top_running: int = -1  # serial being counted in a thread
    #: The base snapshot's host count per /24, kept across overlays: (base serial, counts).
    _base_counts: tuple[int, Counter[int]] | None = None
    dns_reading: tuple[float, int, int] | None = None  # (time, total, hits)
    dns: DnsRate = field(default_factory=DnsRate)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def advance(self, store: SQLStore) -> None:
        """Fold in the evidence and listings recorded since the last call (in a worker thread)."""
        with self.lock:
            while True:
                after, rows = store.evidence_counts_after(self.evidence_after)
                if after == self.evidence_after:
                    break
                self.evidence_after = after
                for day, source, _cause, count in rows:
                    self.evidence[(day, source)] += count
            while True:
                after, found = store.listing_counts_after(self.audit_after)
                if after == self.audit_after:
                    break
                self.audit_after = after
                for day, cause, count in found:
                    self.listings[(day, cause)] += count

    def top_networks(self, snapshot: Snapshot, limit: int = 10) -> list[tuple[str, int]] | None:
        """Return the /24s with the most listed addresses, computed once per snapshot serial.

        Counting a million hosts takes about a second, so a new snapshot's count runs in a
        thread and views show the previous one meanwhile (None before the first is ready).
        The serial is the one DNS answers with (an overlay's, when attached): the base's
        count is kept and only the overlay's few addresses are counted again.
        """
        serial = snapshot.effective_serial
        with self.lock:
            if serial not in (self.top_serial, self.top_running):
                self.top_running = serial
                threading.Thread(
                    target=self._count_top, args=(snapshot, limit), daemon=True
                ).start()
            return list(self.top24) if self.top_serial >= 0 else None

    def _count_top(self, snapshot: Snapshot, limit: int) -> None:
        base = self._base_counts
        if base is None or base[0] != snapshot.serial:
            counts = Counter(int(address) >> 8 for address in snapshot.v4_host_addr)
            counts.pop(0x7F0000, None)  # 127.0.0.0/24: the RFC 5782 test points
            base = self._base_counts = (snapshot.serial, counts)
        counts = base[1]
        overlay = snapshot.overlay
        if overlay is not None:
            counts = counts.copy()
            for address in overlay.v4:  # listed as a host before and after the change?
                before, after = _is_host(snapshot, address), _is_host(overlay.snapshot, address)
                if before != after and address >> 8 != 0x7F0000:
                    counts[address >> 8] += 1 if after else -1
        top = [(f"{IPv4Address(net << 8)}/24", n) for net, n in counts.most_common(limit) if n]
        with self.lock:
            self.top24, self.top_serial = top, snapshot.effective_serial

    def read_dns(self, config: Config) -> DnsRate:
        """Read the DNS workers' counters and return the rate since the previous reading."""
        paths = [metrics_path(config, i) for i in range(max(config.dns.workers, 1))]
        total = hits = 0
        for record in read_worker_files(paths):
            counters = record["counters"]
            for zi in range(len(record["zones"])):
                base = zi * len(RESULTS)
                total += sum(int(counters[base + ri]) for ri in range(len(RESULTS)))
                hits += int(counters[base + RESULTS.index("hit")])
        now = time.monotonic()
        with self.lock:
            previous = self.dns_reading
            if previous is None or now - previous[0] >= 1.0:
                if previous is not None and total >= previous[1]:
                    span = now - previous[0]
                    asked = total - previous[1]
                    self.dns = DnsRate(
                        total,
                        asked / span,
                        (hits - previous[2]) / asked if asked else None,
                    )
                else:
                    self.dns = DnsRate(total, None, hits / total if total else None)
                self.dns_reading = (now, total, hits)
            return self.dns

    def series(
        self, table: Counter[tuple[int, str]], today: int, days: int = 30
    ) -> tuple[list[str], dict[str, list[float]]]:
        """Return day labels and one count list per key for the last *days* days of *table*."""
        first = today - days + 1
        labels = [time.strftime("%m-%d", time.gmtime(d * DAY)) for d in range(first, today + 1)]
        out: dict[str, list[float]] = {}
        with self.lock:
            for (day, key), count in table.items():
                if first <= day <= today:
                    out.setdefault(key, [0.0] * days)[day - first] += count
        return labels, dict(sorted(out.items()))


def _is_host(snapshot: Snapshot, address: int) -> bool:
    """Return whether *snapshot* lists IPv4 *address* (an int) as a host of its own."""
    hosts = snapshot.v4_host_addr
    i = bisect_left(hosts, address)
    return i < len(hosts) and hosts[i] == address

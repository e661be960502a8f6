"""Leaky-bucket detectors over network-log events: brute force, probing, floods, scans, sinkhole hits.

Pure and streaming: events go in (in time order per address), ``compromised`` evidence comes
out when a bucket overflows. Memory is bounded by the number of active addresses, not by the
length of the log: ``sweep`` drops buckets that have leaked empty.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import MISSING
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime
from typing import Any, Final

from reputable.core.cause import Cause
from reputable.evidence.detectors.netconfig import NetSettings, Scenario
from reputable.evidence.model import Evidence
from reputable.evidence.parsers.netbase import NetEvent, client_address

_TOP_LIMIT: Final = 100_000  # distinct addresses counted exactly before the counter is pruned
_SEEN_LIMIT: Final = (
    256  # distinct values remembered per bucket (more means it overflowed long ago)
)
_TRAVERSAL: Final = ("/../", "%2e%2e", "/etc/passwd", "<script")
#: NetEvent's field defaults (what an event made without a field holds in it).
_DEFAULTS: Final[dict[str, object]] = {
    f.name: f.default for f in dataclass_fields(NetEvent) if f.default is not MISSING
}


class _Bucket:
    """The mutable state of one scenario for one address."""

    __slots__ = ("count", "first", "last", "level", "samples", "seen", "until")

    def __init__(self, ts: float) -> None:
        self.level = 0.0
        self.last = ts
        self.first = ts
        self.count = 0
        self.until = 0.0
        self.samples: list[list[Any]] = []  # [line, text]: the fast path fills the line later
        self.seen: set[object] = set()

    def restart(self, ts: float) -> None:
        """Begin a new episode at *ts* (the bucket had drained): forget the old one."""
        self.count = 0
        self.first = ts
        self.samples = []
        self.seen = set()


def _text(value: object) -> str:
    """Return *value* as text (the fast path keeps addresses and names as bytes)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class NetDetector:
    """Runs every scenario of *settings* over a stream of events from one source."""

    def __init__(self, settings: NetSettings, *, source: str) -> None:
        self.settings = settings
        self.source = source
        self.found: list[Evidence] = []
        self.by_scenario: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self.ips: Counter[str | bytes] = Counter()
        self._tables: list[dict[str | bytes, _Bucket]] = [{} for _ in settings.scenarios]
        by_tag: dict[str, list[int]] = {}
        for index, scenario in enumerate(settings.scenarios):
            for tag in scenario.tags:
                by_tag.setdefault(tag, []).append(index)
        self._by_tag = {tag: tuple(v) for tag, v in by_tag.items()}
        self._swept_at = 1024
        self._hot = {
            tag: tuple(
                (settings.scenarios[i], self._tables[i], bool(settings.scenarios[i].distinct))
                for i in indexes
            )
            for tag, indexes in self._by_tag.items()
        }

    def tags(self, event: NetEvent) -> tuple[str, ...]:
        """Return what *event* counts as: its own name plus web and sinkhole classes."""
        out = [event.event]
        if event.event == "syn":
            out.append("packet")
        if event.event == "http_request":
            path = event.path.lower()
            if path.startswith(self.settings.exploit_paths) or any(t in path for t in _TRAVERSAL):
                out.append("http_exploit")
            if 400 <= event.status < 500:
                out.append("http_4xx")
            if event.status == 401 or (
                event.method == "POST" and path.startswith(self.settings.login_paths)
            ):
                out.append("http_auth_failed")
        if event.dst and self.settings.sinkholes:
            dst = client_address(event.dst)
            if dst is not None and any(dst in net for net in self.settings.sinkholes):
                out.append("sinkhole")
        return tuple(out)

    def observe(self, event: NetEvent) -> tuple[str, ...]:
        """Pour *event* into every scenario its tags fill; return the tags."""
        tags = self.tags(event)
        if not event.ip:
            return tags
        indexes = {i for tag in tags for i in self._by_tag.get(tag, ())}
        if not indexes:
            return tags
        self.events[event.event] += 1
        self._count_ip(event.ip)
        scenarios = self.settings.scenarios
        for index in sorted(indexes):
            scenario = scenarios[index]
            key = getattr(event, scenario.distinct) if scenario.distinct else None
            amount = float(getattr(event, scenario.amount) or 1) if scenario.amount else 1.0
            self._pour(index, event.ts, event.ip, key, amount, event.line, event.text)
        return tags

    def observe_fields(
        self, event: str, ts: float, ip: str, line: int, text: str, fields: dict[str, object]
    ) -> None:
        """``observe`` of the NetEvent these arguments would make, without making it.

        For events whose tags are their name alone (no ``dst``; not ``syn``, ``http_request``):
        Dovecot's, from the journal's fast path (measured: bench/journal_ingest.py, a NetEvent
        and ``observe`` were half of Dovecot's time). *fields* are the event's other fields;
        those not given are NetEvent's defaults. Keep it equivalent to ``observe`` (tests
        compare the two).
        """
        indexes = self._by_tag.get(event)
        if not ip or not indexes:
            return
        self.events[event] += 1
        self._count_ip(ip)
        scenarios = self.settings.scenarios
        for index in indexes:  # ascending, as observe's sorted()
            scenario = scenarios[index]
            key = None
            if scenario.distinct:
                key = fields.get(scenario.distinct, _DEFAULTS.get(scenario.distinct))
            amount = 1.0
            if scenario.amount:
                amount = float(fields.get(scenario.amount, _DEFAULTS.get(scenario.amount)) or 1)  # type: ignore[arg-type]
            self._pour(index, ts, ip, key, amount, line, text)

    def attempt(self, event: str, ts: float, ip: bytes, user: bytes) -> list[Any] | None:
        """Pour one sshd authentication attempt (the fast path: same effect as ``observe``).

        Returns the new sample entry ``[line, text]`` when a bucket kept this line as a sample:
        the caller fills in line number and text (only samples pay for counting and slicing).
        This is the hot loop of ``ingest netlog --format sshd``: ``_pour`` inlined, measured by
        bench/netlog_vs_fail2ban.py; keep it equivalent to ``observe`` (tests compare the two).
        """
        events = self.events
        events[event] += 1
        ips = self.ips
        ips[ip] += 1
        if len(ips) > _TOP_LIMIT:
            self._prune_ips()
        entry: list[Any] | None = None
        keep = self.settings.samples
        for scenario, table, distinct in self._hot.get(event, ()):
            bucket = table.get(ip)
            if bucket is None:
                bucket = table[ip] = _Bucket(ts)
                if len(table) > self._swept_at:
                    self.sweep(ts)
            elif ts < bucket.until:
                continue
            level = bucket.level
            if ts > bucket.last:
                level -= (ts - bucket.last) / scenario.leakspeed
            if level <= 0:
                level = 0.0
                bucket.restart(ts)
            bucket.last = ts
            if distinct:
                if user in bucket.seen:
                    bucket.level = level
                    continue
                if len(bucket.seen) < _SEEN_LIMIT:
                    bucket.seen.add(user)
            bucket.count += 1
            if len(bucket.samples) < keep:
                if entry is None:
                    entry = [0, b""]
                bucket.samples.append(entry)
            level += 1.0
            if level > scenario.capacity:
                self._overflow(scenario, ip, bucket, ts)
                level = 0.0
            bucket.level = level
        return entry

    def _count_ip(self, ip: str) -> None:
        self.ips[ip] += 1
        if len(self.ips) > _TOP_LIMIT:
            self._prune_ips()

    def _prune_ips(self) -> None:
        # Bounded memory: keep the busiest half (counts of the rest restart from zero).
        self.ips = Counter(dict(self.ips.most_common(_TOP_LIMIT // 2)))

    def top_ips(self, n: int = 10) -> list[tuple[str, int]]:
        """Return the *n* addresses with the most counted events."""
        return [(_text(ip), c) for ip, c in self.ips.most_common(n)]

    def _pour(
        self,
        index: int,
        ts: float,
        ip: str | bytes,
        key: object,
        amount: float,
        line: int,
        text: str | bytes,
    ) -> None:
        table = self._tables[index]
        bucket = table.get(ip)
        if bucket is None:
            bucket = table[ip] = _Bucket(ts)
            if len(table) > self._swept_at:
                self.sweep(ts)
        elif ts < bucket.until:
            return
        scenario = self.settings.scenarios[index]
        level = bucket.level
        if ts > bucket.last:
            level -= (ts - bucket.last) / scenario.leakspeed
        if level <= 0:
            level = 0.0
            bucket.restart(ts)
        bucket.last = ts
        if key is not None:
            if key in bucket.seen:
                bucket.level = level
                return
            if len(bucket.seen) < _SEEN_LIMIT:
                bucket.seen.add(key)
        bucket.count += 1
        if len(bucket.samples) < self.settings.samples:
            bucket.samples.append([line, text])
        level += amount
        if level > scenario.capacity:
            self._overflow(scenario, ip, bucket, ts)
            level = 0.0
        bucket.level = level

    def _overflow(self, scenario: Scenario, ip: str | bytes, bucket: _Bucket, ts: float) -> None:
        """Report the overflowing bucket's episode, then empty it for the blackout."""
        self._report(scenario, ip, bucket, ts)
        bucket.count = 0
        bucket.samples = []
        bucket.seen = set()
        bucket.until = ts + self.settings.blackout

    def _report(self, scenario: Scenario, ip: str | bytes, bucket: _Bucket, ts: float) -> None:
        subject = client_address(_text(ip))
        if subject is None:
            return
        samples = [{"line": n, "text": _text(t).strip()} for n, t in bucket.samples]
        detail: dict[str, object] = {
            "scenario": scenario.name,
            "events": bucket.count,
            "first_seen": _iso(bucket.first),
            "last_seen": _iso(ts),
            "capacity": scenario.capacity,
            "leakspeed_s": scenario.leakspeed,
            "samples": samples,
        }
        if scenario.distinct:
            detail[f"distinct_{scenario.distinct}"] = sorted(_text(v) for v in bucket.seen)[:20]
        self.by_scenario[scenario.name] += 1
        self.found.append(
            Evidence(
                subject=subject,
                cause=Cause.COMPROMISED,
                source=self.source,
                observed_at=datetime.fromtimestamp(ts, UTC),
                weight=scenario.weight,
                detail=detail,
            )
        )

    def state(self) -> list[dict[str, list[Any]]]:
        """Return every scenario's buckets as JSON-ready data (saved with a journal cursor)."""
        return [
            {
                _text(ip): [b.level, b.last, b.first, b.count, b.until,
                            [[n, _text(t)] for n, t in b.samples], sorted(_text(v) for v in b.seen)]
                for ip, b in table.items()
            }
            for table in self._tables
        ]  # fmt: skip

    def restore(self, data: list[dict[str, list[Any]]]) -> None:
        """Load buckets saved by :meth:`state` (scenarios matched by position)."""
        for table, saved in zip(self._tables, data, strict=False):
            for ip, (level, last, first, count, until, samples, seen) in saved.items():
                bucket = table[ip] = _Bucket(float(first))
                bucket.level, bucket.last, bucket.count, bucket.until = level, last, count, until
                bucket.samples = [list(x) for x in samples]
                bucket.seen = set(seen)

    def take(self) -> list[Evidence]:
        """Return the evidence found since the last call, and forget it."""
        found, self.found = self.found, []
        return found

    def sweep(self, ts: float) -> None:
        """Drop buckets that have leaked empty by *ts* and are not in blackout (memory stays flat)."""
        total = 0
        for index, table in enumerate(self._tables):
            leak = self.settings.scenarios[index].leakspeed
            idle = [
                ip
                for ip, b in table.items()
                if b.until <= ts and b.level - (ts - b.last) / leak <= 0
            ]
            for ip in idle:
                del table[ip]
            total = max(total, len(table))
        self._swept_at = max(1024, 2 * total)

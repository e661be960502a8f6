"""Feed syncs: download, parse, guard, then make the feed's listings follow the feed.

A sync that cannot download or parse the feed, or whose result looks broken (too many
unreadable lines, empty or shrunk past ``feeds.max_shrink`` when the last good sync had
entries), changes no listing: the last good data stays in force and the error is recorded.
IP/CIDR feeds list their entries with cause ``manual`` and source ``feed:NAME``. URL feeds
list each registrable domain as ``malware_host`` and record ``malware_host`` evidence on
the addresses the URL hosts resolve to, naming the domain, for the policy engine to weigh.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from reputable.core import log
from reputable.core.address import Domain, IPAddress
from reputable.core.cause import Cause
from reputable.core.errors import ListingRefused, ReputableError
from reputable.core.limits import clip_reason
from reputable.evidence.model import Evidence
from reputable.evidence.parsers.feed_kinds import FEED_PARSERS, RAW_PARSERS
from reputable.evidence.parsers.feed_model import (
    EVIDENCE_KINDS,
    FeedContent,
    FeedDefinition,
    FeedError,
    FeedRecord,
    FeedState,
    UrlEntry,
)
from reputable.evidence.sources.feed_fetch import fetch
from reputable.evidence.sources.resolver import DnsResolver, ResolveError, Resolver
from reputable.evidence.sources.settings import FeedSettings, parse_settings
from reputable.listings.model import Listing
from reputable.listings.rules import Limits, check_listable

ACTOR = "feed"
#: A failing feed is retried after this long at most, even if its refresh interval is longer.
RETRY_AFTER = timedelta(minutes=10)
RESOLVE_CONCURRENCY = 16


class FeedConfig(Protocol):
    """The parts of the configuration a sync reads (reputable.config.Config has them)."""

    @property
    def extra(self) -> dict[str, Any]:
        """Unknown top-level sections: ``[resolver]``, ``[feeds]``, ``[probes]``."""
        ...

    @property
    def max_prefix_v4(self) -> int:
        """The broadest IPv4 listing without force."""
        ...

    @property
    def max_prefix_v6(self) -> int:
        """The broadest IPv6 listing without force."""
        ...


class FeedStore(Protocol):
    """What a feed sync needs from the store (SQLiteStore with FeedTables provides it)."""

    def feeds(self) -> list[FeedRecord]:
        """Return every stored feed."""
        ...

    def record_feed_state(self, name: str, state: FeedState) -> None:
        """Replace the sync state of a feed."""
        ...

    def replace_feed_listings(
        self, source: str, listings: Sequence[Listing], *, actor: str
    ) -> tuple[int, int]:
        """Make *listings* the listings of *source*; return (added, removed)."""
        ...

    def add_evidence(self, items: Iterable[Evidence]) -> int:
        """Store evidence; return how many were new."""
        ...

    def close(self) -> None:
        """Release the store."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncReport:
    """What one sync of one feed did."""

    name: str
    status: str  # updated, unchanged, error
    entries: int = 0
    added: int = 0
    removed: int = 0
    skipped: tuple[str, ...] = ()
    evidence: int = 0
    unresolved: int = 0
    error: str | None = None


def guard(content: FeedContent, previous: int, settings: FeedSettings, *, force: bool) -> None:
    """Raise FeedError when *content* looks broken compared with the last good sync."""
    if content.lines and content.invalid / content.lines > settings.max_invalid:
        first = "; ".join(content.samples[:2])
        raise FeedError(
            f"{content.invalid} of {content.lines} lines unreadable (more than"
            f" feeds.max_invalid = {settings.max_invalid:g}); is it the right --kind? {first}"
        )
    if force or not previous:
        return
    if content.entries == 0:
        raise FeedError(
            f"the feed has no entries now; keeping the {previous} of the last good sync"
            " (`reputable feed sync NAME --force` accepts an empty feed)"
        )
    if content.entries < previous * (1 - settings.max_shrink):
        raise FeedError(
            f"the feed shrank from {previous} to {content.entries} entries, more than"
            f" feeds.max_shrink = {settings.max_shrink:g}; keeping the last good data"
            " (`reputable feed sync NAME --force` accepts it)"
        )


def network_listings(
    feed: FeedDefinition,
    content: FeedContent,
    limits: Limits,
    settings: FeedSettings,
    now: datetime,
) -> tuple[list[Listing], list[str]]:
    """Return the listings of an IP/CIDR feed, and the entries skipped with why."""
    listings: dict[str, Listing] = {}
    skipped: list[str] = []
    for entry in content.networks:
        net = entry.network
        floor = settings.floor_v4 if net.version == 4 else settings.floor_v6
        try:
            if net.prefixlen < floor:
                raise ListingRefused(
                    f"{net} is broader than /{floor} (feeds.floor_v{net.version}); never listed"
                )
            # A broad feed (e.g. DROP: whole hijacked /11s) may exceed listings.max_prefix.
            check_listable(net, limits, force=feed.broad)
        except ListingRefused as exc:
            skipped.append(str(exc))
            continue
        listing = Listing(
            subject=net,
            cause=Cause.MANUAL,
            reason=clip_reason(
                f"feed {feed.name}: {entry.reason}" if entry.reason else f"feed {feed.name}"
            ),
            source=feed.source,
            listed_at=now,
        )
        listings.setdefault(listing.subject_text, listing)
    return list(listings.values()), skipped


def domain_listings(
    feed: FeedDefinition, content: FeedContent, limits: Limits, now: datetime
) -> tuple[list[Listing], list[str]]:
    """Return one ``malware_host`` listing per registrable domain of a URL feed."""
    listings: dict[str, Listing] = {}
    skipped: list[str] = []
    for entry in content.urls:
        if entry.domain is None or entry.domain.name in listings:
            continue
        try:
            check_listable(entry.domain, limits)
        except ListingRefused as exc:
            skipped.append(str(exc))
            continue
        why = entry.reason or "malware/phishing URL"
        listings[entry.domain.name] = Listing(
            subject=entry.domain,
            cause=Cause.MALWARE_HOST,
            reason=clip_reason(f"feed {feed.name}: {why}: {entry.url}"),
            source=feed.source,
            listed_at=now,
        )
    return list(listings.values()), skipped


def event_evidence(feed: FeedDefinition, content: FeedContent, now: datetime) -> list[Evidence]:
    """Return the evidence of a CrowdSec or fail2ban feed: one piece per decision or ban.

    An entry without its own time counts on the sync's UTC day, so repeated syncs of the
    same bans on one day add nothing.
    """
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return [
        Evidence(
            subject=entry.address,
            cause=entry.cause,
            source=feed.source,
            observed_at=entry.observed_at or day,
            detail={"feed": feed.name, **entry.detail},
        )
        for entry in content.events
        if _usable(entry.address)
    ]


def _usable(address: IPAddress) -> bool:
    # Sinkholed names resolve to 0.0.0.0 or 127.0.0.1; those are no one's hosting.
    return not (
        address.is_loopback
        or address.is_unspecified
        or address.is_multicast
        or address.is_link_local
        or address.is_reserved
    )


async def url_evidence(
    feed: FeedDefinition,
    urls: Sequence[UrlEntry],
    resolver: Resolver,
    settings: FeedSettings,
    now: datetime,
) -> tuple[list[Evidence], int]:
    """Return ``malware_host`` evidence on the addresses of the URL hosts, and how many failed.

    One piece per address, domain and UTC day while the URL stays in the feed, so repeated
    syncs on one day add nothing.
    """
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    by_host: dict[Domain | IPAddress, UrlEntry] = {}
    for entry in urls:
        by_host.setdefault(entry.host, entry)
    chosen = list(by_host.items())[: settings.max_resolve]
    gate = asyncio.Semaphore(RESOLVE_CONCURRENCY)
    failed = 0

    async def one(host: Domain | IPAddress, entry: UrlEntry) -> list[Evidence]:
        nonlocal failed
        if not isinstance(host, Domain):
            addresses = [host]
        else:
            async with gate:
                try:
                    addresses = await resolver.addresses(host.name)
                except ResolveError as exc:
                    failed += 1
                    log.warning("feed_resolve_failed", feed=feed.name, host=host, error=str(exc))
                    return []
        detail: dict[str, Any] = {"feed": feed.name, "url": entry.url, "host": str(host)}
        if entry.reason:
            detail["reason"] = entry.reason
        return [
            Evidence(
                subject=address,
                cause=Cause.MALWARE_HOST,
                source=feed.source,
                observed_at=day,
                related_domain=entry.domain,
                detail=detail,
            )
            for address in addresses
            if _usable(address)
        ]

    found = await asyncio.gather(*(one(host, entry) for host, entry in chosen))
    return [e for group in found for e in group], failed


async def sync_feed(
    record: FeedRecord,
    store: FeedStore,
    *,
    settings: FeedSettings,
    limits: Limits,
    resolver: Resolver,
    now: datetime,
    force: bool = False,
) -> SyncReport:
    """Sync one feed; on any failure keep its listings and record the error in its state."""
    feed, state = record.definition, record.state
    try:
        fetched = await fetch(feed.url, state, settings)
        if fetched.body is None:
            store.record_feed_state(
                feed.name, replace(state, last_attempt=now, last_success=now, last_error=None)
            )
            return SyncReport(name=feed.name, status="unchanged", entries=state.entries)
        digest = hashlib.sha256(fetched.body).hexdigest()
        if feed.kind in RAW_PARSERS:
            content = await asyncio.to_thread(RAW_PARSERS[feed.kind], fetched.body, feed.csv)
        else:
            parser = FEED_PARSERS[feed.kind]
            text = fetched.body.decode("utf-8", errors="replace")
            content = await asyncio.to_thread(parser, text, feed.csv)
        # Evidence feeds shrink when bans end; what was seen stays seen, so no shrink guard.
        guard(content, state.entries, settings, force=force or feed.kind in EVIDENCE_KINDS)
    except (ReputableError, ValueError, csv.Error) as exc:  # ValueError covers UnicodeError
        log.warning("feed_sync_failed", feed=feed.name, error=str(exc))
        store.record_feed_state(feed.name, replace(state, last_attempt=now, last_error=str(exc)))
        return SyncReport(name=feed.name, status="error", entries=state.entries, error=str(exc))
    evidence: list[Evidence] = []
    unresolved = 0
    listings: list[Listing]
    skipped: list[str]
    if feed.kind in EVIDENCE_KINDS:
        listings, skipped, evidence = [], [], event_evidence(feed, content, now)
    elif feed.holds_urls:
        listings, skipped = domain_listings(feed, content, limits, now)
        evidence, unresolved = await url_evidence(feed, content.urls, resolver, settings, now)
    else:
        listings, skipped = network_listings(feed, content, limits, settings, now)
    # Unreadable lines (by number, with why) are reported; the good ones are stored.
    skipped = [f"unreadable {sample}" for sample in content.samples] + skipped
    if content.invalid > len(content.samples):
        skipped.insert(len(content.samples), f"... {content.invalid} unreadable lines in all")
    skipped += content.skipped  # read fine but of no use (CrowdSec decisions on ranges)
    added, removed = store.replace_feed_listings(feed.source, listings, actor=ACTOR)
    new_evidence = store.add_evidence(evidence) if evidence else 0
    store.record_feed_state(
        feed.name,
        FeedState(
            etag=fetched.etag,
            last_modified=fetched.last_modified,
            content_hash=digest,
            last_attempt=now,
            last_success=now,
            last_error=None,
            entries=content.entries,
        ),
    )
    report = SyncReport(
        name=feed.name,
        status="updated" if digest != state.content_hash or added or removed else "unchanged",
        entries=content.entries,
        added=added,
        removed=removed,
        skipped=tuple(skipped),
        evidence=new_evidence,
        unresolved=unresolved,
    )
    log.info(
        "feed_synced",
        feed=feed.name,
        status=report.status,
        entries=report.entries,
        added=added,
        removed=removed,
        skipped=len(skipped),
        evidence=new_evidence,
    )
    return report


def due(record: FeedRecord, now: datetime) -> bool:
    """True when *record* should be synced at *now* (failing feeds retry sooner)."""
    last = record.state.last_attempt
    if last is None:
        return True
    wait = record.definition.refresh
    if record.state.last_error is not None:
        wait = min(wait, RETRY_AFTER)
    return now - last >= wait


async def sync_feeds(
    config: FeedConfig,
    store: FeedStore,
    *,
    names: Sequence[str] = (),
    only_due: bool = False,
    force: bool = False,
    now: datetime | None = None,
    resolver: Resolver | None = None,
) -> list[SyncReport]:
    """Sync the feeds called *names* (all when empty), or only those due; return the reports."""
    settings = parse_settings(config.extra)
    limits = Limits(max_prefix_v4=config.max_prefix_v4, max_prefix_v6=config.max_prefix_v6)
    when = now or datetime.now(UTC)
    records = store.feeds()
    if names:
        known = {r.definition.name for r in records}
        missing = [n for n in names if n not in known]
        if missing:
            raise FeedError(f"no feed {missing[0]!r}; `reputable feed list` shows the feeds")
        records = [r for r in records if r.definition.name in names]
    if only_due:
        records = [r for r in records if due(r, when)]
    dns = resolver or DnsResolver(settings.resolver)
    return [
        await sync_feed(
            record,
            store,
            settings=settings.feeds,
            limits=limits,
            resolver=dns,
            now=when,
            force=force,
        )
        for record in records
    ]


async def refresh_feeds(
    config: FeedConfig, store_factory: Callable[[], FeedStore], stop: asyncio.Event
) -> None:
    """Sync due feeds every ``feeds.interval`` until *stop* is set (run by ``serve``)."""
    interval = parse_settings(config.extra).feeds.interval
    while not stop.is_set():
        try:
            store = store_factory()
            try:
                await sync_feeds(config, store, only_due=True)
            finally:
                store.close()
        except Exception as exc:  # a supervisor loop: log and go on
            log.error("feed_refresh_failed", error=f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)

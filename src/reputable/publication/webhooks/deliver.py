"""The webhook loops run by ``serve``: queue events as the store changes, POST what is due."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol

import httpx

from reputable.core import log
from reputable.core.address import looks_like_ip
from reputable.core.errors import ReputableError
from reputable.publication.webhooks.events import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    Event,
    backoff,
    body,
    listing_events,
    matches,
    removal_events,
    sign,
)
from reputable.publication.webhooks.settings import Endpoint, parse_webhooks

#: Least seconds between two comparisons of the active listings with the last view.
DIFF_EVERY: Final = 5.0


class WebhookStore(Protocol):
    """The store as the webhook loops see it (reputable.store.sqlite_webhooks)."""

    def serial(self) -> int:
        """Return the change counter."""
        ...

    def webhook_known(self) -> set[tuple[str, str]]:
        """Return the (subject, cause) pairs seen last time."""
        ...

    def webhook_active(self, now: float) -> set[tuple[str, str]]:
        """Return the (subject, cause) pairs active at *now*."""
        ...

    def webhook_reasons(
        self, keys: list[tuple[str, str]], now: float
    ) -> dict[tuple[str, str], str]:
        """Return the reason of each active (subject, cause) in *keys*."""
        ...

    def webhook_baselined(self) -> bool:
        """True once a first view was recorded."""
        ...

    def webhook_audit_cursor(self) -> int:
        """Return the last audit id turned into events."""
        ...

    def removal_audit(self, after: int) -> list[tuple[int, float, str, str, str]]:
        """Return removal-request audit rows after *after*."""
        ...

    def webhook_commit(
        self,
        *,
        added: Any,
        removed: Any,
        deliveries: Any,
        audit_cursor: int,
        now: float,
        baseline: bool = False,
    ) -> int:
        """Queue deliveries and move the bookmarks in one transaction."""
        ...

    def webhook_due(
        self, now: float, limit: int = 100
    ) -> list[tuple[int, str, str, str, int, float]]:
        """Return due deliveries."""
        ...

    def webhook_delivered(self, delivery: int, now: float) -> None:
        """Mark a delivery done."""
        ...

    def webhook_failed(
        self, delivery: int, *, error: str, next_at: float | None, now: float
    ) -> None:
        """Record a failed attempt."""
        ...


def delivery_id(endpoint: Endpoint, event: Event) -> str:
    """Return the stable id of *event* for *endpoint* (the receiver's de-duplication key)."""
    return hashlib.sha256(f"{endpoint.name}|{event.key()}".encode()).hexdigest()[:32]


def detect(
    store: WebhookStore,
    endpoints: Sequence[Endpoint],
    *,
    now: datetime,
    lookup_urls: tuple[str, str],
    listings_moved: bool,
    known: set[tuple[str, str]] | None = None,
) -> int:
    """Queue a delivery per new event and matching endpoint; return how many were queued.

    *known* is the caller's copy of the last view (read from the store when None), kept in
    step here once the queue transaction has committed: the loop in ``serve`` reads the
    store's table once, then only the active listings per comparison.
    """
    events: list[Event] = []
    added: list[tuple[str, str]] = []
    removed: list[tuple[str, str]] = []
    baseline = not store.webhook_baselined()  # first run: what is listed now is no news
    if listings_moved and not baseline:
        last = store.webhook_known() if known is None else known
        active = store.webhook_active(now.timestamp())
        added = sorted(active - last)
        removed = sorted(last - active)
        reasons = store.webhook_reasons(added, now.timestamp()) if added else {}
        new = [(s, c, reasons.get((s, c), "")) for s, c in added]
        events = listing_events(new, removed, now)
    cursor = store.webhook_audit_cursor()
    rows = store.removal_audit(cursor)
    events += removal_events(rows)
    deliveries = [
        (
            endpoint.name,
            event.kind,
            body(
                event,
                delivery_id(endpoint, event),
                lookup_urls[0] if looks_like_ip(event.subject.split("/")[0]) else lookup_urls[1],
            ),
        )
        for event in events
        for endpoint in endpoints
        if matches(endpoint, event)
    ]
    if not (added or removed or rows or deliveries or baseline):
        return 0
    queued = store.webhook_commit(
        added=added,
        removed=removed,
        deliveries=deliveries,
        audit_cursor=rows[-1][0] if rows else cursor,
        now=now.timestamp(),
        baseline=baseline,
    )
    if known is not None:
        if baseline:
            known |= store.webhook_known()
        known.difference_update(removed)
        known.update(added)
    return queued


async def deliver_due(
    store: WebhookStore, endpoints: Sequence[Endpoint], client: httpx.AsyncClient
) -> int:
    """POST every due delivery once, in queue order per endpoint; return how many succeeded."""
    by_name = {e.name: e for e in endpoints}
    blocked: set[str] = set()  # an endpoint that just failed waits: its events stay in order
    done = 0
    for row_id, name, event, payload, attempts, created_at in await asyncio.to_thread(
        store.webhook_due, time.time()
    ):
        endpoint = by_name.get(name)
        now = time.time()
        if endpoint is None:
            await asyncio.to_thread(
                store.webhook_failed,
                row_id,
                error=f"endpoint {name!r} is no longer in [[webhooks]]",
                next_at=None,
                now=now,
            )
            continue
        if name in blocked:
            continue
        error = await _post(client, endpoint, event, payload)
        now = time.time()
        if error is None:
            await asyncio.to_thread(store.webhook_delivered, row_id, now)
            done += 1
            continue
        blocked.add(name)
        give_up = now - created_at > endpoint.give_up.total_seconds()
        retry = None if give_up else now + backoff(attempts + 1).total_seconds()
        await asyncio.to_thread(store.webhook_failed, row_id, error=error, next_at=retry, now=now)
        log.warning(
            "webhook_failed", endpoint=name, attempt=attempts + 1, error=error, gave_up=give_up
        )
    return done


async def _post(
    client: httpx.AsyncClient, endpoint: Endpoint, event: str, payload: str
) -> str | None:
    """POST one body; return None on a 2xx answer, else what went wrong."""
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(endpoint.secret, payload, int(time.time())),
        DELIVERY_HEADER: json.loads(payload)["id"],
        EVENT_HEADER: event,
        "User-Agent": "reputable-webhooks",
    }
    try:
        async with asyncio.timeout(endpoint.timeout):
            answer = await client.post(endpoint.url, content=payload.encode(), headers=headers)
    except (httpx.HTTPError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if 200 <= answer.status_code < 300:
        return None
    return f"HTTP {answer.status_code}"


def _snapshot_key(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


async def run_webhooks(
    config: Any, store_factory: Callable[[], WebhookStore], stop: asyncio.Event
) -> None:
    """Detect and deliver until *stop* (serve's hook); a failing round is logged, not fatal."""
    endpoints = parse_webhooks(config.extra.get("webhooks"))
    if not endpoints:
        return
    store = store_factory()
    urls = (config.ip_zone.lookup_url, config.domain_zone.lookup_url)
    seen: tuple[int, tuple[int, int] | None] | None = None
    last_diff = -DIFF_EVERY
    wait = DIFF_EVERY
    interval = 1.0
    known: set[tuple[str, str]] | None = None
    try:
        async with httpx.AsyncClient(trust_env=False, follow_redirects=False) as client:
            while not stop.is_set():
                try:
                    mark = (store.serial(), _snapshot_key(config.snapshot_path))
                    # The listing comparison reads every active listing: at most every
                    # DIFF_EVERY seconds (1M listings: seconds of work), removals every round.
                    moved = mark != seen and time.monotonic() - last_diff >= wait
                    if known is None and store.webhook_baselined():
                        known = await asyncio.to_thread(store.webhook_known)
                    started = time.monotonic()
                    queued = await asyncio.to_thread(
                        detect,
                        store,
                        endpoints,
                        now=datetime.now(UTC),
                        lookup_urls=urls,
                        listings_moved=moved,
                        known=known,
                    )
                    if seen is None:
                        log.info("webhooks_ready", endpoints=len(endpoints))
                    if moved or seen is None:
                        seen, last_diff = mark, time.monotonic()
                        # a comparison may take at most a fifth of the time (1M listings: s)
                        wait = max(DIFF_EVERY, 4 * (last_diff - started))
                    if queued:
                        log.info("webhooks_queued", deliveries=queued)
                    await deliver_due(store, endpoints, client)
                except ReputableError as exc:
                    log.error("webhooks_failed", error=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()

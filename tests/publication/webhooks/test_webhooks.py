"""Webhooks: signatures, filters, the durable queue, retries, and delivery over loopback HTTP."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.core.errors import ConfigError
from reputable.listings.model import Batch, Listing
from reputable.publication.webhooks import deliver
from reputable.publication.webhooks.deliver import deliver_due, detect
from reputable.publication.webhooks.events import (
    Event,
    backoff,
    listing_events,
    matches,
    sign,
    verify,
)
from reputable.publication.webhooks.settings import Endpoint, parse_webhooks
from reputable.store.dsn import open_dsn
from tests.publication.webhooks.receiver import Receiver, receiving

SECRET = "s3cret-s3cret-s3cret"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
URLS = ("http://127.0.0.1:8080/lookup/$", "http://127.0.0.1:8080/lookup/$")


def test_signature_round_trip_and_replay_window() -> None:
    """A signature verifies for its body and secret, and fails when stale or tampered."""
    header = sign(SECRET, '{"a":1}', int(T0.timestamp()))
    assert verify(SECRET, header, '{"a":1}', T0 + timedelta(seconds=30))
    assert not verify(SECRET, header, '{"a":2}', T0)
    assert not verify("other-secret-other", header, '{"a":1}', T0)
    assert not verify(SECRET, header, '{"a":1}', T0 + timedelta(minutes=6))
    assert not verify(SECRET, "garbage", '{"a":1}', T0)


def test_backoff_doubles_up_to_an_hour() -> None:
    """Retries wait 1 s, 2 s, 4 s ... and never more than an hour."""
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert backoff(40) == timedelta(hours=1)


def test_filters_by_event_cause_and_network() -> None:
    """An endpoint hears only its events, causes and networks (domains are in no network)."""
    endpoint = Endpoint(
        name="e",
        url="http://127.0.0.1/",
        secret=SECRET,
        events=frozenset({"listed"}),
        causes=frozenset({Cause.SPAM}),
        networks=(ip_network("192.0.2.0/24"),),
    )
    assert matches(endpoint, Event(kind="listed", subject="192.0.2.7", cause="spam", at=T0))
    assert not matches(endpoint, Event(kind="delisted", subject="192.0.2.7", cause="spam", at=T0))
    assert not matches(endpoint, Event(kind="listed", subject="192.0.2.7", cause="rdns", at=T0))
    assert not matches(endpoint, Event(kind="listed", subject="198.51.100.1", cause="spam", at=T0))
    assert not matches(endpoint, Event(kind="listed", subject="x.example", cause="spam", at=T0))


def test_listing_events_name_what_changed() -> None:
    """New listings are listed events with their reason, ended ones delisted events."""
    events = listing_events([("c", "rdns", "no PTR")], [("a", "spam")], T0)
    assert [(e.kind, e.subject, e.cause, e.detail) for e in events] == [
        ("listed", "c", "rdns", "no PTR"),
        ("delisted", "a", "spam", ""),
    ]


def test_detect_with_a_kept_view_matches_the_stored_one(tmp_path: Path, store_dsn: str) -> None:
    """The loop's in-memory view stays equal to the stored one; reasons come with new listings."""
    store = open_dsn(store_dsn)
    endpoint = Endpoint(name="e", url="http://127.0.0.1/", secret=SECRET)
    store.apply(Batch(listings=(_listing("192.0.2.1"),)), actor="t", action="list")
    known: set[tuple[str, str]] = set()
    detect(store, [endpoint], now=T0, lookup_urls=URLS, listings_moved=True, known=known)
    assert known == store.webhook_known() == {("192.0.2.1", "spam")}
    twice = (
        _listing("192.0.2.2"),
        Listing(subject=parse_subject("192.0.2.2"), cause=Cause.SPAM, reason="trap hits",
                source="other", listed_at=T0),
    )  # fmt: skip
    store.apply(Batch(listings=twice), actor="t", action="list")
    store.remove_listings(parse_subject("192.0.2.1"), cause=None, source=None, actor="t")
    queued = detect(store, [endpoint], now=T0, lookup_urls=URLS, listings_moved=True, known=known)
    assert queued == 2  # one listed (once per subject and cause), one delisted
    assert known == store.webhook_known() == {("192.0.2.2", "spam")}
    bodies = [row for row in store.webhook_rows()]
    assert [b[2] for b in bodies] == ["listed", "delisted"]
    store.close()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"url": "ftp://x", "secret": SECRET}, "use an http:// or https:// URL"),
        ({"url": "http://127.0.0.1/", "secret": "short"}, "at least 16 characters"),
        ({"url": "http://127.0.0.1/", "secret": SECRET, "events": ["boom"]}, "use any of"),
        ({"url": "http://127.0.0.1/", "secret": SECRET, "causes": ["nope"]}, "unknown cause"),
    ],
)
def test_bad_webhook_settings_name_the_key(raw: dict[str, object], message: str) -> None:
    """Each bad [[webhooks]] entry is refused with its index and the fix."""
    with pytest.raises(ConfigError, match=message):
        parse_webhooks([raw])


def _listing(subject: str, cause: Cause = Cause.SPAM, expires: datetime | None = None) -> Listing:
    return Listing(
        subject=parse_subject(subject),
        cause=cause,
        reason="trap hits",
        source="test",
        listed_at=T0,
        expires_at=expires,
    )


def test_detect_queues_each_change_once(tmp_path: Path, store_dsn: str) -> None:
    """First view is a baseline; later listings, expiries and removal requests queue once each."""
    store = open_dsn(store_dsn)
    endpoint = Endpoint(name="e", url="http://127.0.0.1/", secret=SECRET)
    store.apply(Batch(listings=(_listing("192.0.2.1"),)), actor="t", action="list")
    assert detect(store, [endpoint], now=T0, lookup_urls=URLS, listings_moved=True) == 0
    store.apply(
        Batch(listings=(_listing("192.0.2.2", expires=T0 + timedelta(hours=1)),)),
        actor="t",
        action="list",
    )
    store.add_delist_request("192.0.2.1", "me@example.org", "fixed", T0.timestamp())
    assert detect(store, [endpoint], now=T0, lookup_urls=URLS, listings_moved=True) == 2
    assert detect(store, [endpoint], now=T0, lookup_urls=URLS, listings_moved=True) == 0
    later = T0 + timedelta(hours=2)  # 192.0.2.2 expired
    assert detect(store, [endpoint], now=later, lookup_urls=URLS, listings_moved=True) == 1
    events = [row[2] for row in store.webhook_rows()]
    assert events == ["listed", "removal_requested", "delisted"]
    store.close()


def test_deliver_retries_with_backoff_then_succeeds(
    tmp_path: Path, store_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 503 is retried after the backoff; the 2xx marks it delivered, signed each time."""
    # deliver's clock, moved past the 1 s backoff by the test: with the real one, a machine
    # that stalled for a second between the first round and the next made the retry due.
    ahead = [0.0]
    real = time.time
    monkeypatch.setattr(
        deliver, "time", SimpleNamespace(time=lambda: real() + ahead[0], monotonic=time.monotonic)
    )
    store = open_dsn(store_dsn)
    now = datetime.now(UTC)  # queued now: far from the give-up age
    receiver = Receiver(secret=SECRET, fail_first=1)
    with receiving(receiver):
        endpoint = Endpoint(name="e", url=receiver.url, secret=SECRET)
        detect(store, [endpoint], now=now, lookup_urls=URLS, listings_moved=True)
        store.apply(Batch(listings=(_listing("192.0.2.9"),)), actor="t", action="list")
        detect(store, [endpoint], now=now, lookup_urls=URLS, listings_moved=True)

        async def rounds() -> list[int]:
            async with httpx.AsyncClient(trust_env=False) as client:
                first = await deliver_due(store, [endpoint], client)
                immediate = await deliver_due(store, [endpoint], client)  # not due yet
                ahead[0] = 1.2  # past the first retry's backoff (1 s)
                second = await deliver_due(store, [endpoint], client)
                return [first, immediate, second]

        assert asyncio.run(rounds()) == [0, 0, 1]
    ids = receiver.ids()
    assert len(ids) == 2 and ids[0] == ids[1]  # the retry carries the same delivery id
    assert all(valid for _, _, valid in receiver.posts)
    body = receiver.posts[-1][1]
    assert body["event"] == "listed"
    assert body["subject"] == "192.0.2.9"
    assert body["cause"] == "spam"
    assert body["lookup_url"] == "http://127.0.0.1:8080/lookup/192.0.2.9"
    (row,) = store.webhook_rows()
    assert row[3] == 2 and row[4] is not None  # two attempts, delivered
    store.close()

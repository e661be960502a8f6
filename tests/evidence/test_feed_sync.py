"""Feed syncs against file:// paths and a loopback HTTP server: listings follow the feed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reputable.config import DEFAULT_TOML, Config, parse_config
from reputable.core.cause import Cause
from reputable.evidence.parsers.feed_model import CsvMapping, FeedDefinition
from reputable.listings.engine import evaluate
from reputable.listings.feeds import SyncReport, refresh_feeds, sync_feeds
from reputable.store.dsn import open_dsn
from reputable.store.sqlite import SQLiteStore, SQLStore
from reputable.testing import wait_for_async
from tests.checker.dnsfixture import DnsFixture, ZoneData
from tests.evidence.feed_http import FeedServer, Route

SAMPLES = Path(__file__).parent / "feed_samples"
NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
DROP = b"; DROP\n198.51.100.0/24 ; SBL1\n203.0.113.0/25 ; SBL2\n192.0.2.0/24 ; SBL3\n"


def make_config(tmp_path: Path, extra: str = "") -> Config:
    """Return a configuration whose store lives in *tmp_path*."""
    path = tmp_path / "reputable.toml"
    path.write_text(DEFAULT_TOML + "\n" + extra, encoding="utf-8")
    return parse_config(path.read_text(encoding="utf-8"), path)


@pytest.fixture
def store(store_dsn: str) -> Iterator[SQLStore]:
    """An empty store on each back-end."""
    db = open_dsn(store_dsn)
    yield db
    db.close()


@pytest.fixture
def server() -> Iterator[FeedServer]:
    """A feed server on 127.0.0.1."""
    srv = FeedServer().start()
    yield srv
    srv.stop()


def add(store: SQLStore, name: str, url: str, kind: str, **kw: object) -> None:
    """Store a feed definition."""
    store.add_feed(
        FeedDefinition(name=name, url=url, kind=kind, refresh=timedelta(hours=1), **kw),  # type: ignore[arg-type]
        now=NOW,
    )


def sync(config: Config, store: SQLiteStore, *names: str, **kw: object) -> list[SyncReport]:
    """Run one sync of *names* (all when empty)."""
    return asyncio.run(sync_feeds(config, store, names=list(names), now=NOW, **kw))  # type: ignore[arg-type]


def feed_subjects(store: SQLiteStore, name: str) -> set[str]:
    """Return the subjects listed by feed *name*."""
    return {item.subject_text for item in store.listings_where(source_prefix=f"feed:{name}")}


def test_drop_file_feed_lists_networks_as_manual(tmp_path: Path, store: SQLiteStore) -> None:
    """A DROP feed lists its networks (a /11 too) as manual from feed:drop; 127/8 never."""
    config = make_config(tmp_path)
    add(store, "drop", (SAMPLES / "drop.txt").as_uri(), "drop", broad=True)
    [report] = sync(config, store)
    listings = store.listings_where(source_prefix="feed:drop")
    assert {item.subject_text for item in listings} == {
        "198.51.100.0/24",
        "203.0.113.0/25",
        "100.64.0.0/11",
    }
    assert {item.cause for item in listings} == {Cause.MANUAL}
    assert {item.source for item in listings} == {"feed:drop"}
    assert "SBL100001" in next(i.reason for i in listings if i.subject_text == "198.51.100.0/24")
    assert report.added == 3
    assert any("127.0.0.0/8" in why for why in report.skipped)


def test_narrow_feed_honours_the_breadth_limit(tmp_path: Path, store: SQLiteStore) -> None:
    """A feed not marked broad skips entries broader than listings.max_prefix_v4."""
    config = make_config(tmp_path)
    add(store, "drop", (SAMPLES / "drop.txt").as_uri(), "drop", broad=False)
    [report] = sync(config, store)
    assert "100.64.0.0/11" not in feed_subjects(store, "drop")
    assert any("100.64.0.0/11 is broader than /16" in why for why in report.skipped)


def test_crowdsec_sync_reports_the_decisions_it_skips(tmp_path: Path, store: SQLiteStore) -> None:
    """Range decisions are not evidence, but the sync counts and names them (nothing silent)."""
    config = make_config(tmp_path)
    decisions = [
        {"id": 1, "scope": "Ip", "value": "192.0.2.1", "scenario": "crowdsecurity/ssh-bf"},
        {"id": 2, "scope": "Range", "value": "203.0.113.0/24", "scenario": "manual"},
        {"id": 3, "scope": "Ip", "value": "192.0.2.3", "scenario": "crowdsecurity/ssh-bf"},
        {"id": 4, "scope": "Country", "value": "XX", "scenario": "geo"},
    ]
    stream = tmp_path / "stream.json"
    stream.write_text(json.dumps({"new": decisions, "deleted": None}), encoding="utf-8")
    add(store, "cs", stream.as_uri(), "crowdsec")
    [report] = sync(config, store)
    assert (report.status, report.entries, report.evidence) == ("updated", 2, 2)
    assert [why.split(":")[0] for why in report.skipped] == [
        "CrowdSec decision 2 on Range '203.0.113.0/24'",
        "CrowdSec decision 4 on Country 'XX'",
    ]


def test_entry_leaving_the_feed_is_delisted_with_history(
    tmp_path: Path, store: SQLiteStore
) -> None:
    """An entry gone from the feed is delisted at the next sync and the audit log says so."""
    config = make_config(tmp_path)
    feed = tmp_path / "drop.txt"
    feed.write_bytes(DROP)
    add(store, "drop", feed.as_uri(), "drop")
    sync(config, store)
    listed_at = {
        i.subject_text: i.listed_at for i in store.listings_where(source_prefix="feed:drop")
    }
    feed.write_bytes(DROP.replace(b"203.0.113.0/25 ; SBL2\n", b""))
    [report] = asyncio.run(sync_feeds(config, store, now=NOW + timedelta(hours=1)))
    assert (report.added, report.removed) == (0, 1)
    assert feed_subjects(store, "drop") == {"198.51.100.0/24", "192.0.2.0/24"}
    kept = store.listings_where(subjects=["198.51.100.0/24"])[0]
    assert kept.listed_at == listed_at["198.51.100.0/24"]
    history = store.history(["203.0.113.0/25"])
    assert [h.action for h in history][:2] == ["delist", "list"]
    assert "left feed:drop" in history[0].detail


def test_etag_and_last_modified_give_304_and_keep_data(
    tmp_path: Path, store: SQLiteStore, server: FeedServer
) -> None:
    """A second sync sends the validators; the 304 keeps every listing and clears nothing."""
    config = make_config(tmp_path)
    server.routes["/drop.txt"] = Route(
        body=DROP, etag='"v1"', last_modified="Thu, 01 Jan 2026 08:00:00 GMT"
    )
    add(store, "drop", server.url("/drop.txt"), "drop")
    first, second = sync(config, store)[0], sync(config, store)[0]
    assert (first.status, first.added) == ("updated", 3)
    assert second.status == "unchanged"
    headers = server.requests[-1][1]
    assert headers["If-None-Match"] == '"v1"'
    assert headers["If-Modified-Since"] == "Thu, 01 Jan 2026 08:00:00 GMT"
    assert len(feed_subjects(store, "drop")) == 3
    record = store.feed("drop")
    assert record is not None
    assert (record.state.etag, record.state.entries, record.state.last_error) == ('"v1"', 3, None)


def test_feed_broken_mid_download_keeps_last_good_data(
    tmp_path: Path, store: SQLiteStore, server: FeedServer
) -> None:
    """A body cut off mid-way is an error; the listings of the last good sync stay."""
    config = make_config(tmp_path)
    server.routes["/drop.txt"] = Route(body=DROP)
    add(store, "drop", server.url("/drop.txt"), "drop")
    sync(config, store)
    big = DROP + b"".join(b"10.%d.%d.0/24 ; SBL9\n" % (i // 256, i % 256) for i in range(2000))
    server.routes["/drop.txt"] = Route(body=big, break_after=len(DROP) + 100)
    [report] = sync(config, store)
    assert report.status == "error"
    assert report.error is not None
    assert "RemoteProtocolError" in report.error
    assert len(feed_subjects(store, "drop")) == 3
    record = store.feed("drop")
    assert record is not None
    assert record.state.last_error == report.error
    assert record.state.entries == 3


def test_garbage_or_empty_feed_never_empties_the_list(
    tmp_path: Path, store: SQLiteStore, server: FeedServer
) -> None:
    """An HTML error page or an empty body fails the sync; --force accepts the empty feed."""
    config = make_config(tmp_path)
    server.routes["/drop.txt"] = Route(body=DROP)
    add(store, "drop", server.url("/drop.txt"), "drop")
    sync(config, store)
    server.routes["/drop.txt"] = Route(body=b"<html><body>\n<h1>Maintenance</h1>\n</body></html>\n")
    [garbage] = sync(config, store)
    assert garbage.error is not None
    assert "unreadable" in garbage.error
    server.routes["/drop.txt"] = Route(body=b"; DROP list\n")
    [empty] = sync(config, store)
    assert empty.error is not None
    assert "no entries" in empty.error
    assert len(feed_subjects(store, "drop")) == 3
    [forced] = sync(config, store, force=True)
    assert (forced.status, forced.removed) == ("updated", 3)
    assert feed_subjects(store, "drop") == set()


def test_http_error_status_keeps_data(
    tmp_path: Path, store: SQLiteStore, server: FeedServer
) -> None:
    """A 500 from the feed host is reported and changes no listing."""
    config = make_config(tmp_path)
    server.routes["/drop.txt"] = Route(body=DROP)
    add(store, "drop", server.url("/drop.txt"), "drop")
    sync(config, store)
    server.routes["/drop.txt"] = Route(body=b"oops", status=500)
    [report] = sync(config, store)
    assert report.error is not None
    assert "HTTP 500" in report.error
    assert len(feed_subjects(store, "drop")) == 3


@pytest.fixture
def world() -> Iterator[DnsFixture]:
    """An authoritative DNS fixture for the URL hosts of the URL-feed samples."""
    data = ZoneData(
        zones=["test", "co.uk"],
        records={
            ("cdn.bad-one.test", "A"): ["192.0.2.50"],
            ("www.shop.bad-two.test", "A"): ["192.0.2.50"],
            ("www.shop.bad-two.test", "AAAA"): ["2001:db8::50"],
            ("www.evil.co.uk", "A"): ["192.0.2.60"],
        },
    )
    fixture = DnsFixture(data).start()
    yield fixture
    fixture.stop()


def test_url_feed_lists_domains_and_records_evidence_on_ips(
    tmp_path: Path, store: SQLiteStore, world: DnsFixture
) -> None:
    """URL feeds list registrable domains and give resolved IPs evidence naming the domain."""
    config = make_config(tmp_path, f'[resolver]\nnameserver = "{world.nameserver}"\n')
    add(store, "urlhaus", (SAMPLES / "urlhaus.csv").as_uri(), "urlhaus")
    [report] = sync(config, store)
    listings = store.listings_where(source_prefix="feed:urlhaus")
    assert {i.subject_text for i in listings} == {"bad-one.test", "bad-two.test", "evil.co.uk"}
    assert {i.cause for i in listings} == {Cause.MALWARE_HOST}
    records = store.evidence_records(["192.0.2.50", "2001:db8::50", "192.0.2.60", "198.51.100.77"])
    seen = {(r.subject, r.domain, r.cause) for r in records}
    assert seen == {
        ("192.0.2.50", "bad-one.test", Cause.MALWARE_HOST),
        ("192.0.2.50", "bad-two.test", Cause.MALWARE_HOST),
        ("2001:db8::50", "bad-two.test", Cause.MALWARE_HOST),
        ("192.0.2.60", "evil.co.uk", Cause.MALWARE_HOST),
        ("198.51.100.77", None, Cause.MALWARE_HOST),
    }
    assert report.evidence == 5
    assert {r.source for r in records} == {"feed:urlhaus"}
    assert sync(config, store)[0].evidence == 0  # same day: the evidence is not repeated

    # Shared hosting: the IP with two bad domains is listed by the policy, the one with one is not.
    outcome = evaluate(store, config.policy, config.reputation, NOW)
    assert outcome.hosting.get("192.0.2.50") is not None
    assert outcome.hosting.get("192.0.2.60") is None
    listed = {i.subject_text for i in store.listings_where(source_prefix="policy")}
    assert "192.0.2.50" in listed
    assert "192.0.2.60" not in listed


def test_url_feed_without_nameserver_still_lists_domains(
    tmp_path: Path, store: SQLiteStore
) -> None:
    """A resolver that does not answer costs the evidence, not the domain listings."""
    config = make_config(tmp_path, '[resolver]\nnameserver = "127.0.0.1:9"\ntimeout = "0.3s"\n')
    add(store, "phish", (SAMPLES / "openphish.txt").as_uri(), "openphish")
    [report] = sync(config, store)
    assert report.unresolved == 3
    assert feed_subjects(store, "phish") == {"phish-one.test", "phish-two.test", "phish-three.test"}


def test_generic_csv_feed_syncs_with_its_mapping(tmp_path: Path, store: SQLiteStore) -> None:
    """A CSV feed with a column mapping lists the mapped column with the mapped reason."""
    config = make_config(tmp_path, "[feeds]\nmax_invalid = 0.5\n")
    mapping = CsvMapping(column="address", reason_column="why", delimiter=";", header=True)
    add(store, "fw", (SAMPLES / "generic.csv").as_uri(), "csv", csv=mapping)
    sync(config, store)
    reasons = {i.subject_text: i.reason for i in store.listings_where(source_prefix="feed:fw")}
    assert reasons == {"192.0.2.10": "feed fw: ssh brute force", "192.0.2.11": "feed fw: port scan"}


def test_refresh_loop_syncs_due_feeds_until_stopped(tmp_path: Path, store_dsn: str) -> None:
    """refresh_feeds syncs a due feed with a fresh store and returns once stop is set."""
    config = make_config(tmp_path, '[feeds]\ninterval = "0.05s"\n')
    feed = tmp_path / "list.txt"
    feed.write_text("192.0.2.1\n", encoding="utf-8")
    setup = open_dsn(store_dsn)
    add(setup, "local", feed.as_uri(), "plain")
    setup.close()
    opened: list[SQLStore] = []

    def factory() -> SQLStore:
        """Open a new connection, as serve would."""
        opened.append(open_dsn(store_dsn))
        return opened[-1]

    async def run() -> None:
        """Stop the loop once the feed has been synced."""
        stop = asyncio.Event()
        task = asyncio.create_task(refresh_feeds(config, factory, stop))
        await wait_for_async(lambda: len(opened) >= 2, 60, "a second sync's store")
        stop.set()
        await asyncio.wait_for(task, 60)  # ends once the sync under way has

    asyncio.run(run())
    check = open_dsn(store_dsn)
    assert {i.subject_text for i in check.listings_where(source_prefix="feed:local")} == {
        "192.0.2.1"
    }
    record = check.feed("local")
    assert record is not None
    assert record.state.last_success is not None
    check.close()
    assert len(opened) >= 2

"""Verified fixes: probe-made relay listings are re-probed, and a closed relay is delisted at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from pathlib import Path

import pytest

from reputable.config import DEFAULT_TOML, Config, parse_config
from reputable.evidence.sources.probes.guard import RateLimiter
from reputable.evidence.sources.probes.model import ProbeResult
from reputable.evidence.sources.probes.runner import run_probe
from reputable.evidence.sources.settings import parse_settings
from reputable.listings.delisting import request_removal
from reputable.listings.engine import evaluate_new
from reputable.listings.explain import explain
from reputable.listings.reprobe import reprobe_round
from reputable.store.sqlite import SQLiteStore
from tests.evidence.probe_servers import SmtpTarget, start_relay, stop
from tests.listings.test_engine import active

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
HOST = "127.0.0.2"
DAY = 86400.0


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """The default configuration with loopback probe-able and a short probe timeout."""
    text = DEFAULT_TOML.replace(
        "[policy]", '[probes]\nallow = ["127.0.0.0/8"]\ntimeout = "2s"\n\n[policy]', 1
    )
    return parse_config(text, tmp_path / "reputable.toml")


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    """A fresh SQLite store."""
    return SQLiteStore(tmp_path / "r.db")


def scenario(
    store: SQLiteStore, config: Config, steps: list[tuple[str, datetime]]
) -> list[list[ProbeResult]]:
    """Run an open relay fixture through *steps*: probe, close, reprobe at the given times."""
    settings = parse_settings(config.extra)
    every = config.policy.reprobe_every.total_seconds()

    async def run() -> list[list[ProbeResult]]:
        target: SmtpTarget = await start_relay(HOST, closed=False)
        out: list[list[ProbeResult]] = []
        try:
            for step, at in steps:
                if step == "probe":
                    found = await run_probe(
                        "relay", f"{HOST}:{target.port}", settings=settings, store=store, now=at,
                        allow=[ip_network("127.0.0.0/8")],
                    )  # fmt: skip
                    out.append([found])
                elif step == "close":
                    target.handler.closed = True
                else:
                    out.append(
                        await reprobe_round(store, settings, every, at, limiter=RateLimiter(0, 100))
                    )
                evaluate_new(store, config.policy, config.reputation, at + timedelta(seconds=1))
                await asyncio.sleep(0.02)
        finally:
            await stop(target.server)
        assert not target.handler.data_seen
        return out

    return asyncio.run(run())


def test_open_relay_finding_lists_and_daily_reprobe_keeps_it(
    store: SQLiteStore, config: Config
) -> None:
    """One open-relay finding lists at once; a re-probe a day later finds it open and renews it."""
    first = NOW
    results = scenario(
        store,
        config,
        [
            ("probe", first),
            ("reprobe", first + timedelta(hours=1)),
            ("reprobe", first + timedelta(days=1, minutes=1)),
        ],
    )
    assert [r.result for r in results[0]] == ["open"]
    assert results[1] == []  # not due yet
    assert [r.result for r in results[2]] == ["open"]
    at = first + timedelta(days=1, minutes=2)
    assert active(store, at) == {HOST: {"open_relay"}}
    (listing,) = store.listings(active_at=at)
    assert listing.listed_at == first
    assert "2 open-relay probe findings" in listing.reason


def test_removal_request_triggers_reprobe_that_ends_listing(
    store: SQLiteStore, config: Config
) -> None:
    """The admin fixes the relay and asks: the re-probe finds it closed and the listing ends."""
    asked = NOW + timedelta(hours=2)
    settings = parse_settings(config.extra)

    async def run() -> tuple[str, str, list[ProbeResult]]:
        target = await start_relay(HOST, closed=False)
        try:
            await run_probe(
                "relay", f"{HOST}:{target.port}", settings=settings, store=store, now=NOW
            )
            evaluate_new(store, config.policy, config.reputation, NOW + timedelta(seconds=1))
            target.handler.closed = True  # the admin fixes it
            result = request_removal(
                store,
                HOST,
                contact="admin@example.net",
                note="fixed",
                params=config.policy,
                now=asked,
            )
            found = await reprobe_round(
                store, settings, DAY, asked + timedelta(minutes=1), limiter=RateLimiter(0, 100)
            )
        finally:
            await stop(target.server)
        return result.status, result.message, found

    status, message, found = asyncio.run(run())
    assert status == "pending" and "probed again" in message
    assert [r.result for r in found] == ["closed"]
    later = asked + timedelta(minutes=1, seconds=1)
    evaluate_new(store, config.policy, config.reputation, later)
    assert active(store, later) == {}
    assert [r.status for r in store.delist_requests()] == ["granted"]
    history = explain(store, config, HOST, later).history
    assert any("re-probe found it closed" in h["detail"] for h in history)

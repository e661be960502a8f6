"""The open-proxy probe against small CONNECT/SOCKS4/SOCKS5 proxies on loopback."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from ipaddress import ip_network
from pathlib import Path

import pytest

from reputable.config import parse_config
from reputable.core.cause import Cause
from reputable.core.errors import ConfigError
from reputable.evidence.sources.probes.model import ProbeResult
from reputable.evidence.sources.probes.runner import run_probe
from reputable.evidence.sources.settings import parse_settings
from reputable.store.dsn import open_dsn
from reputable.store.sqlite import SQLiteStore
from tests.evidence.probe_servers import Canary, ProxyTarget, stop

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
LOOPBACK = [ip_network("127.0.0.0/8")]


async def probe(store: SQLiteStore, proxy: ProxyTarget, canary: Canary) -> ProbeResult:
    """Probe *proxy* with *canary* as the configured canary."""
    config = parse_config(f'[probes]\ntimeout = "2s"\nproxy_canary = "127.0.0.1:{canary.port}"\n')
    return await run_probe(
        "proxy",
        f"127.0.0.5:{proxy.port}",
        settings=parse_settings(config.extra),
        store=store,
        now=NOW,
        allow=LOOPBACK,
    )


def run(store: SQLiteStore, proxy: ProxyTarget) -> tuple[ProbeResult, Canary]:
    """Start a canary and *proxy* on 127.0.0.5, probe, and stop both."""

    async def scenario() -> tuple[ProbeResult, Canary]:
        """Probe the proxy fixture."""
        canary = await Canary().start()
        await proxy.start("127.0.0.5")
        try:
            return await probe(store, proxy, canary), canary
        finally:
            assert proxy.server is not None
            assert canary.server is not None
            await stop(proxy.server)
            await stop(canary.server)

    return asyncio.run(scenario())


def test_open_proxy_agrees_by_every_method(tmp_path: Path, store_dsn: str) -> None:
    """An open proxy connects to the canary for CONNECT, SOCKS4 and SOCKS5: open_proxy evidence."""
    store = open_dsn(store_dsn)
    proxy = ProxyTarget(open=True)
    result, canary = run(store, proxy)
    assert result.result == "open"
    assert result.facts["methods"] == {"http-connect": "open", "socks4": "open", "socks5": "open"}
    assert canary.connections == 3
    assert [r.split()[0] for r in proxy.requests] == ["http", "socks4", "socks5"]
    assert all(r.endswith(f"127.0.0.1:{canary.port}") for r in proxy.requests)
    [record] = store.evidence_records(["127.0.0.5"])
    assert (record.cause, record.source) == (Cause.OPEN_PROXY, "probe:proxy")
    transcript = record.detail["transcript"]
    assert isinstance(transcript, list)
    assert any(line.startswith("C: CONNECT 127.0.0.1:") for line in transcript)


@pytest.mark.parametrize("auth", [False, True], ids=["refuses", "socks5-needs-auth"])
def test_closed_proxy_is_clean(tmp_path: Path, auth: bool, store_dsn: str) -> None:
    """A proxy that refuses the canary (or demands a SOCKS5 password) is closed: clean evidence."""
    store = open_dsn(store_dsn)
    result, canary = run(store, ProxyTarget(open=False, socks5_auth=auth))
    assert result.result == "closed"
    assert set(result.facts["methods"].values()) == {"closed"}
    assert canary.connections == 0
    [record] = store.evidence_records(["127.0.0.5"])
    assert record.cause is Cause.CLEAN


def test_proxy_probe_needs_a_canary(tmp_path: Path, store_dsn: str) -> None:
    """Without [probes] proxy_canary the probe stops with a message saying what to set."""
    store = open_dsn(store_dsn)
    with pytest.raises(ConfigError, match="proxy_canary"):
        asyncio.run(
            run_probe(
                "proxy",
                "127.0.0.5:3128",
                settings=parse_settings({}),
                store=store,
                now=NOW,
                allow=LOOPBACK,
            )
        )

"""The open-relay probe against aiosmtpd fixtures on 127.0.0.x: it never sends DATA."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from ipaddress import ip_address, ip_network

import pytest

from reputable.config import parse_config
from reputable.core.cause import Cause
from reputable.evidence.model import Evidence
from reputable.evidence.sources.probes.guard import RateLimiter
from reputable.evidence.sources.probes.runner import run_probe
from reputable.evidence.sources.settings import SourceSettings, parse_settings
from reputable.store.dsn import open_dsn
from reputable.store.sqlite import SQLiteStore, SQLStore
from tests.evidence.probe_servers import start_relay, stop

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
LOOPBACK = [ip_network("127.0.0.0/8")]


def settings(timeout: str = "2s") -> SourceSettings:
    """Return probe settings with a short conversation timeout."""
    return parse_settings(parse_config(f'[probes]\ntimeout = "{timeout}"\n').extra)


@pytest.fixture
def store(store_dsn: str) -> SQLStore:
    """An empty SQLite store."""
    return open_dsn(store_dsn)


@pytest.mark.parametrize(("host", "closed"), [("127.0.0.2", False), ("127.0.0.3", True)])
def test_relay_probe_finds_open_and_closed_relays_without_data(
    store: SQLiteStore, host: str, closed: bool
) -> None:
    """An open relay is open_relay evidence, a closed one clean; the wire never carries DATA."""

    async def scenario() -> tuple[object, list[str], bool]:
        """Probe a relay fixture and return the result, the verbs it got, and whether DATA came."""
        target = await start_relay(host, closed=closed)
        try:
            result = await run_probe(
                "relay",
                f"{host}:{target.port}",
                settings=settings(),
                store=store,
                now=NOW,
                allow=LOOPBACK,
            )
            await asyncio.sleep(0.05)  # let the server read QUIT
        finally:
            await stop(target.server)
        return result, target.commands(), target.handler.data_seen

    result, verbs, data_seen = asyncio.run(scenario())
    assert result.result == ("closed" if closed else "open")  # type: ignore[attr-defined]
    assert verbs == ["EHLO", "MAIL", "RCPT", "RSET", "QUIT"]
    assert not data_seen
    assert not any("DATA" in line for line in result.transcript)  # type: ignore[attr-defined]
    records = store.evidence_records([host])
    assert [(r.cause, r.source) for r in records] == [
        (Cause.CLEAN if closed else Cause.OPEN_RELAY, "probe:relay")
    ]
    assert "C: RCPT TO:<relay-test@example.org>" in records[0].detail["transcript"]  # type: ignore[operator]


def test_nothing_listening_is_closed(store: SQLiteStore) -> None:
    """A port where nothing listens is closed, not a crash, and gives no clean evidence."""

    async def scenario() -> str:
        """Find a free port on 127.0.0.2, then probe it."""
        target = await start_relay("127.0.0.2", closed=False)
        await stop(target.server)
        result = await run_probe(
            "relay",
            f"127.0.0.2:{target.port}",
            settings=settings(),
            store=store,
            now=NOW,
            allow=LOOPBACK,
        )
        return result.result

    assert asyncio.run(scenario()) == "closed"
    assert store.evidence_records(["127.0.0.2"]) == []  # no listener proves nothing: no clean


@pytest.mark.serial  # a wall-clock limit: no other worker's test runs meanwhile
def test_silent_server_times_out_within_the_limit(store: SQLiteStore) -> None:
    """A server that accepts but never speaks is an error after probes.timeout, not a hang."""

    async def scenario() -> tuple[str, float]:
        """Probe a listener that never answers."""

        async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            """Say nothing."""
            await reader.read()
            writer.close()

        server = await asyncio.start_server(mute, "127.0.0.4", 0)
        port = server.sockets[0].getsockname()[1]
        started = time.perf_counter()
        result = await run_probe(
            "relay",
            f"127.0.0.4:{port}",
            settings=settings("0.3s"),
            store=store,
            now=NOW,
            allow=LOOPBACK,
        )
        elapsed = time.perf_counter() - started
        await stop(server)
        return result.result, elapsed

    result, elapsed = asyncio.run(scenario())
    assert result == "error"
    assert elapsed < 1.0  # the 0.3 s limit, plus a RSET/QUIT that waits for no answer


def test_target_outside_the_allow_list_is_refused_without_a_connection(
    store: SQLiteStore,
) -> None:
    """An address neither allow-listed nor seen in logs is refused and never contacted."""
    result = asyncio.run(
        run_probe("relay", "192.0.2.25", settings=settings(), store=store, now=NOW)
    )
    assert result.result == "refused"
    assert "outside the allow-list" in result.reason
    assert "--allow CIDR" in result.reason
    assert store.evidence_records(["192.0.2.25"]) == []


def test_addresses_seen_in_own_logs_are_allowed_but_feed_ones_are_not(store: SQLiteStore) -> None:
    """Evidence from ingested logs allow-lists an address; feed or probe evidence does not."""

    def seen(ip: str, source: str) -> None:
        """Store one piece of evidence about *ip* from *source*."""
        store.add_evidence(
            [Evidence(subject=ip_address(ip), cause=Cause.SPAM, source=source, observed_at=NOW)]
        )

    seen("127.0.0.2", "maillog:/var/log/mail.log")
    seen("127.0.0.3", "feed:urlhaus")

    async def scenario() -> tuple[str, str]:
        """Probe a relay on each address with the default allow-list."""
        open_one = await start_relay("127.0.0.2", closed=False)
        other = await start_relay("127.0.0.3", closed=False)
        try:
            first = await run_probe(
                "relay", f"127.0.0.2:{open_one.port}", settings=settings(), store=store, now=NOW
            )
            second = await run_probe(
                "relay", f"127.0.0.3:{other.port}", settings=settings(), store=store, now=NOW
            )
        finally:
            await stop(open_one.server)
            await stop(other.server)
        return first.result, second.result

    assert asyncio.run(scenario()) == ("open", "refused")


def test_rate_limits_per_target_and_overall(store: SQLiteStore) -> None:
    """A second probe of one target inside probes.per_target is refused; so is one over budget."""

    async def scenario() -> list[str]:
        """Probe the same relay twice, then a limiter whose overall budget is spent."""
        target = await start_relay("127.0.0.2", closed=True)
        where = f"127.0.0.2:{target.port}"
        conf = settings()
        try:
            first = await run_probe(
                "relay", where, settings=conf, store=store, now=NOW, allow=LOOPBACK
            )
            again = await run_probe(
                "relay", where, settings=conf, store=store, now=NOW, allow=LOOPBACK
            )
        finally:
            await stop(target.server)
        spent = RateLimiter(per_target=0.001, per_minute=0)
        budget = await run_probe(
            "relay",
            "127.0.0.9:25",
            settings=conf,
            store=store,
            now=NOW,
            allow=LOOPBACK,
            limiter=spent,
        )
        return [first.result, again.result, budget.result, again.reason, budget.reason]

    first, again, budget, why_again, why_budget = asyncio.run(scenario())
    assert (first, again, budget) == ("closed", "refused", "refused")
    assert "per_target" in why_again
    assert "per_minute" in why_budget

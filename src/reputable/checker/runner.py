"""Running checks with real clients: one DnsClient per run, a blocking resolver for libraries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import dns.resolver

from reputable.checker.alert import send_alerts
from reputable.checker.batch import check_many
from reputable.checker.catalogue import Zone
from reputable.checker.model import Report
from reputable.checker.service import Request, check
from reputable.checker.settings import Settings
from reputable.checker.watch import (
    Change,
    WatchConfig,
    next_state,
    read_state,
    targets,
    write_state,
)
from reputable.core.dnsclient import DnsClient, parse_nameserver, sync_resolver


def clients(settings: Settings) -> tuple[DnsClient, dns.resolver.Resolver]:
    """Return the async client and the blocking resolver, both asking only the configured server."""
    server = parse_nameserver(settings.nameserver)
    client = DnsClient(
        server,
        timeout=settings.timeout,
        retries=settings.retries,
        concurrency=settings.concurrency,
    )
    return client, sync_resolver(server, settings.timeout, settings.retries)


async def check_one(request: Request, settings: Settings, zones: Sequence[Zone]) -> Report:
    """Return the report on one request, opening and closing the clients around it."""
    client, sync = clients(settings)
    async with client:
        return await check(request, zones, client, sync)


async def watch_round(
    config: WatchConfig, settings: Settings, zones: Sequence[Zone], now: datetime
) -> list[Change]:
    """Check every watched subject once, alert on changes, then save the state.

    The state is saved only after the alerts went out, so a failed alert is sent again next round.
    """
    state = read_state(config.state)
    client, sync = clients(settings)
    reports = []
    async with client:
        template = Request(subject="")
        async for report in check_many(targets(config), template, zones, client, sync):
            reports.append(report)
    new_state, changes = next_state(state, reports, now)
    await send_alerts(config, changes, now)
    write_state(config.state, new_state)
    return changes

"""Name lookups through the one configured nameserver (core's DNS client; never the system resolver)."""

from __future__ import annotations

from ipaddress import ip_address
from typing import Protocol

import dns.reversename

from reputable.core.address import IPAddress
from reputable.core.dnsclient import DnsClient, Lookup, Nameserver, Outcome
from reputable.core.errors import ReputableError
from reputable.evidence.sources.settings import ResolverSettings


class ResolveError(ReputableError):
    """The nameserver did not answer, or answered with an error other than 'no such name'."""


class Resolver(Protocol):
    """Forward and reverse lookups (tests pass a loopback DNS fixture's address)."""

    async def addresses(self, name: str) -> list[IPAddress]:
        """Return the A and AAAA addresses of *name* (empty if it has none)."""
        ...

    async def names(self, address: IPAddress) -> list[str]:
        """Return the PTR names of *address* (empty if it has none)."""
        ...


def _records(name: str, rdtype: str, lookup: Lookup, server: Nameserver) -> tuple[str, ...]:
    """Return the records of *lookup*; no such name or no such type is none, the rest an error."""
    if lookup.outcome in (Outcome.ANSWER, Outcome.NXDOMAIN, Outcome.NODATA):
        return lookup.records
    detail = lookup.detail or str(lookup.outcome)
    raise ResolveError(
        f"{rdtype} {name}: nameserver {server}: {lookup.outcome} ({detail});"
        " check [resolver] nameserver in reputable.toml"
    )


class DnsResolver:
    """A stub resolver that asks exactly the configured nameserver, through core's DnsClient.

    Each call opens and closes its own client: these lookups are few (one probe, one feed
    entry at a time) and a DnsResolver outlives event loops (each ``asyncio.run`` of a round).
    """

    def __init__(self, settings: ResolverSettings) -> None:
        self.settings = settings
        self.server = Nameserver(settings.host, settings.port)

    async def _ask(self, asks: list[tuple[str, str]]) -> list[str]:
        async with DnsClient(self.server, timeout=self.settings.timeout, retries=0) as client:
            lookups = await client.lookup_all([(n, t, None) for n, t in asks])
        return [
            record
            for (name, rdtype), lookup in zip(asks, lookups, strict=True)
            for record in _records(name, rdtype, lookup, self.server)
        ]

    async def addresses(self, name: str) -> list[IPAddress]:
        """Return the A and AAAA addresses of *name* (empty if it has none), both asked at once."""
        found = await self._ask([(name, "A"), (name, "AAAA")])
        return [ip_address(text) for text in found]

    async def names(self, address: IPAddress) -> list[str]:
        """Return the PTR names of *address*, without the final dot."""
        reverse = dns.reversename.from_address(str(address)).to_text()
        found = await self._ask([(reverse, "PTR")])
        return [name.rstrip(".").lower() for name in found]

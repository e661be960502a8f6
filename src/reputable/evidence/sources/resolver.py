"""Name lookups through the one configured nameserver (dnspython; never the system resolver)."""

from __future__ import annotations

from ipaddress import ip_address
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.name
import dns.resolver
import dns.reversename

from reputable.core.address import IPAddress
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


class DnsResolver:
    """A stub resolver that asks exactly the configured nameserver."""

    def __init__(self, settings: ResolverSettings) -> None:
        self.settings = settings
        # configure=False: never read /etc/resolv.conf; the nameserver is explicit.
        self._resolver = dns.asyncresolver.Resolver(configure=False)
        self._resolver.nameservers = [str(settings.host)]
        self._resolver.port = settings.port
        self._resolver.lifetime = settings.timeout
        self._resolver.timeout = settings.timeout

    async def _lookup(self, name: str | dns.name.Name, rdtype: str) -> list[str]:
        try:
            answer = await self._resolver.resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as exc:
            where = f"{self.settings.host}:{self.settings.port}"
            raise ResolveError(f"{rdtype} {name}: nameserver {where}: {exc}") from exc
        return [r.to_text() for r in answer]

    async def addresses(self, name: str) -> list[IPAddress]:
        """Return the A and AAAA addresses of *name* (empty if it has none)."""
        found = await self._lookup(name, "A") + await self._lookup(name, "AAAA")
        return [ip_address(text) for text in found]

    async def names(self, address: IPAddress) -> list[str]:
        """Return the PTR names of *address*, without the final dot."""
        found = await self._lookup(dns.reversename.from_address(str(address)), "PTR")
        return [name.rstrip(".").lower() for name in found]

"""The settings publication owns: the published zones, the DNS server, access rules and RRL.

reputable.config reads them from reputable.toml (and re-exports them); this stage only
declares them, with :class:`PublicationConfig` naming the part of the whole configuration
the stage reads, so no module of publication/ imports reputable.config (a stage never
imports the composition layer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from ipaddress import IPv4Address, IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any, Literal, Protocol, TypeAlias

from reputable.core.cause import Cause

AccessAction: TypeAlias = Literal["answer", "refuse", "ignore"]


@dataclass(frozen=True, slots=True)
class ZoneConfig:
    """One published DNS zone."""

    name: str
    ttl: int
    codes: dict[Cause, IPv4Address]
    lookup_url: str  # appended to TXT; "$" is replaced by the queried subject


@dataclass(frozen=True, slots=True)
class AccessRule:
    """What to do with queries from *network*: answer, refuse (REFUSED) or ignore (drop)."""

    network: IPv4Network | IPv6Network
    action: AccessAction
    rrl: int | None = None  # responses/s for these clients (0: no rate limit); None: [rrl]'s


@dataclass(frozen=True, slots=True)
class RrlConfig:
    """Response rate limiting (as BIND's RRL): per client /24 or /56, identical answers/s."""

    responses_per_second: int = 20  # 0 turns it off
    slip: int = 2  # every slip-th dropped answer goes out truncated (TC); 0: drop all
    exempt: tuple[IPv4Network | IPv6Network, ...] = (
        ip_network("127.0.0.0/8"),
        ip_network("::1/128"),
    )


@dataclass(frozen=True, slots=True)
class DnsConfig:
    """The DNS server."""

    listen: tuple[tuple[str, int], ...]
    workers: int
    reload_interval: timedelta
    nameservers: tuple[str, ...]
    hostmaster: str
    negative_ttl: int
    access: tuple[AccessRule, ...]
    fast_path: bool
    max_udp_answer: int = 1232  # never a longer UDP answer, whatever EDNS offers (TC beyond)
    max_amplification: int = 3  # UDP answer <= this x query for clients offering <= 512 bytes
    tcp_idle_timeout: float = 10.0  # seconds a TCP client may wait before its next query
    tcp_write_timeout: float = 5.0  # seconds an answer may take to be taken by the client
    tcp_max_clients: int = 256  # open TCP connections per worker; the oldest idle one yields
    tcp_max_per_client: int = 16  # open TCP connections per client address
    rrl: RrlConfig = field(default_factory=RrlConfig)


class PublicationConfig(Protocol):
    """The part of the configuration publication reads (reputable.config.Config has it)."""

    @property
    def path(self) -> Path | None:
        """The configuration file (None: the built-in defaults)."""
        ...

    @property
    def snapshot_path(self) -> Path:
        """The snapshot file the DNS workers map."""
        ...

    @property
    def ip_zone(self) -> ZoneConfig:
        """The IPv4 + IPv6 zone."""
        ...

    @property
    def domain_zone(self) -> ZoneConfig:
        """The domain zone (RHSBL)."""
        ...

    @property
    def allow_zone(self) -> ZoneConfig:
        """The allowlist zone (DNSWL)."""
        ...

    @property
    def dns(self) -> DnsConfig:
        """The DNS server's settings."""
        ...

    @property
    def extra(self) -> dict[str, Any]:
        """The other sections, as checked by the schema ([transfer], [log], user...)."""
        ...

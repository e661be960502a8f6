"""The ``[resolver]``, ``[feeds]`` and ``[probes]`` sections of reputable.toml, with defaults.

::

    [resolver]
    nameserver = "127.0.0.1:53"    # the recursive resolver feeds and probes ask (IP[:port])
    timeout = "3s"                 # per query

    [feeds]
    interval = "60s"               # how often serve looks for feeds that are due
    timeout = "60s"                # a whole download
    max_bytes = 200000000          # a bigger download is an error
    max_invalid = 0.1              # share of unreadable lines that fails a sync
    max_shrink = 0.5               # a sync dropping more than this share of entries fails
    max_resolve = 5000             # URL hosts resolved per sync
    floor_v4 = 8                   # no feed entry broader than this, even for broad feeds
    floor_v6 = 16
    api_keys = {}                  # URL prefix -> X-Api-Key (CrowdSec LAPI bouncer key)

    [probes]
    allow = []                     # networks always probe-able (CIDRs)
    allow_seen = true              # and addresses seen in the operator's own logs
    helo = "probe.reputable.test"
    relay_from = "relay-test@example.com"
    relay_to = "relay-test@example.org"
    proxy_canary = ""              # HOST:PORT you run; required by `probe proxy`
    timeout = "10s"                # a whole probe conversation
    per_target = "10m"             # minimum time between two probes of one target
    per_minute = 30                # probes per minute, all targets together
    auto_rdns = false              # serve: rDNS-probe addresses newly seen in mail logs
    auto_rdns_sources = ["maillog"]  # evidence sources (prefixes) that mean "connected to us"
    auto_rdns_every = "7d"         # serve re-probes one address at most this often
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, ip_address
from typing import Any

from reputable.core.address import IPAddress, IPNetwork
from reputable.core.clock import parse_duration
from reputable.core.errors import ConfigError, InputError
from reputable.evidence.parsers.feed_net import feed_network


@dataclass(frozen=True, slots=True)
class ResolverSettings:
    """Where name and PTR lookups go."""

    host: IPAddress = field(default_factory=lambda: IPv4Address("127.0.0.1"))
    port: int = 53
    timeout: float = 3.0


@dataclass(frozen=True, slots=True)
class FeedSettings:
    """Limits and guards of feed syncs."""

    interval: float = 60.0
    timeout: float = 60.0
    max_bytes: int = 200_000_000
    max_invalid: float = 0.1
    max_shrink: float = 0.5
    max_resolve: int = 5000
    floor_v4: int = 8
    floor_v6: int = 16
    api_keys: tuple[tuple[str, str], ...] = ()  # (URL prefix, X-Api-Key value)


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    """Who may be probed, how, and how often."""

    allow: tuple[IPNetwork, ...] = ()
    allow_seen: bool = True
    helo: str = "probe.reputable.test"
    relay_from: str = "relay-test@example.com"
    relay_to: str = "relay-test@example.org"
    proxy_canary: tuple[IPAddress, int] | None = None
    timeout: float = 10.0
    per_target: float = 600.0
    per_minute: int = 30
    auto_rdns: bool = False
    auto_rdns_sources: tuple[str, ...] = ("maillog",)
    auto_rdns_every: float = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """The three sections together."""

    resolver: ResolverSettings
    feeds: FeedSettings
    probes: ProbeSettings


def endpoint(text: str, default_port: int, key: str) -> tuple[IPAddress, int]:
    """Return ``IP``, ``IP:PORT`` or ``[IPv6]:PORT`` as (address, port); names are refused."""
    raw = text.strip()
    host, port = raw, str(default_port)
    if raw.startswith("["):
        host, _, rest = raw[1:].partition("]")
        port = rest.removeprefix(":") or port
    elif raw.count(":") == 1:
        host, port = raw.split(":")
    try:
        address = ip_address(host)
        number = int(port)
        if not 0 < number < 65536:
            raise ValueError("port must be 1-65535")
    except ValueError as exc:
        raise ConfigError(
            f"{key} = {text!r}: use IP or IP:PORT with a numeric address (e.g. 127.0.0.1:53): {exc}"
        ) from exc
    return address, number


def _section(extra: dict[str, Any], name: str) -> dict[str, Any]:
    section = extra.get(name, {})
    if not isinstance(section, dict):
        raise ConfigError(f"[{name}] must be a table")
    return section


def _seconds(section: dict[str, Any], key: str, default: float, where: str) -> float:
    if key not in section:
        return default
    try:
        value = parse_duration(str(section[key])).total_seconds()
    except InputError as exc:
        raise ConfigError(f"{where}.{key}: {exc}") from exc
    if value <= 0:
        raise ConfigError(f"{where}.{key}: must be positive")
    return value


def _number(section: dict[str, Any], key: str, default: Any, where: str) -> Any:
    value = section.get(key, default)
    kind = type(default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) != isinstance(default, bool):
        raise ConfigError(f"{where}.{key} = {value!r}: expected a {kind.__name__}")
    return value


def _api_keys(raw: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise ConfigError(
            'feeds.api_keys: use a table of URL prefix = key, e.g. { "http://127.0.0.1:8080/"'
            ' = "KEY from cscli bouncers add" }'
        )
    return tuple(sorted(raw.items()))


def parse_settings(extra: dict[str, Any]) -> SourceSettings:
    """Return the ``[resolver]``, ``[feeds]`` and ``[probes]`` settings in *extra*."""
    res, fee, pro = (_section(extra, n) for n in ("resolver", "feeds", "probes"))
    host, port = endpoint(str(res.get("nameserver", "127.0.0.1:53")), 53, "resolver.nameserver")
    resolver = ResolverSettings(host, port, _seconds(res, "timeout", 3.0, "resolver"))
    d = FeedSettings()
    feeds = FeedSettings(
        interval=_seconds(fee, "interval", d.interval, "feeds"),
        timeout=_seconds(fee, "timeout", d.timeout, "feeds"),
        max_bytes=_number(fee, "max_bytes", d.max_bytes, "feeds"),
        max_invalid=_number(fee, "max_invalid", d.max_invalid, "feeds"),
        max_shrink=_number(fee, "max_shrink", d.max_shrink, "feeds"),
        max_resolve=_number(fee, "max_resolve", d.max_resolve, "feeds"),
        floor_v4=_number(fee, "floor_v4", d.floor_v4, "feeds"),
        floor_v6=_number(fee, "floor_v6", d.floor_v6, "feeds"),
        api_keys=_api_keys(fee.get("api_keys", {})),
    )
    if not (0 <= feeds.max_invalid <= 1 and 0 <= feeds.max_shrink <= 1):
        raise ConfigError("feeds.max_invalid and feeds.max_shrink are shares between 0 and 1")
    p = ProbeSettings()
    try:
        allow = tuple(feed_network(str(n)) for n in pro.get("allow", []))
    except InputError as exc:
        raise ConfigError(f"probes.allow: {exc}") from exc
    canary_text = str(pro.get("proxy_canary", "")).strip()
    probes = ProbeSettings(
        allow=allow,
        allow_seen=_number(pro, "allow_seen", p.allow_seen, "probes"),
        helo=str(pro.get("helo", p.helo)),
        relay_from=str(pro.get("relay_from", p.relay_from)),
        relay_to=str(pro.get("relay_to", p.relay_to)),
        proxy_canary=endpoint(canary_text, 80, "probes.proxy_canary") if canary_text else None,
        timeout=_seconds(pro, "timeout", p.timeout, "probes"),
        per_target=_seconds(pro, "per_target", p.per_target, "probes"),
        per_minute=_number(pro, "per_minute", p.per_minute, "probes"),
        auto_rdns=_number(pro, "auto_rdns", p.auto_rdns, "probes"),
        auto_rdns_sources=tuple(str(x) for x in pro.get("auto_rdns_sources", p.auto_rdns_sources)),
        auto_rdns_every=_seconds(pro, "auto_rdns_every", p.auto_rdns_every, "probes"),
    )
    for key in ("relay_from", "relay_to"):
        if "@" not in getattr(probes, key):
            raise ConfigError(f"probes.{key}: need an address like user@example.com")
    return SourceSettings(resolver=resolver, feeds=feeds, probes=probes)

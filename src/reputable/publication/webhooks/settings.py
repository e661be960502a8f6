"""``[[webhooks]]``: endpoints, their secret and what they want to hear about."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any, Final
from urllib.parse import urlsplit

from reputable.core.cause import Cause, parse_cause
from reputable.core.clock import parse_duration
from reputable.core.errors import ConfigError, InputError

EVENTS: Final = ("listed", "delisted", "removal_requested", "removal_decided")


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """One receiver: URL, shared secret and filters (None: everything)."""

    name: str
    url: str
    secret: str
    events: frozenset[str] = frozenset(EVENTS)
    causes: frozenset[Cause] | None = None
    networks: tuple[IPv4Network | IPv6Network, ...] | None = None
    timeout: float = 10.0
    give_up: timedelta = timedelta(days=3)  # after this long undelivered, a body is dead


def parse_webhooks(raw: Any) -> tuple[Endpoint, ...]:
    """Return the ``[[webhooks]]`` array *raw*, checked; every error names the key and fix."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError('[[webhooks]] must be an array of tables: [[webhooks]] url = "..."')
    endpoints: list[Endpoint] = []
    for i, item in enumerate(raw):
        where = f"webhooks[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: must be a table with url and secret")
        url = str(item.get("url", ""))
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{where}.url {url!r}: use an http:// or https:// URL")
        secret = str(item.get("secret", ""))
        if len(secret) < 16:
            raise ConfigError(
                f"{where}.secret: use a random string of at least 16 characters"
                " (e.g. `openssl rand -hex 32`); receivers check the signature with it"
            )
        events = frozenset(str(e) for e in item.get("events", EVENTS))
        if unknown := sorted(events - set(EVENTS)):
            raise ConfigError(f"{where}.events {unknown}: use any of {', '.join(EVENTS)}")
        try:
            causes = (
                frozenset(parse_cause(str(c)) for c in item["causes"]) if "causes" in item else None
            )
            networks = (
                tuple(ip_network(str(n), strict=False) for n in item["networks"])
                if "networks" in item
                else None
            )
            timeout = float(item.get("timeout", 10.0))
            give_up = parse_duration(str(item.get("give_up", "3d")))
        except (ValueError, TypeError, InputError) as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        name = str(item.get("name", url))
        if any(e.name == name for e in endpoints):
            raise ConfigError(f"{where}.name {name!r}: used twice; give each endpoint its own name")
        endpoints.append(
            Endpoint(
                name=name,
                url=url,
                secret=secret,
                events=events,
                causes=causes,
                networks=networks,
                timeout=timeout,
                give_up=give_up,
            )
        )
    return tuple(endpoints)

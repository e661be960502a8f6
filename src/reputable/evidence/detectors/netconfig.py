"""Scenarios of the network-log detectors and their settings (``[detectors.net]`` in reputable.toml).

Each scenario is a leaky bucket per source address: every matching event pours one unit (or
its packet count), one unit leaks out every ``leakspeed``, and the bucket overflows when its
level exceeds ``capacity``. A *distinct* scenario pours only for a value it has not seen
while the bucket was non-empty (a new user name, port or host). After an overflow the
address is quiet for ``blackout`` in that scenario, so a long attack gives one piece of
evidence per blackout, not one per line. Defaults are documented in docs/evidence-net.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any, Final

from reputable.core.clock import parse_duration
from reputable.core.errors import ConfigError, InputError


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """One leaky-bucket rule: which tags fill it, how big it is and how fast it empties."""

    name: str
    tags: frozenset[str]
    capacity: float
    leakspeed: float  # seconds for one unit to leak out
    distinct: str = ""  # NetEvent attribute whose new values alone fill the bucket
    amount: str = ""  # NetEvent attribute poured instead of 1 (packets of a flow)
    weight: float = 1.0


def _s(name: str, tags: str, capacity: float, leakspeed: float, **more: Any) -> Scenario:
    return Scenario(
        name=name, tags=frozenset(tags.split()), capacity=capacity, leakspeed=leakspeed, **more
    )


#: The default scenarios, in the order they are checked.
DEFAULT_SCENARIOS: Final[tuple[Scenario, ...]] = (
    _s("ssh_bruteforce", "auth_failed invalid_user", 5, 10.0),
    _s("ssh_slow_bruteforce", "auth_failed invalid_user", 15, 1800.0),
    _s("ssh_user_enum", "auth_failed invalid_user", 5, 7200.0, distinct="user"),
    # clients that leave before authenticating (parsers/sshd.py SCANS): scanners, weak evidence
    _s("ssh_scan", "preauth_closed no_ident bad_banner negotiation_failed", 10, 600.0, weight=0.3),
    # Dovecot: one line per client with its failed attempts (auth failed, N attempts)
    _s("mail_login_bruteforce", "login_failed", 10, 60.0, amount="attempts"),
    _s("mail_login_slow_bruteforce", "login_failed", 20, 1800.0, amount="attempts"),
    _s("http_exploit_probe", "http_exploit", 4, 60.0),
    _s("http_4xx_storm", "http_4xx", 20, 10.0, distinct="path"),
    _s("http_auth_bruteforce", "http_auth_failed", 10, 30.0),
    _s("http_flood", "http_request", 600, 0.1),
    _s("port_scan", "packet flow", 15, 5.0, distinct="dport"),
    _s("host_scan", "packet flow", 30, 5.0, distinct="dst"),
    _s("syn_flood", "syn", 200, 0.05),
    _s("packet_flood", "packet flow", 100_000, 0.0001, amount="packets"),
    _s("sinkhole", "sinkhole", 0, 3600.0),
)

#: Request paths (prefixes, lower case) that only exploit scanners ask for.
DEFAULT_EXPLOIT_PATHS: Final[tuple[str, ...]] = (
    "/wp-login.php",
    "/xmlrpc.php",
    "/.env",
    "/.git/",
    "/cgi-bin/",
    "/phpmyadmin",
    "/pma/",
    "/myadmin",
    "/vendor/phpunit",
    "/boaform",
    "/hnap1",
    "/actuator",
    "/solr/admin",
    "/manager/html",
    "/owa/auth",
    "/shell",
    "/wp-content/plugins/",
    "/.aws/",
    "/config.json",
    "/server-status",
)

#: Paths whose POST is a login attempt even when the answer is 200 (WordPress answers 200).
DEFAULT_LOGIN_PATHS: Final[tuple[str, ...]] = ("/wp-login.php", "/xmlrpc.php", "/user/login")


@dataclass(frozen=True, slots=True, kw_only=True)
class NetSettings:
    """Everything the network detectors read from ``[detectors.net]``."""

    scenarios: tuple[Scenario, ...] = DEFAULT_SCENARIOS
    blackout: float = 3600.0
    samples: int = 3
    sinkholes: tuple[IPv4Network | IPv6Network, ...] = ()
    exploit_paths: tuple[str, ...] = DEFAULT_EXPLOIT_PATHS
    login_paths: tuple[str, ...] = DEFAULT_LOGIN_PATHS


def _seconds(value: object, where: str) -> float:
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        else:
            seconds = parse_duration(str(value)).total_seconds()
    except InputError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    if seconds <= 0:
        raise ConfigError(f"{where}: must be a positive duration such as 10s, 5m or 0.1")
    return seconds


def _strings(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of strings")
    return tuple(value)


def _scenario(base: Scenario, raw: object) -> Scenario:
    where = f"[detectors.net.{base.name}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a table with capacity, leakspeed, weight")
    unknown = set(raw) - {"capacity", "leakspeed", "weight"}
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {sorted(unknown)}; allowed: capacity, leakspeed, weight"
        )
    capacity = raw.get("capacity", base.capacity)
    weight = raw.get("weight", base.weight)
    if isinstance(capacity, bool) or not isinstance(capacity, int | float) or capacity < 0:
        raise ConfigError(f"{where}: capacity must be a number >= 0, got {capacity!r}")
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight <= 1000:
        raise ConfigError(f"{where}: weight must be a number in (0, 1000], got {weight!r}")
    leak = (
        _seconds(raw["leakspeed"], f"{where} leakspeed") if "leakspeed" in raw else base.leakspeed
    )
    return replace(base, capacity=float(capacity), leakspeed=leak, weight=float(weight))


def net_settings(extra: Mapping[str, Any]) -> NetSettings:
    """Return the settings in ``extra["detectors"]["net"]`` (config.extra), defaults for what is absent."""
    section = extra.get("detectors", {})
    raw = section.get("net", {}) if isinstance(section, Mapping) else None
    if not isinstance(raw, Mapping):
        raise ConfigError("[detectors.net] must be a table")
    names = {s.name for s in DEFAULT_SCENARIOS}
    general = {"blackout", "samples", "sinkholes", "exploit_paths", "login_paths"}
    unknown = set(raw) - names - general
    if unknown:
        raise ConfigError(
            f"[detectors.net]: unknown key(s) {sorted(unknown)}; scenarios: {sorted(names)};"
            f" settings: {sorted(general)}"
        )
    scenarios = tuple(_scenario(s, raw[s.name]) if s.name in raw else s for s in DEFAULT_SCENARIOS)
    sinkholes = []
    for text in _strings(raw.get("sinkholes", []), "[detectors.net] sinkholes"):
        try:
            sinkholes.append(ip_network(text, strict=False))
        except ValueError as exc:
            raise ConfigError(f"[detectors.net] sinkholes: bad address or CIDR {text!r}") from exc
    samples = raw.get("samples", 3)
    if isinstance(samples, bool) or not isinstance(samples, int) or not 0 <= samples <= 100:
        raise ConfigError(f"[detectors.net] samples must be an integer 0-100, got {samples!r}")
    return NetSettings(
        scenarios=scenarios,
        blackout=_seconds(raw.get("blackout", 3600), "[detectors.net] blackout"),
        samples=samples,
        sinkholes=tuple(sinkholes),
        exploit_paths=tuple(
            p.lower()
            for p in _strings(
                raw.get("exploit_paths", list(DEFAULT_EXPLOIT_PATHS)),
                "[detectors.net] exploit_paths",
            )
        ),
        login_paths=tuple(
            p.lower()
            for p in _strings(
                raw.get("login_paths", list(DEFAULT_LOGIN_PATHS)), "[detectors.net] login_paths"
            )
        ),
    )

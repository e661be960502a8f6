"""Checker settings: the ``[checker]`` table of reputable.toml and command-line overrides (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reputable.checker.catalogue import Zone, builtin_zones, load_zone_file, merge, parse_catalogue
from reputable.core.dnsclient import DEFAULT_CONCURRENCY, DEFAULT_RETRIES, DEFAULT_TIMEOUT
from reputable.core.errors import ConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """How the checker queries: nameserver, limits, and the zone catalogue to use."""

    nameserver: str = "system"
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    concurrency: int = DEFAULT_CONCURRENCY
    zones: tuple[Zone, ...] = ()
    dkim_selectors: tuple[str, ...] = ()


def _number(table: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{where}: {key} must be a positive number, got {value!r}")
    return float(value)


def _retries(table: Mapping[str, Any], where: str) -> int:
    value = table.get("retries", DEFAULT_RETRIES)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 5:
        raise ConfigError(f"{where}: retries must be a whole number 0-5, got {value!r}")
    return value


def parse_settings(table: Mapping[str, Any], base_dir: Path, where: str = "[checker]") -> Settings:
    """Return the settings in a ``[checker]`` table; zone files are relative to *base_dir*."""
    nameserver = table.get("nameserver", "system")
    if not isinstance(nameserver, str):
        raise ConfigError(f'{where}: nameserver must be a string like "127.0.0.1:53"')
    files = table.get("zone_files", [])
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ConfigError(f"{where}: zone_files must be a list of paths")
    zones: tuple[Zone, ...] = ()
    for name in files:
        zones = merge(zones, load_zone_file(base_dir / name))
    zones = merge(zones, parse_catalogue({"zone": table.get("zone", [])}, f"{where}.zone"))
    selectors = table.get("dkim_selectors", [])
    if not isinstance(selectors, list):
        raise ConfigError(f"{where}: dkim_selectors must be a list of names")
    return Settings(
        nameserver=nameserver,
        timeout=_number(table, "timeout", DEFAULT_TIMEOUT, where),
        retries=_retries(table, where),
        concurrency=int(_number(table, "concurrency", DEFAULT_CONCURRENCY, where)),
        zones=zones,
        dkim_selectors=tuple(str(s) for s in selectors),
    )


def catalogue(
    settings: Settings, zone_files: Sequence[Path] = (), *, builtin: bool = True
) -> tuple[Zone, ...]:
    """Return the shipped catalogue (unless not *builtin*) plus config zones plus *zone_files*."""
    zones = builtin_zones() if builtin else ()
    zones = merge(zones, settings.zones)
    for path in zone_files:
        zones = merge(zones, load_zone_file(path))
    return zones

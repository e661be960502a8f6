"""The ``[web]`` section of reputable.toml: the pages' options (docs/web.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from reputable.config import Config
from reputable.core.clock import parse_duration
from reputable.core.errors import ConfigError, InputError
from reputable.web.notify import mail_settings

_KEYS: Final = frozenset({"check_setup", "session_ttl", "login_per_minute"})


@dataclass(frozen=True, slots=True, kw_only=True)
class PageSettings:
    """Options of the public pages and the dashboard."""

    check_setup: bool = False  # the lookup page may run PTR/SPF/DKIM/DMARC checks
    session_ttl: float = 8 * 3600.0  # seconds an admin session lasts
    login_per_minute: int = 10  # login attempts per client address per minute


def page_settings(config: Config) -> PageSettings:
    """Return the ``[web]`` settings of *config* (and check ``[mail]``); raise ConfigError."""
    mail_settings(config)
    raw: Any = config.extra.get("web", {})
    if not isinstance(raw, dict):
        raise ConfigError("[web] must be a table")
    unknown = set(raw) - _KEYS
    if unknown:
        raise ConfigError(f"[web]: unknown key(s) {sorted(unknown)}; known: {sorted(_KEYS)}")
    try:
        ttl = parse_duration(str(raw.get("session_ttl", "8h"))).total_seconds()
        per_minute = int(raw.get("login_per_minute", 10))
    except (TypeError, ValueError, InputError) as exc:
        raise ConfigError(f"[web]: {exc}") from exc
    if ttl <= 0 or per_minute < 1:
        raise ConfigError("[web]: session_ttl must be positive and login_per_minute at least 1")
    return PageSettings(
        check_setup=bool(raw.get("check_setup", False)),
        session_ttl=ttl,
        login_per_minute=per_minute,
    )

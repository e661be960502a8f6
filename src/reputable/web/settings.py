"""The ``[http]`` section of reputable.toml (see docs/configuration.md)."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from reputable.config import Config
from reputable.core.clock import parse_duration
from reputable.core.errors import ConfigError, InputError

DEFAULT_LISTEN = "127.0.0.1:8080"
_KEYS = frozenset(
    {
        "listen",
        "max_body",
        "request_timeout",
        "cors_origins",
        "delist_per_client",
        "delist_per_subject",
        "delist_window",
        "bouncer_duration",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSettings:
    """Where the API listens and its limits."""

    listen: tuple[str, int] | None  # None: HTTP switched off
    max_body: int = 10 * 1024 * 1024  # bytes; larger request bodies get 413
    request_timeout: float = 30.0  # seconds a request may take before 503
    cors_origins: tuple[str, ...] = ()  # no CORS headers unless origins are named
    delist_per_client: int = 5  # removal requests per client address per window
    delist_per_subject: int = 3  # removal requests per subject per window
    delist_window: float = 3600.0  # seconds
    bouncer_duration: float = 365 * 86400.0  # told to bouncers for listings without an end


def _size(value: Any, key: str) -> int:
    """Return a byte size given as an int or as text like "10MB"."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        text = str(value).strip().upper().removesuffix("B")
        scale = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
        try:
            number = int(float(text.rstrip("KMG")) * scale)
        except ValueError:
            raise ConfigError(
                f'http.{key} = {value!r}: give bytes, e.g. 10485760 or "10MB"'
            ) from None
    if number < 1024:
        raise ConfigError(f"http.{key} = {value!r}: must be at least 1024 bytes")
    return number


def _listen(text: str) -> tuple[str, int] | None:
    if not text:
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host or not 0 <= int(port) <= 65535:
        raise ConfigError(f'http.listen = {text!r}: expected "HOST:PORT", e.g. "127.0.0.1:8080"')
    return host.strip("[]"), int(port)


def http_settings(config: Config) -> HttpSettings:
    """Return the ``[http]`` settings of *config* (defaults when the section is absent)."""
    raw = config.extra.get("http", {})
    if not isinstance(raw, dict):
        raise ConfigError("[http] must be a table")
    unknown = set(raw) - _KEYS
    if unknown:
        raise ConfigError(f"[http]: unknown key(s) {sorted(unknown)}; known: {sorted(_KEYS)}")
    try:
        origins = raw.get("cors_origins", [])
        if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
            raise ConfigError(
                'http.cors_origins: give a list of origins, e.g. ["https://a.example"]'
            )
        counts = {
            key: int(raw.get(key, default))
            for key, default in (("delist_per_client", 5), ("delist_per_subject", 3))
        }
        if min(counts.values()) < 1:
            raise ConfigError("http.delist_per_client and delist_per_subject must be at least 1")
        return HttpSettings(
            listen=_listen(str(raw.get("listen", DEFAULT_LISTEN))),
            max_body=_size(raw.get("max_body", 10 * 1024 * 1024), "max_body"),
            request_timeout=parse_duration(str(raw.get("request_timeout", "30s"))).total_seconds(),
            cors_origins=tuple(origins),
            delist_window=parse_duration(str(raw.get("delist_window", "1h"))).total_seconds(),
            bouncer_duration=parse_duration(
                str(raw.get("bouncer_duration", "365d"))
            ).total_seconds(),
            **counts,
        )
    except (TypeError, ValueError, InputError) as exc:
        raise ConfigError(f"[http]: {exc}") from exc


def check_bind(host: str, port: int) -> None:
    """Raise ConfigError naming http.listen when *host*:*port* cannot be bound.

    uvicorn exits the process on a bind error without a word that reaches our log.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"http.listen {host}:{port}: {exc.strerror}; pick a free address in [http]"
                ' listen, or listen = "" to switch HTTP off'
            ) from exc

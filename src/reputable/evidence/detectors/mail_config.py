"""Thresholds of the mail detectors and spam traps, read from ``[detectors.mail]`` and ``[traps]``.

Every default is documented in docs/evidence-mail.md; an invalid value stops with a message
naming the key and what it should be.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any, Final

from reputable.core.clock import parse_duration
from reputable.core.errors import ConfigError, InputError


@dataclass(frozen=True, slots=True)
class Harvest:
    """Directory harvest / dirty lists: share of unknown recipients per IP episode."""

    window: timedelta = timedelta(hours=1)
    min_attempts: int = 10  # recipient attempts in the window before any verdict
    share: float = 0.5  # unknown share that means harvesting
    unit: float = 10.0  # weight = unknown recipients / unit ...
    max_weight: float = 5.0  # ... capped here
    dirty_share: float = 0.1  # below the harvest share but at least this: a dirty list
    dirty_max_weight: float = 0.4  # dirty-list weight = share, capped; at most one per IP per day


@dataclass(frozen=True, slots=True)
class BruteForce:
    """SASL / authenticator failures from one IP."""

    window: timedelta = timedelta(hours=1)
    min_failures: int = 10
    fail_share: float = 0.5  # failures / (failures + successful logins) in the window
    weight: float = 1.25  # two full windows reach the default listing threshold (2.5)
    spread_users: int = 5  # distinct user names in one window: a spread attack ...
    spread_weight: float = 2.0  # ... weighs this much instead


@dataclass(frozen=True, slots=True)
class Burst:
    """A count of one kind of event per IP in a sliding window (pregreet, lost-after-AUTH, ...)."""

    window: timedelta = timedelta(hours=1)
    min: int = 1
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Spike:
    """Accepted messages in one hour far above the IP's own hourly baseline."""

    factor: float = 10.0
    min_messages: int = 200
    min_history_hours: int = 6
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Traps:
    """Spam-trap addresses and whole trap domains; one hit is strong evidence."""

    addresses: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()
    weight: float = 1.5

    def hit(self, recipient: str) -> bool:
        """True when *recipient* is a trap address or in a trap domain."""
        if not recipient:
            return False
        low = recipient.lower()
        return low in self.addresses or low.rpartition("@")[2] in self.domains


@dataclass(frozen=True, slots=True)
class MailParams:
    """Every threshold of the mail detectors."""

    harvest: Harvest = field(default_factory=Harvest)
    brute_force: BruteForce = field(default_factory=BruteForce)
    lost_auth: Burst = field(default_factory=lambda: Burst(timedelta(minutes=10), 20, 1.0))
    pregreet: Burst = field(default_factory=lambda: Burst(timedelta(hours=1), 1, 1.0))
    pipelining: Burst = field(default_factory=lambda: Burst(timedelta(hours=1), 3, 0.5))
    rbl_reject: Burst = field(default_factory=lambda: Burst(timedelta(hours=1), 3, 0.5))
    spike: Spike = field(default_factory=Spike)
    traps: Traps = field(default_factory=Traps)


_SECTIONS: Final = ("harvest", "brute_force", "lost_auth", "pregreet", "pipelining", "rbl_reject", "spike")  # fmt: skip


def _section(cls: type[Any], default: Any, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{where}] must be a table")
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(f"[{where}] unknown key {key!r}; known: {', '.join(known)}")
        current = getattr(default, key)
        try:
            if isinstance(current, timedelta):
                values[key] = parse_duration(str(value))
            elif isinstance(current, int) and not isinstance(current, bool):
                values[key] = int(value)
            else:
                values[key] = float(value)
        except (TypeError, ValueError, InputError) as exc:
            raise ConfigError(f"[{where}] {key} = {value!r}: {exc}") from exc
        if not isinstance(values[key], timedelta) and values[key] < 0:
            raise ConfigError(f"[{where}] {key} = {value!r}: must not be negative")
    return type(default)(**{name: values.get(name, getattr(default, name)) for name in known})


def mail_params(extra: dict[str, Any]) -> MailParams:
    """Return the mail-detector parameters from the config's extra sections (defaults if absent)."""
    base = MailParams()
    section = extra.get("detectors", {})
    mail = section.get("mail", {}) if isinstance(section, dict) else None
    if not isinstance(mail, dict):
        raise ConfigError("[detectors.mail] must be a table")
    unknown = set(mail) - set(_SECTIONS)
    if unknown:
        raise ConfigError(
            f"[detectors.mail] unknown section(s) {sorted(unknown)}; known: {', '.join(_SECTIONS)}"
        )
    parts = {
        name: _section(type(getattr(base, name)), getattr(base, name), mail.get(name, {}),
                       f"detectors.mail.{name}")
        for name in _SECTIONS
    }  # fmt: skip
    harvest = parts["harvest"]
    if not 0 < harvest.share <= 1 or not 0 <= harvest.dirty_share <= harvest.share:
        raise ConfigError("[detectors.mail.harvest] need 0 <= dirty_share <= share <= 1")
    return MailParams(**parts, traps=_traps(extra.get("traps", {})))


def _traps(raw: Any) -> Traps:
    if not isinstance(raw, dict):
        raise ConfigError("[traps] must be a table with addresses = [...] and domains = [...]")
    unknown = set(raw) - {"addresses", "domains", "weight"}
    if unknown:
        raise ConfigError(f"[traps] unknown key(s) {sorted(unknown)}; known: addresses, domains, weight")  # fmt: skip
    addresses = raw.get("addresses", [])
    domains = raw.get("domains", [])
    if not isinstance(addresses, list) or not isinstance(domains, list):
        raise ConfigError("[traps] addresses and domains must be lists of strings")
    bad = [a for a in addresses if not isinstance(a, str) or "@" not in a]
    if bad:
        raise ConfigError(f"[traps] addresses: {bad[0]!r} is not a mail address")
    try:
        weight = float(raw.get("weight", Traps().weight))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[traps] weight: {exc}") from exc
    return Traps(
        frozenset(a.strip().lower() for a in addresses),
        frozenset(str(d).strip().lower().rstrip(".") for d in domains),
        weight,
    )

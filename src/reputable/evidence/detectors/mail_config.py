"""Thresholds of the mail detectors and spam traps, read from ``[detectors.mail]`` and ``[traps]``.

Every default is documented in docs/evidence-mail.md; an invalid value stops with a message
naming the key and what it should be.
"""

from __future__ import annotations

from collections.abc import Iterable
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


def _zone_name(text: str) -> str:
    """Return a DNS zone name as compared: lower case, no trailing dot."""
    return text.strip().lower().rstrip(".")


def _in_zone(name: str, zone: str) -> bool:
    return name == zone or name.endswith("." + zone)


@dataclass(frozen=True, slots=True)
class RblZones:
    """Which DNSBL zones named in reject lines make evidence, and how much.

    Rejections by our own zones (every ``[zones.*]`` name, plus ``own_zones``) are never
    evidence: the listed client retrying would renew its own listing. Other lists' zones count
    only when the operator names them in ``zones`` with a weight; ``"*"`` stands for any other
    zone (and for reject lines that name none); ``"postscreen"`` for postscreen's
    ``DNSBL rank`` lines, which name no zone.
    """

    own: frozenset[str] = frozenset()
    weights: tuple[tuple[str, float], ...] = ()

    def is_own(self, zone: str) -> bool:
        """True when *zone* (as logged) is one of ours or below one of ours."""
        name = _zone_name(zone)
        return bool(name) and any(_in_zone(name, own) for own in self.own)

    def weight(self, zone: str) -> float | None:
        """Return the evidence weight of a rejection by *zone* ("" when unnamed), or None for none."""
        name = _zone_name(zone)
        if self.is_own(name):
            return None
        default = None
        for listed, weight in self.weights:
            if listed == "*":
                default = weight
            elif name and _in_zone(name, listed):
                return weight or None
        return default or None


@dataclass(frozen=True, slots=True)
class MailParams:
    """Every threshold of the mail detectors."""

    harvest: Harvest = field(default_factory=Harvest)
    brute_force: BruteForce = field(default_factory=BruteForce)
    lost_auth: Burst = field(default_factory=lambda: Burst(timedelta(minutes=10), 20, 1.0))
    pregreet: Burst = field(default_factory=lambda: Burst(timedelta(hours=1), 1, 1.0))
    pipelining: Burst = field(default_factory=lambda: Burst(timedelta(hours=1), 3, 0.5))
    rbl_reject: Burst = field(default_factory=lambda: Burst(timedelta(hours=1), 3, 0.5))
    protocol: Burst = field(default_factory=lambda: Burst(timedelta(hours=1), 3, 0.5))
    rdns: Burst = field(default_factory=lambda: Burst(timedelta(days=1), 1, 0.4))
    spike: Spike = field(default_factory=Spike)
    traps: Traps = field(default_factory=Traps)
    rbl_zones: RblZones = field(default_factory=RblZones)


_SECTIONS: Final = ("harvest", "brute_force", "lost_auth", "pregreet", "pipelining", "rbl_reject", "protocol", "rdns", "spike")  # fmt: skip


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


def mail_params(extra: dict[str, Any], own_zones: Iterable[str] = ()) -> MailParams:
    """Return the mail-detector parameters from the config's extra sections (defaults if absent).

    *own_zones* are the zone names this server publishes (the config's ``[zones.*]``): reject
    lines naming them are never evidence.
    """
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
    raw_rbl = mail.get("rbl_reject", {})
    if not isinstance(raw_rbl, dict):
        raise ConfigError("[detectors.mail.rbl_reject] must be a table")
    rbl_zones = _rbl_zones(raw_rbl, own_zones)
    sections = {
        **mail,
        "rbl_reject": {k: v for k, v in raw_rbl.items() if k not in ("zones", "own_zones")},
    }
    parts = {
        name: _section(type(getattr(base, name)), getattr(base, name), sections.get(name, {}),
                       f"detectors.mail.{name}")
        for name in _SECTIONS
    }  # fmt: skip
    harvest = parts["harvest"]
    if not 0 < harvest.share <= 1 or not 0 <= harvest.dirty_share <= harvest.share:
        raise ConfigError("[detectors.mail.harvest] need 0 <= dirty_share <= share <= 1")
    return MailParams(**parts, traps=_traps(extra.get("traps", {})), rbl_zones=rbl_zones)


def _rbl_zones(raw: dict[str, Any], own_zones: Iterable[str]) -> RblZones:
    """Return ``zones`` (opt-in weights) and ``own_zones`` of ``[detectors.mail.rbl_reject]``."""
    where = "[detectors.mail.rbl_reject]"
    zones = raw.get("zones", {})
    if not isinstance(zones, dict):
        raise ConfigError(
            f'{where} zones must be a table of zone = weight, e.g. zones = {{ "zen.spamhaus.org" = 0.5 }}'
        )
    weights = []
    for zone, value in zones.items():
        try:
            weight = float(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"{where} zones.{zone} = {value!r}: the weight must be a number"
            ) from exc
        if weight < 0:
            raise ConfigError(f"{where} zones.{zone} = {value!r}: must not be negative")
        weights.append((_zone_name(str(zone)) or "*", weight))
    own = raw.get("own_zones", [])
    if not isinstance(own, list) or not all(isinstance(z, str) and z.strip() for z in own):
        raise ConfigError(
            f'{where} own_zones must be a list of zone names, e.g. ["bl.example.net"]'
        )
    names = frozenset(_zone_name(z) for z in (*own_zones, *own) if _zone_name(z))
    clash = sorted(z for z, _ in weights if z in names)
    if clash:
        raise ConfigError(
            f"{where} zones: {clash[0]} is one of our own zones; its rejections are never evidence"
        )
    # the most specific name first, "*" last
    ordered = sorted(weights, key=lambda zw: (zw[0] == "*", -zw[0].count("."), zw[0]))
    return RblZones(names, tuple(ordered))


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

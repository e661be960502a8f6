"""The zone catalogue: public DNSBL, RHSBL and DNSWL zones (data/zones.toml) plus user zones."""

from __future__ import annotations

import enum
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, Final

from reputable.checker.model import Delisting, Removal
from reputable.core.cause import Cause, parse_cause
from reputable.core.clock import parse_duration
from reputable.core.errors import ConfigError, InputError

BUILTIN: Final = "zones.toml"


class SubjectKind(enum.StrEnum):
    """What a zone is queried with."""

    IP = "ip"
    DOMAIN = "domain"


@dataclass(frozen=True, slots=True)
class Code:
    """Meaning of one return code of a zone."""

    meaning: str
    cause: Cause
    removal: Removal | None = None  # this code's own removal method (e.g. a network listing)


@dataclass(frozen=True, slots=True, kw_only=True)
class Zone:
    """One DNS list: how to query it, what its answers mean, where to ask for removal."""

    name: str
    kind: SubjectKind
    allow: bool = False
    ipv6: bool = False
    operator: str = ""
    removal_url: str = ""
    cause: Cause = Cause.SPAM
    codes: tuple[tuple[str, Code], ...] = ()
    bitmask: bool = False
    refused: frozenset[str] = frozenset()
    closed: str = ""
    nameserver: str = ""
    note: str = ""
    delisting: Delisting = field(default_factory=Delisting)

    def delisting_of(self, codes: Sequence[Code]) -> Delisting:
        """Return how this list removes an entry answered with *codes* (a code may override)."""
        own = [c.removal for c in codes if c.removal is not None]
        if not own or own[0] is self.delisting.method:
            return self.delisting
        return Delisting(
            method=own[0], expires=self.delisting.expires, paid_express=self.delisting.paid_express
        )

    def code(self, answer: str) -> Code | None:
        """Return the documented meaning of return code *answer*, or None if undocumented."""
        for text, code in self.codes:
            if text == answer:
                return code
        return None

    def bits(self, answer: IPv4Address) -> list[Code]:
        """Return the meanings of every bit set in the last octet of *answer* (bitmask zones)."""
        last = int(answer) & 0xFF
        found = []
        for text, code in self.codes:
            value = int(text) if text.isdigit() else int(IPv4Address(text)) & 0xFF
            if value and last & value == value:
                found.append(code)
        return found


def _field(entry: Mapping[str, Any], key: str, kind: type, where: str, default: Any) -> Any:
    value = entry.get(key, default)
    if not isinstance(value, kind):
        raise ConfigError(f"{where}: {key} must be a {kind.__name__}, got {value!r}")
    return value


def _codes(raw: Any, default: Cause, where: str) -> tuple[tuple[str, Code], ...]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: codes must be a table of return code = meaning")
    out: list[tuple[str, Code]] = []
    for text, value in raw.items():
        if isinstance(value, str):
            out.append((text, Code(value, default)))
            continue
        if not isinstance(value, Mapping) or not isinstance(value.get("meaning"), str):
            raise ConfigError(
                f"{where}: code {text!r} must be a string or {{ meaning = ..., cause = ... }}"
            )
        try:
            cause = parse_cause(str(value.get("cause", default)))
        except ValueError as exc:
            raise ConfigError(f"{where}: code {text!r}: {exc}") from exc
        removal = _removal(value, f"{where}: code {text!r}") if "removal" in value else None
        out.append((text, Code(value["meaning"], cause, removal)))
    return tuple(out)


def _removal(entry: Mapping[str, Any], where: str) -> Removal:
    text = entry.get("removal", Removal.UNKNOWN.value)
    try:
        return Removal(text)
    except ValueError:
        choices = ", ".join(m.value for m in Removal)
        raise ConfigError(f"{where}: removal must be one of {choices}, got {text!r}") from None


def _delisting(entry: Mapping[str, Any], where: str) -> Delisting:
    expires = None
    if "expires" in entry:
        text = _field(entry, "expires", str, where, "")
        try:
            expires = parse_duration(text)
        except (InputError, ValueError) as exc:
            raise ConfigError(f'{where}: expires: {exc} (write e.g. "24h" or "7d")') from exc
    method = _removal(entry, where)
    if expires is not None and method is Removal.UNKNOWN:
        method = Removal.EXPIRY
    return Delisting(
        method=method,
        expires=expires,
        paid_express=_field(entry, "paid_express", bool, where, False),
    )


def parse_zone(entry: Mapping[str, Any], where: str) -> Zone:
    """Return one ``[[zone]]`` table as a Zone, or raise ConfigError naming the bad key."""
    name = _field(entry, "name", str, where, None).strip().rstrip(".").lower()
    where = f"{where} ({name})"
    try:
        kind = SubjectKind(_field(entry, "kind", str, where, "ip"))
    except ValueError as exc:
        raise ConfigError(f"{where}: kind must be 'ip' or 'domain'") from exc
    policy = _field(entry, "policy", str, where, "block")
    if policy not in ("block", "allow"):
        raise ConfigError(f"{where}: policy must be 'block' or 'allow', got {policy!r}")
    try:
        cause = parse_cause(_field(entry, "cause", str, where, "spam"))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    refused = _field(entry, "refused", list, where, [])
    return Zone(
        name=name,
        kind=kind,
        allow=policy == "allow",
        ipv6=_field(entry, "ipv6", bool, where, False),
        operator=_field(entry, "operator", str, where, ""),
        removal_url=_field(entry, "removal_url", str, where, ""),
        cause=Cause.CLEAN if policy == "allow" else cause,
        codes=_codes(entry.get("codes", {}), Cause.CLEAN if policy == "allow" else cause, where),
        bitmask=_field(entry, "bitmask", bool, where, False),
        refused=frozenset(str(r) for r in refused),
        closed=_field(entry, "closed", str, where, ""),
        nameserver=_field(entry, "nameserver", str, where, ""),
        note=_field(entry, "note", str, where, ""),
        delisting=_delisting(entry, where),
    )


def parse_catalogue(data: Mapping[str, Any], where: str) -> tuple[Zone, ...]:
    """Return the zones of a parsed TOML document with a ``zone`` array of tables."""
    entries = data.get("zone", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: 'zone' must be an array of tables ([[zone]])")
    zones = []
    for index, entry in enumerate(entries, 1):
        if not isinstance(entry, Mapping) or "name" not in entry:
            raise ConfigError(f'{where}: zone #{index} needs at least name = "..."')
        zones.append(parse_zone(entry, f"{where}: zone #{index}"))
    return tuple(zones)


def builtin_zones() -> tuple[Zone, ...]:
    """Return the catalogue shipped with reputable."""
    text = resources.files("reputable.checker").joinpath("data", BUILTIN).read_text("utf-8")
    return parse_catalogue(tomllib.loads(text), f"reputable/checker/data/{BUILTIN}")


def load_zone_file(path: Path) -> tuple[Zone, ...]:
    """Return the zones of a user TOML file in catalogue format."""
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read zone file: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_catalogue(data, str(path))


def merge(base: Iterable[Zone], extra: Iterable[Zone]) -> tuple[Zone, ...]:
    """Return *base* plus *extra*; an extra zone replaces a base zone of the same name."""
    by_name = {zone.name: zone for zone in base}
    by_name.update((zone.name, zone) for zone in extra)
    return tuple(by_name.values())


def select(
    zones: Sequence[Zone],
    *,
    kind: SubjectKind | None = None,
    names: Sequence[str] = (),
    include_closed: bool = False,
) -> tuple[Zone, ...]:
    """Return the zones to query: of *kind*, restricted to *names* if given, closed ones skipped."""
    wanted = {n.strip().rstrip(".").lower() for n in names}
    unknown = wanted - {z.name for z in zones}
    if unknown:
        raise ConfigError(
            f"unknown zone(s) {', '.join(sorted(unknown))}: add them to a zone file"
            " (see docs/checker.md) or pick names from `reputable check --list-zones`"
        )
    return tuple(
        z
        for z in zones
        if (kind is None or z.kind is kind)
        and (not wanted or z.name in wanted)
        and (include_closed or not z.closed or z.name in wanted)
    )

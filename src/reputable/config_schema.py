"""The schema of reputable.toml: every section and key the code reads, with types and ranges.

Pydantic v2, not msgspec: FastAPI already brings pydantic (no new dependency), and its errors
carry the key path, the input and a machine-readable type, which :mod:`reputable.config`
turns into plain-text messages with a "did you mean" hint. The schema only *checks*; the
stages build their own settings types from the checked tables (each stage owns its type:
publication/settings.py, listings/policy.py, evidence/sources/settings.py, ...), and
:func:`reputable.config.stage_problems` runs those builders too, so a value the schema cannot
express (a cause name, a CIDR inside a list) is still reported before ``serve`` binds.

Models are strict: ``fast_path = "yes"`` is not a boolean and ``escalate_v4 = "eight"`` not a
number. Durations are ``"90s"``-style text (or whole seconds), parsed by core/clock.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from ipaddress import ip_address, ip_network
from typing import Annotated, Any, Final, Literal, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic_core import PydanticUndefined

from reputable.core.clock import parse_duration
from reputable.core.errors import InputError
from reputable.evidence.detectors.mail_config import _SECTIONS, MailParams, Traps
from reputable.evidence.detectors.netconfig import (
    DEFAULT_EXPLOIT_PATHS,
    DEFAULT_LOGIN_PATHS,
    DEFAULT_SCENARIOS,
)

TTL_MAX = 2**31 - 1  # RFC 2181 §8: a TTL is an unsigned 31-bit number


def _duration(value: Any) -> Any:
    """Accept a duration like "7d" or whole seconds; the value is kept as written."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError('must be a duration like "30s", "15m", "12h", "7d" or whole seconds')
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must not be negative")
        return value
    try:
        parse_duration(value)
    except InputError as exc:
        raise ValueError(str(exc)) from None
    return value


def _ttl(value: Any) -> Any:
    """Accept a TTL from 0 to 2^31-1 seconds, as a number or as "15m"-style text."""
    if isinstance(value, str):
        _duration(value)
    elif isinstance(value, bool) or not isinstance(value, int):
        raise ValueError('must be whole seconds or a duration, e.g. 900 or "15m"')
    seconds = value if isinstance(value, int) else parse_duration(value).total_seconds()
    if not 0 <= seconds <= TTL_MAX:
        raise ValueError(f'must be from 0 to {TTL_MAX} seconds (RFC 2181 §8), e.g. 900 or "15m"')
    return value


def _positive_duration(value: Any) -> Any:
    _duration(value)
    seconds = value if isinstance(value, int) else parse_duration(value).total_seconds()
    if seconds <= 0:
        raise ValueError('must be longer than 0, e.g. "10s"')
    return value


def _hostport(value: str, lowest: int = 1) -> str:
    """Accept HOST:PORT ([IPv6]:PORT) with a port from *lowest* to 65535."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError("use HOST:PORT, e.g. 127.0.0.1:5300 or [::1]:5300")
    if not lowest <= int(port) <= 65535:
        raise ValueError(f"port {port} is out of range: use {lowest}-65535")
    if host.startswith("[") != host.endswith("]"):
        raise ValueError("write an IPv6 address in brackets: [::1]:5300")
    return value


def _listen_or_off(value: str) -> str:
    return value if value == "" else _hostport(value, 0)  # 0: a free port (tests)


def _any_port(value: str) -> str:
    return _hostport(value, 0)


def _cidr(value: str) -> str:
    try:
        ip_network(value, strict=False)
    except ValueError as exc:
        raise ValueError(f"not a network: {exc}; use a CIDR like 192.0.2.0/24") from None
    return value


def _ip_or_endpoint(value: str) -> str:
    """Accept IP, IP:PORT or [IPv6]:PORT (a numeric address; names are refused)."""
    text = value.strip()
    host, port = text, "53"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or port
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        ip_address(host)
    except ValueError:
        raise ValueError("use a numeric IP or IP:PORT, e.g. 127.0.0.1:53") from None
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"port {port!r} is out of range: use 1-65535")
    return value


def _or_word(word: str) -> Any:
    """Return a check accepting a duration or the word *word* ("never", "forever")."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() == word:
            return value
        try:
            return _duration(value)
        except ValueError as exc:
            raise ValueError(f'{exc}, or "{word}"') from None

    return check


def _size(value: Any) -> Any:
    """Accept a byte count (int) or text like "10MB"; web/settings.py checks the minimum."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError('give bytes, e.g. 10485760 or "10MB"')
    return value


def _secret(value: str) -> str:
    if len(value) < 16:
        raise ValueError(
            "too short: use a random string of at least 16 characters (e.g. `openssl rand -hex 32`)"
        )
    return value


def _name(value: str) -> str:
    if not value.strip(". "):
        raise ValueError("must not be empty")
    return value


Duration = Annotated[Any, AfterValidator(_duration)]
PositiveDuration = Annotated[Any, AfterValidator(_positive_duration)]
Ttl = Annotated[Any, AfterValidator(_ttl)]
HostPort = Annotated[str, AfterValidator(_hostport)]
Cidr = Annotated[str, AfterValidator(_cidr)]
Port = Annotated[int, Field(ge=1, le=65535)]
Count = Annotated[int, Field(ge=0)]
Share = Annotated[float, Field(ge=0, le=1)]
NonNegative = Annotated[float, Field(ge=0)]


class Section(BaseModel):
    """A TOML table: unknown keys are errors, types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


class Store(Section):
    dsn: str = "sqlite:///reputable.db"


class Listings(Section):
    max_prefix_v4: Annotated[int, Field(ge=0, le=32)] = 16
    max_prefix_v6: Annotated[int, Field(ge=0, le=128)] = 32


class AccessRule(Section):
    network: Cidr
    action: Literal["answer", "refuse", "ignore"] = "answer"
    rrl: Count | None = None


class Dns(Section):
    listen: Annotated[list[HostPort], Field(min_length=1)] = ["127.0.0.1:5300"]
    workers: Annotated[int, Field(ge=1, le=256)] = 1
    reload_interval: PositiveDuration = "1s"
    snapshot: str = "reputable.snapshot"
    nameservers: Annotated[list[Annotated[str, AfterValidator(_name)]], Field(min_length=1)] = [
        "ns1.reputable.test"
    ]
    hostmaster: Annotated[str, AfterValidator(_name)] = "hostmaster.reputable.test"
    negative_ttl: Ttl = 300
    fast_path: bool = True
    max_udp_answer: Annotated[int, Field(ge=512, le=4096)] = 1232
    max_amplification: Annotated[int, Field(ge=0, le=100)] = 3
    tcp_idle_timeout: PositiveDuration = "10s"
    tcp_write_timeout: PositiveDuration = "5s"
    tcp_max_clients: Annotated[int, Field(ge=1, le=100_000)] = 256
    tcp_max_per_client: Annotated[int, Field(ge=1, le=100_000)] = 16
    access: list[AccessRule] = Field(
        default_factory=lambda: [
            AccessRule(network="0.0.0.0/0", action="answer"),
            AccessRule(network="::/0", action="answer"),
        ]
    )


class Rrl(Section):
    responses_per_second: Annotated[int, Field(ge=0, le=1_000_000)] = 20
    slip: Annotated[int, Field(ge=0, le=10)] = 2
    exempt: list[Cidr] = ["127.0.0.0/8", "::1/128"]


class Http(Section):
    listen: Annotated[str, AfterValidator(_listen_or_off)] = "127.0.0.1:8080"
    max_body: Annotated[Any, AfterValidator(_size)] = "10MB"
    request_timeout: PositiveDuration = "30s"
    cors_origins: list[str] = []
    delist_per_client: Count = 5
    delist_per_subject: Count = 3
    delist_window: PositiveDuration = "1h"
    bouncer_duration: PositiveDuration = "365d"


class Web(Section):
    check_setup: bool = False
    session_ttl: PositiveDuration = "8h"
    login_per_minute: Count = 10


Mail: type[Section] = create_model(  # type: ignore[call-overload]  # "from" is a keyword: built from a table
    "Mail",
    __base__=Section,
    relay=(str, ""),
    starttls=(bool, False),
    username=(str, ""),
    password=(str, ""),
    timeout=(NonNegative, 10.0),
    site=(str, ""),
    **{"from": (str, "reputable@localhost")},
)


class Zone(Section):
    name: Annotated[str, AfterValidator(_name)]
    ttl: Ttl = 900
    lookup_url: str = ""
    codes: dict[str, str] = {}


class IpZone(Zone):
    name: Annotated[str, AfterValidator(_name)] = "bl.reputable.test"


class DomainZone(Zone):
    name: Annotated[str, AfterValidator(_name)] = "dbl.reputable.test"


class AllowZone(Zone):
    name: Annotated[str, AfterValidator(_name)] = "wl.reputable.test"


class Zones(Section):
    ip: IpZone = Field(default_factory=IpZone)
    domain: DomainZone = Field(default_factory=DomainZone)
    allow: AllowZone = Field(default_factory=AllowZone)


class CauseSettings(Section):
    list: NonNegative | None = None
    delist: NonNegative | None = None
    min_listing: Duration | None = None
    half_life: PositiveDuration | None = None
    max_quiet: Annotated[Any, AfterValidator(_or_word("never"))] = None


class Policy(Section):
    interval: PositiveDuration = "5s"
    recidivism_window: Duration = "90d"
    max_listing: Duration = "180d"
    escalate_v4: Annotated[int, Field(ge=1)] = 8
    escalate_v6: Annotated[int, Field(ge=1)] = 8
    hosting_domains: Annotated[int, Field(ge=1)] = 2
    escalate_prefix: Count = 0
    quiet_period: Duration = "7d"
    self_removals: Count = 3
    self_removal_window: Duration = "30d"
    domain_senders: Annotated[int, Field(ge=1)] = 3
    contact: str = ""
    reprobe_every: PositiveDuration = "1d"
    pfx2as: str | None = None
    causes: dict[str, CauseSettings] = {}


class PolicyService(Section):
    enabled: bool = True
    listen: Annotated[str, AfterValidator(_any_port)] = "127.0.0.1:10040"
    actions: dict[str, str] = {}
    soft: bool = False
    header: str = "X-Reputable"
    timeout: NonNegative = 300.0


class Transfer(Section):
    keys: dict[str, str] = {}
    allow: list[str] = []
    notify: list[HostPort] = []
    history: Annotated[int, Field(ge=1, le=1000)] = 8


class Resolver(Section):
    nameserver: Annotated[str, AfterValidator(_ip_or_endpoint)] = "127.0.0.1:53"
    timeout: PositiveDuration = "3s"


class Feeds(Section):
    interval: PositiveDuration = "60s"
    timeout: PositiveDuration = "60s"
    max_bytes: Annotated[int, Field(ge=1)] = 200_000_000
    max_invalid: Share = 0.1
    max_shrink: Share = 0.5
    max_resolve: Count = 5000
    floor_v4: Annotated[int, Field(ge=0, le=32)] = 8
    floor_v6: Annotated[int, Field(ge=0, le=128)] = 16
    api_keys: dict[str, str] = {}


class Probes(Section):
    allow: list[str] = []
    allow_seen: bool = True
    helo: str = "probe.reputable.test"
    relay_from: str = "relay-test@example.com"
    relay_to: str = "relay-test@example.org"
    proxy_canary: str = ""
    timeout: PositiveDuration = "10s"
    per_target: PositiveDuration = "10m"
    per_minute: Count = 30
    auto_rdns: bool = False
    auto_rdns_sources: list[str] = ["maillog"]
    auto_rdns_every: PositiveDuration = "7d"


class Maillog(Section):
    paths: list[str] = []
    format: str = "auto"
    timezone: str = "UTC"
    poll: Annotated[float, Field(gt=0)] = 1.0
    source: str = "maillog"


class Journal(Section):
    units: list[str] = []
    files: list[str] = []
    directory: str | None = None
    source: str = "journal"
    journalctl: str = "journalctl"


class Netlog(Section):
    path: str
    format: str
    timezone: str = "UTC"


class Sources(Section):
    maillog: Maillog | None = None
    journal: Journal | None = None
    netlog: list[Netlog] = []


def _seconds_of(value: Any) -> Any:
    return f"{int(value.total_seconds())}s" if isinstance(value, timedelta) else value


def _mail_section(name: str, default: Any) -> type[Section]:
    """Build the model of ``[detectors.mail.NAME]`` from the stage's own dataclass."""
    fields: dict[str, Any] = {}
    for key in type(default).__dataclass_fields__:
        value = getattr(default, key)
        kind: Any = (
            Duration
            if isinstance(value, timedelta)
            else (Count if isinstance(value, int) else NonNegative)
        )
        fields[key] = (kind, _seconds_of(value))
    if name == "rbl_reject":
        fields["zones"] = (dict[str, NonNegative], {})
        fields["own_zones"] = (list[Annotated[str, AfterValidator(_name)]], [])
    model: type[Section] = create_model(f"Mail_{name}", __base__=Section, **fields)
    return model


_MAIL_DEFAULTS = MailParams()
DetectorsMail: type[Section] = create_model(
    "DetectorsMail",
    __base__=Section,
    **{  # type: ignore[call-overload]  # built from the stage's table of sections
        name: (model, Field(default_factory=model))
        for name in _SECTIONS
        for model in [_mail_section(name, getattr(_MAIL_DEFAULTS, name))]
    },
)


def _scenario_model(scenario: Any) -> type[Section]:
    """Build the model of ``[detectors.net.NAME]`` with that scenario's own defaults."""
    model: type[Section] = create_model(
        f"Scenario_{scenario.name}",
        __base__=Section,
        capacity=(NonNegative, float(scenario.capacity)),
        leakspeed=(PositiveDuration, f"{scenario.leakspeed:g}s"),
        weight=(Annotated[float, Field(gt=0, le=1000)], float(scenario.weight)),
    )
    return model


DetectorsNet: type[Section] = create_model(
    "DetectorsNet",
    __base__=Section,
    blackout=(Duration, 3600),
    samples=(Count, 3),
    sinkholes=(list[Cidr], []),
    exploit_paths=(list[str], list(DEFAULT_EXPLOIT_PATHS)),
    login_paths=(list[str], list(DEFAULT_LOGIN_PATHS)),
    **{
        s.name: (m, Field(default_factory=m))
        for s in DEFAULT_SCENARIOS
        for m in [_scenario_model(s)]
    },  # type: ignore[call-overload]  # one key per scenario
)


class Detectors(Section):
    mail: DetectorsMail = Field(default_factory=DetectorsMail)  # type: ignore[valid-type]  # built above
    net: DetectorsNet = Field(default_factory=DetectorsNet)  # type: ignore[valid-type]  # built above


class TrapsTable(Section):
    addresses: list[str] = []
    domains: list[str] = []
    weight: NonNegative = Traps().weight


class Checker(Section):
    nameserver: str = "system"
    zone_files: list[str] = []
    zone: list[dict[str, Any]] = []  # checked by checker/catalogue.py (stage_problems)
    dkim_selectors: list[str] = []
    timeout: NonNegative | None = None
    retries: Count | None = None
    concurrency: Annotated[int, Field(ge=1)] | None = None


class Sink(Section):
    kind: Literal["nftables", "ipset", "rpz"]
    path: str
    command: list[str] = []
    causes: list[str] | None = None
    name: str = "reputable"
    hooks: list[str] = ["input"]
    origin: str = "rpz.reputable.test"


class Webhook(Section):
    url: str
    secret: Annotated[str, AfterValidator(_secret)]
    name: str | None = None
    events: list[str] | None = None
    causes: list[str] | None = None
    networks: list[Cidr] | None = None
    timeout: Annotated[float, Field(gt=0)] = 10.0
    give_up: PositiveDuration = "3d"


class Retention(Section):
    evidence: Annotated[Any, AfterValidator(_or_word("forever"))] = None  # default: 400d


class Log(Section):
    format: Literal["text", "json"] = "text"


class Schema(Section):
    """The whole file."""

    data_dir: str = "."
    user: str | None = None
    store: Store = Field(default_factory=Store)
    listings: Listings = Field(default_factory=Listings)
    dns: Dns = Field(default_factory=Dns)
    rrl: Rrl = Field(default_factory=Rrl)
    http: Http = Field(default_factory=Http)
    web: Web = Field(default_factory=Web)
    mail: Mail = Field(default_factory=Mail)  # type: ignore[valid-type]  # built above
    zones: Zones = Field(default_factory=Zones)
    policy: Policy = Field(default_factory=Policy)
    policy_service: PolicyService | None = None
    transfer: Transfer | None = None
    resolver: Resolver = Field(default_factory=Resolver)
    feeds: Feeds = Field(default_factory=Feeds)
    probes: Probes = Field(default_factory=Probes)
    sources: Sources = Field(default_factory=Sources)
    detectors: Detectors = Field(default_factory=Detectors)
    traps: TrapsTable = Field(default_factory=TrapsTable)
    checker: Checker = Field(default_factory=Checker)
    sinks: list[Sink] = []
    webhooks: list[Webhook] = []
    retention: Retention = Field(default_factory=Retention)
    log: Log = Field(default_factory=Log)


# -- errors -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in the file: the key path ("dns.workers"), the value and what to do."""

    path: str
    value: Any
    message: str

    def text(self) -> str:
        """Return the problem as one plain line, e.g. ``[dns] workrs = 2: unknown key; ...``."""
        where = display_path(self.path)
        if self.message.startswith("unknown table"):
            where = f"[{self.path}]"
        if self.value is _NO_VALUE:
            return f"{where}: {self.message}"
        return f"{where} = {_toml_value(self.value)}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        """Return the problem as JSON-ready data: path, value (None when absent) and message."""
        value = None if self.value is _NO_VALUE else _jsonable(self.value)
        return {"path": self.path, "value": value, "message": self.message}


class _NoValue:
    def __repr__(self) -> str:
        return "<no value>"


_NO_VALUE: Final = _NoValue()
NO_VALUE: Final[Any] = _NO_VALUE


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        inner = ", ".join(f"{_key(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    return json.dumps(str(value))


_BARE_KEY: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def _key(name: str) -> str:
    return name if name and set(name) <= _BARE_KEY else json.dumps(name)


def display_path(path: str) -> str:
    """Return *path* as it reads in the file: ``[detectors.mail.harvest] share``, ``user``."""
    parts = _split(path)
    table: list[str] = []
    array = ""  # "[[sinks]] #2" inside the second [[sinks]] table
    model: Any = Schema
    i = 0
    while i < len(parts) - 1 and isinstance(parts[i], str):
        info = model.model_fields.get(parts[i]) if _is_model(model) else None
        if info is None:
            break
        inner, is_dict = _inner_model(info.annotation)
        if inner is None:
            break
        following = parts[i + 1]
        if isinstance(following, int):  # an entry of an array of tables
            if i + 2 >= len(parts):
                break
            name = ".".join([*table, _key(str(parts[i]))])
            array, table = f"[[{name}]] #{following + 1}", []
            i += 2
        elif is_dict:  # a table of tables: [policy.causes.spam]
            if i + 2 >= len(parts):
                break
            table += [_key(str(parts[i])), _key(str(following))]
            i += 2
        else:
            table.append(_key(str(parts[i])))
            i += 1
        model = inner
    rest = ""
    for part in parts[i:]:
        rest += f"[{part}]" if isinstance(part, int) else (f".{_key(part)}" if rest else _key(part))
    head = array + (
        ("." if array else "[") + ".".join(table) + ("" if array else "]") if table else ""
    )
    return f"{head} {rest}".strip() if head else rest or "(top level)"


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _split(path: str) -> list[str | int]:
    out: list[str | int] = []
    for piece in path.split("."):
        name, _, index = piece.partition("[")
        if name:
            out.append(name)
        while index:
            number, _, index = index.partition("]")
            out.append(int(number))
            index = index.removeprefix("[")
    return out


def _join(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


_KIND: Final = {
    "int_type": "must be a whole number (no quotes)",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number (no quotes)",
    "bool_type": "must be true or false (no quotes)",
    "string_type": "must be text in double quotes",
    "list_type": "must be a list in brackets",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
}


def _target(loc: Sequence[str | int]) -> tuple[type[BaseModel] | None, Any]:
    """Return the model holding the last key of *loc* and that key's field (or None)."""
    model: Any = Schema
    skip = False
    for depth, part in enumerate(loc):
        if isinstance(part, int) or skip:
            skip = False
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None, None
        info = model.model_fields.get(part)
        if depth == len(loc) - 1 or info is None:
            return model, info
        model, skip = _inner_model(info.annotation)
    return None, None


def _inner_model(annotation: Any) -> tuple[Any, bool]:
    """Return the model *annotation* holds (through lists, dicts, optionals); True for a dict."""
    for arg in (annotation, *get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg, False
        origin = get_origin(arg)
        if origin in (list, dict):
            inner = get_args(arg)[-1]
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner, origin is dict
    return None, False


def problems_of(error: ValidationError) -> list[Problem]:
    """Return one plain :class:`Problem` per pydantic error, with the fix and a hint."""
    problems = []
    for item in error.errors(include_url=False):
        loc = [p for p in item["loc"] if isinstance(p, str | int)]
        kind = item["type"]
        value = item.get("input", NO_VALUE)
        model, info = _target(loc)
        default = None if info is None or info.is_required() else info.default
        if default is PydanticUndefined:  # a table's default_factory: no one-line example
            default = None
        if kind == "extra_forbidden":
            known = sorted(model.model_fields) if model is not None else []
            message = "unknown key"
            if isinstance(value, Mapping):  # a whole [table]: its keys are not worth printing
                message, value = "unknown table", NO_VALUE
            close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
            if close:
                message += f'; did you mean "{close[0]}"?'
            if known:
                message += f" (known here: {', '.join(known)})"
        elif kind == "missing":
            value = NO_VALUE
            message = "is required; add it"
        elif kind in _KIND:
            message = _KIND[kind]
            if default not in (None, [], {}) and not isinstance(default, BaseModel):
                message += f", e.g. {loc[-1]} = {_toml_value(default)}"
        elif kind == "value_error":
            message = str(item["msg"]).removeprefix("Value error, ")
        elif kind == "literal_error":
            expected = str(item.get("ctx", {}).get("expected", "")).replace("'", "")
            message = f"use one of {expected}"
        elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
            ctx = item.get("ctx", {})
            bound = {"greater_than_equal": ">= {ge}", "less_than_equal": "<= {le}",
                     "greater_than": "> {gt}", "less_than": "< {lt}"}[kind].format(**ctx)  # fmt: skip
            message = f"out of range: must be {bound}"
            if default is not None and not isinstance(default, BaseModel):
                message += f" (default {_toml_value(default)})"
        elif kind in ("too_short", "string_too_short"):
            message = str(item["msg"]).replace("String", "text").replace("List", "list")
            message = message.replace("should", "must")
        else:
            message = str(item["msg"])
        problems.append(Problem(_join(loc), value, message))
    return problems


# -- the effective configuration --------------------------------------------------------------

REDACTED: Final = "<redacted>"

#: Keys whose values are secrets: `config show` prints them as REDACTED.
SECRETS: Final = (("transfer", "keys", "*"), ("mail", "password"), ("webhooks", "*", "secret"),
                  ("feeds", "api_keys", "*"))  # fmt: skip


def effective_table(schema: Schema) -> dict[str, Any]:
    """Return the checked file with every default filled in, secrets redacted, nulls dropped."""
    table = _drop_none(schema.model_dump(mode="python"))
    for secret in SECRETS:
        _redact(table, secret)
    return table  # type: ignore[no-any-return]  # a dict: model_dump of a model


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _redact(node: Any, path: tuple[str, ...]) -> None:
    head, rest = path[0], path[1:]
    children: list[tuple[Any, Any]] = []
    if isinstance(node, dict):
        children = [(k, node[k]) for k in (node if head == "*" else [head]) if k in node]
    elif isinstance(node, list) and head == "*":
        children = list(enumerate(node))
    for key, child in children:
        if rest:
            _redact(child, rest)
        elif child not in ("", None):
            node[key] = REDACTED


def to_toml(table: Mapping[str, Any]) -> str:
    """Return *table* as TOML text (scalars first, then tables, then arrays of tables)."""
    lines: list[str] = []
    _emit(lines, [], table)
    return "\n".join(lines).lstrip("\n") + "\n"


def _is_table(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value)


def _is_array_of_tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _emit(lines: list[str], path: list[str], table: Mapping[str, Any]) -> None:
    for key, value in table.items():
        if not _is_table(value) and not _is_array_of_tables(value):
            lines.append(f"{_key(str(key))} = {_toml_value(value)}")
    for key, value in table.items():
        name = [*path, _key(str(key))]
        if _is_table(value):
            lines += ["", f"[{'.'.join(name)}]"]
            _emit(lines, name, value)
        elif _is_array_of_tables(value):
            for item in value:
                lines += ["", f"[[{'.'.join(name)}]]"]
                _emit(lines, name, item)


# -- the reference in docs/configuration.md ---------------------------------------------------

_CHECKS: Final = {
    "_duration": "duration",
    "_positive_duration": "duration > 0",
    "_ttl": "TTL: 0 to 2147483647 s",
    "_hostport": "HOST:PORT",
    "_any_port": "HOST:PORT (port 0: any)",
    "_listen_or_off": 'HOST:PORT or ""',
    "_cidr": "CIDR",
    "_ip_or_endpoint": "IP[:PORT]",
    "_name": "name",
    "_secret": "text, 16+ characters",
    "_size": 'bytes or "10MB"',
    "check": "duration or word",
}
_PLAIN: Final = {bool: "boolean", int: "integer", float: "number", str: "text"}


def _describe(annotation: Any, metadata: Sequence[Any] = ()) -> str:
    """Return a short human type of a field: ``integer >= 1``, ``list of CIDR``, ``duration``."""
    bounds = []
    for item in metadata:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if getattr(item, attr, None) is not None:
                bounds.append(f"{sign} {getattr(item, attr)}")
        func = getattr(item, "func", None)
        if func is not None:
            return _CHECKS.get(func.__name__, "checked text")
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _describe(args[0], [*args[1:], *metadata])
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin is list:
        return f"list of {_describe(args[0])}"
    if origin is dict:
        return f"table of {_describe(args[1])}"
    if args and type(None) in args:
        return " or ".join(_describe(a) for a in args if a is not type(None))
    if args:
        return " or ".join(_describe(a) for a in args)
    if annotation is Any:
        return "any"
    base = _PLAIN.get(annotation, getattr(annotation, "__name__", str(annotation)))
    return f"{base} {' and '.join(bounds)}".strip()


def _rows(model: type[BaseModel], prefix: str) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    for name, info in model.model_fields.items():
        inner, is_dict = _inner_model(info.annotation)
        list_of = get_origin(info.annotation) is list or any(
            get_origin(a) is list for a in get_args(info.annotation)
        )
        if inner is not None:
            sub = (
                f"{prefix}{name}.NAME."
                if is_dict
                else f"{prefix}{name}[]."
                if list_of
                else f"{prefix}{name}."
            )
            rows += _rows(inner, sub)
            continue
        if info.is_required():
            default = "required"
        elif info.default is None:
            default = "unset"
        else:
            default = f"`{_toml_value(info.default)}`"
        rows.append((f"`{prefix}{name}`", _describe(info.annotation, info.metadata), default))
    return rows


def reference_markdown() -> str:
    """Return the generated key reference of docs/configuration.md (one row per key)."""
    lines = [
        "| key | type | default |",
        "|---|---|---|",
        *(f"| {k} | {t} | {d} |".replace(" || ", " \\|\\| ") for k, t, d in _rows(Schema, "")),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m reputable.config_schema > reference (docs/configuration.md)
    print(reference_markdown(), end="")

"""The schema of reputable.toml: every section and key the code reads, with types and ranges.

Pydantic v2, not msgspec: FastAPI already brings pydantic (no new dependency), and its errors
carry the key path, the input and a machine-readable type, which config_report.py turns into
plain-text lines with a "did you mean" hint. The schema only *checks*; the stages build their
own settings types from the checked tables (each stage owns its type: publication/settings.py,
listings/policy.py, evidence/sources/settings.py, ...), and config_check.stage_problems runs
those builders too, so a value the schema cannot express (a cause name, a CIDR inside a list)
is still reported before ``serve`` binds.

Models are strict: ``fast_path = "yes"`` is not a boolean and ``escalate_v4 = "eight"`` not a
number. Durations are ``"90s"``-style text (or whole seconds), parsed by core/clock.
"""

from __future__ import annotations

from datetime import timedelta
from ipaddress import ip_address, ip_network
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, create_model

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
AtLeastOne = Annotated[int, Field(ge=1)]  # a limit of 0 would refuse everyone
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
    listen: Annotated[list[Annotated[str, AfterValidator(_any_port)]], Field(min_length=1)] = [
        "127.0.0.1:5300"
    ]
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
    delist_per_client: AtLeastOne = 5
    delist_per_subject: AtLeastOne = 3
    delist_window: PositiveDuration = "1h"
    bouncer_duration: PositiveDuration = "365d"


class Web(Section):
    check_setup: bool = False
    session_ttl: PositiveDuration = "8h"
    login_per_minute: AtLeastOne = 10


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
    rpz: StrictBool = False  # offer the [[sinks]] RPZ zones by AXFR/IXFR too


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
    timeout: Annotated[float, Field(gt=0)] | None = None  # checker/settings.py: positive
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

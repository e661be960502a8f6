"""reputable.toml: one file, read once into frozen values; every error names the key and the fix."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tomllib
from dataclasses import dataclass, field
from ipaddress import IPv4Address, ip_network
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from reputable.core.cause import DEFAULT_OCTET, LISTING_CAUSES, parse_cause
from reputable.core.clock import parse_duration
from reputable.core.errors import ConfigError, InputError
from reputable.listings.policy import DEFAULT_MAX_QUIET, DEFAULT_RULES, CauseRule, PolicyParams
from reputable.publication.settings import (
    AccessAction,
    AccessRule,
    DnsConfig,
    RrlConfig,
    ZoneConfig,
)
from reputable.reputation.scoring import DEFAULT_HALF_LIFE, ReputationParams

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_TOML",
    "AccessAction",
    "AccessRule",
    "Config",
    "ConfigProblems",
    "DnsConfig",
    "RrlConfig",
    "ZoneConfig",
    "load_config",
    "parse_config",
]

if TYPE_CHECKING:
    from reputable.config_report import Problem

DEFAULT_PATH: Final = Path("reputable.toml")

#: Set by serve's preflight to the digest of the text it checked completely: the children it
#: starts (snapshot build, policy run, DNS workers) skip the schema for that very text (the
#: schema's models cost ~0.2 s CPU per process start; docs/benchmarks.md).
CHECKED_ENV: Final = "REPUTABLE_CONFIG_CHECKED"


def text_digest(text: str) -> str:
    """Return the digest that marks *text* as completely checked (see CHECKED_ENV)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration; paths are absolute."""

    path: Path | None
    data_dir: Path
    store_dsn: str
    snapshot_path: Path
    ip_zone: ZoneConfig
    domain_zone: ZoneConfig
    allow_zone: ZoneConfig
    dns: DnsConfig
    max_prefix_v4: int
    max_prefix_v6: int
    policy: PolicyParams = field(default_factory=PolicyParams)
    pfx2as: Path | None = None  # CAIDA prefix-to-AS table for per-ASN accounting
    reputation: ReputationParams = field(default_factory=ReputationParams)
    extra: dict[str, Any] = field(default_factory=dict)


class ConfigProblems(ConfigError):
    """The file breaks the schema; :attr:`problems` lists every broken key at once."""

    def __init__(self, where: str, problems: list[Problem]) -> None:
        self.where = where
        self.problems = problems
        lines = [p.text() for p in problems]
        if len(lines) == 1:
            text = f"{where}: {lines[0]}"
        else:
            text = f"{where}: {len(lines)} problems:\n" + "\n".join(f"  {line}" for line in lines)
        super().__init__(text)


def problems_in(exc: ConfigError) -> list[Problem]:
    """Return the problems an error reports (one for an error found outside the schema)."""
    from reputable.config_report import NO_VALUE, Problem

    if isinstance(exc, ConfigProblems):
        return list(exc.problems)
    return [Problem("", NO_VALUE, str(exc))]


def _validate(raw: dict[str, Any], where: str) -> None:
    """Check *raw* against the schema; raise ConfigProblems naming every broken key."""
    from pydantic import ValidationError

    from reputable.config_report import problems_of
    from reputable.config_schema import Schema

    try:
        Schema.model_validate(raw)
    except ValidationError as exc:
        raise ConfigProblems(where, problems_of(exc)) from None


#: The modules the schema's verdict depends on (config_schema and what it imports from
#: reputable, package __init__ files included; tests/test_config_cache.py keeps this list
#: complete). A change to any of them (its size or mtime) invalidates every remembered check.
SCHEMA_SOURCES: Final = (
    "__init__.py",
    "config_schema.py",
    "core/__init__.py",
    "core/clock.py",
    "core/errors.py",
    "evidence/__init__.py",
    "evidence/detectors/__init__.py",
    "evidence/detectors/mail_config.py",
    "evidence/detectors/netconfig.py",
)
#: How many checked texts the cache remembers (a few configs per machine; tests make more).
CHECKED_KEEP: Final = 64


def checked_cache_path() -> Path:
    """Return the file of remembered schema checks: ``$XDG_CACHE_HOME/reputable/config-checked``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "reputable" / "config-checked"


def schema_key(text: str) -> str:
    """Return the digest under which a passed check of *text* is remembered.

    It covers the text and what decides the verdict: the schema's own sources (size and
    mtime, SCHEMA_SOURCES) and the pydantic installed (its package file's size and mtime).
    Stat calls only: importing pydantic to ask its version costs what the cache saves.
    """
    import importlib.util

    digest = hashlib.sha256(text.encode("utf-8"))
    package = Path(__file__).parent
    spec = importlib.util.find_spec("pydantic")
    for source in [*(package / name for name in SCHEMA_SOURCES), spec and spec.origin]:
        try:
            stat = os.stat(str(source)) if source else None
        except OSError:
            stat = None
        digest.update(f"\0{source}:{stat and stat.st_size}:{stat and stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def _remembered(key: str) -> bool:
    """True if a check with digest *key* passed before (an unreadable cache: no)."""
    try:
        return key in checked_cache_path().read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError):
        return False


def _remember(key: str) -> None:
    """Add *key* to the cache, newest first, keeping CHECKED_KEEP; never fails the command.

    Written to a temporary file and renamed: a reader never sees half a file, and two
    writers at once lose one entry at worst (that check runs again next time).
    """
    path = checked_cache_path()
    try:
        kept = path.read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError):
        kept = []
    lines = [key, *(k for k in kept if k != key)][:CHECKED_KEEP]
    temporary = path.with_name(f"{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text("\n".join(lines) + "\n", encoding="ascii")
        os.replace(temporary, path)
    except OSError:  # a read-only home: the check just runs every time
        with contextlib.suppress(OSError):
            temporary.unlink()


def check_schema(raw: dict[str, Any], text: str, where: str) -> None:
    """Check *raw* (parsed from *text*) against the schema, or skip a check that passed before.

    Building the schema's validators costs ~0.26 s CPU per process (pydantic), more than most
    commands' own work, and the same file is checked by every command run against it. Only
    passes are remembered: a file with a problem is checked (and reported) every time, so the
    messages never differ from a full check.
    """
    key = schema_key(text)
    if _remembered(key):
        return
    _validate(raw, where)
    _remember(key)


DEFAULT_TOML: Final = """\
# reputable configuration (see docs/configuration.md). Paths are relative to this file.
data_dir = "."

[store]
# Embedded SQLite by default; PostgreSQL: "postgresql://user@127.0.0.1/reputable"
dsn = "sqlite:///reputable.db"

[listings]
# Broadest network a listing may cover without --force.
max_prefix_v4 = 16
max_prefix_v6 = 32

[dns]
listen = ["127.0.0.1:5300"]      # UDP and TCP on each
workers = 1                      # DNS worker processes sharing one snapshot (SO_REUSEPORT)
reload_interval = "1s"           # how often workers look for a new snapshot
nameservers = ["ns1.reputable.test"]
hostmaster = "hostmaster.reputable.test"
negative_ttl = 300
fast_path = true                 # use the compiled packet loop when it was built
max_udp_answer = 1232            # longest UDP answer, whatever EDNS offers (TC beyond)
max_amplification = 3            # UDP answer <= 3x its query for clients offering <= 512
tcp_idle_timeout = "10s"         # TCP: wait for the next query at most this long
tcp_write_timeout = "5s"         # TCP: an answer the client does not take closes it
tcp_max_clients = 256            # TCP connections per worker; the oldest idle one yields
tcp_max_per_client = 16          # TCP connections per client address
# Per-client access control, longest prefix wins: answer | refuse | ignore;
# rrl = N overrides [rrl] responses_per_second for the rule's clients (0: not limited)
access = [
  { network = "0.0.0.0/0", action = "answer" },
  { network = "::/0", action = "answer" },
]

[rrl]
# Response rate limiting as BIND's RRL: identical answers per client /24 (IPv6 /56).
responses_per_second = 20        # 0 turns it off
slip = 2                         # every 2nd dropped answer is sent truncated (TC -> TCP)
exempt = ["127.0.0.0/8", "::1/128"]

[http]
listen = "127.0.0.1:8080"        # the HTTP API (docs/api.md); "" switches it off
# max_body = "10MB"              # larger request bodies get 413
# cors_origins = []              # no CORS headers unless origins are named

[zones.ip]
name = "bl.reputable.test"
ttl = 900
lookup_url = "http://127.0.0.1:8080/lookup/$"
# codes = { spam = "127.0.0.2", harvest = "127.0.0.3" }   # override any default

[zones.domain]
name = "dbl.reputable.test"
ttl = 900
lookup_url = "http://127.0.0.1:8080/lookup/$"

[zones.allow]
name = "wl.reputable.test"
ttl = 900
lookup_url = ""

[policy]
interval = "5s"                  # how often serve evaluates new evidence
recidivism_window = "90d"        # a re-listing within this lasts at least twice the last one
max_listing = "180d"             # cap of that doubling
escalate_v4 = 8                  # listed addresses in one IPv4 /24 that list the /24
escalate_v6 = 8                  # listed /64s in one IPv6 /48 that list the /48
hosting_domains = 2              # listed domains on one IP that list the IP
quiet_period = "7d"              # removal requests are granted at once after this long quiet
self_removals = 3                # self-service removals per subject ...
self_removal_window = "30d"      # ... within this window
# pfx2as = "routeviews.pfx2as"   # CAIDA prefix-to-AS file: explain counts listings per ASN
# escalate_prefix = 0            # opt-in (needs pfx2as): list an announced prefix with this many listed addresses
# contact = "abuse@example.net"  # how listed parties reach you; refused removal requests quote it
# domain_senders = 3             # a domain sending spam from this many listed IPs is listed too
# reprobe_every = "1d"           # serve re-probes relay/proxy listings this often
# Per cause: list at / delist below a decayed score, minimum listing time, half-life, and the
# longest a listing outlives its last evidence ("never": only the decay ends it).
# [policy.causes.spam]
# list = 2.5
# delist = 1.0
# min_listing = "24h"
# half_life = "2d"
# max_quiet = "7d"

# Enforcement (docs/enforcement.md): uncomment to answer Postfix's check_policy_service
# [policy_service]
# listen = "127.0.0.1:10040"
"""


def _zone(raw: dict[str, Any], key: str, default_name: str, third_octet: int) -> ZoneConfig:
    section = raw.get("zones", {}).get(key, {})
    if not isinstance(section, dict):
        raise ConfigError(f"[zones.{key}] must be a table")
    name = str(section.get("name", default_name)).strip(".").lower()
    if not name:
        raise ConfigError(f"[zones.{key}] name must not be empty")
    codes = {c: IPv4Address(f"127.0.{third_octet}.{DEFAULT_OCTET[c]}") for c in LISTING_CAUSES}
    for cause_text, code_text in dict(section.get("codes", {})).items():
        try:
            cause = parse_cause(cause_text)
            code = IPv4Address(str(code_text))
        except ValueError as exc:
            raise ConfigError(f"[zones.{key}] codes.{cause_text}: {exc}") from exc
        if not cause.lists:
            raise ConfigError(
                f"[zones.{key}] codes.{cause_text}: clean never lists, it has no code"
            )
        if code.packed[0] != 127 or str(code) == "127.0.0.1":
            raise ConfigError(
                f"[zones.{key}] codes.{cause_text} = {code}: return codes must be in 127.0.0.0/8"
                " and not 127.0.0.1 (RFC 5782 §2.1)"
            )
        codes[cause] = code
    return ZoneConfig(
        name=name,
        ttl=_seconds(section.get("ttl", 900), f"zones.{key}.ttl"),
        codes=codes,
        lookup_url=str(section.get("lookup_url", "")),
    )


def _seconds(value: Any, key: str) -> int:
    try:
        if isinstance(value, int):
            return value
        return int(parse_duration(str(value)).total_seconds())
    except InputError as exc:
        raise ConfigError(f"{key}: {exc}") from exc


def _endpoint(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"dns.listen entry {text!r}: use HOST:PORT, e.g. 127.0.0.1:5300")
    return host.strip("[]"), int(port)


def _access(items: Any) -> tuple[AccessRule, ...]:
    rules: list[AccessRule] = []
    for i, item in enumerate(items or []):
        try:
            network = ip_network(str(item["network"]), strict=False)
            action = str(item.get("action", "answer"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"dns.access[{i}]: need {{ network = CIDR, action = answer|refuse|ignore }}: {exc}"
            ) from exc
        if action not in ("answer", "refuse", "ignore"):
            raise ConfigError(f"dns.access[{i}].action {action!r}: use answer, refuse or ignore")
        rrl = item.get("rrl")
        if rrl is not None and (isinstance(rrl, bool) or not isinstance(rrl, int) or rrl < 0):
            raise ConfigError(
                f"dns.access[{i}].rrl {rrl!r}: use responses per second, 0 for no rate limit"
            )
        rules.append(AccessRule(network, action, rrl))  # type: ignore[arg-type]  # checked above
    return tuple(rules)


def _int_in(section: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{key} = {value!r}: use a whole number from {low} to {high}")
    return value


def _dns_limits(dns: dict[str, Any], rrl: Any, where: str) -> dict[str, Any]:
    """Return the [dns] size, amplification and TCP limits and the [rrl] table, checked."""
    if not isinstance(rrl, dict):
        raise ConfigError(f"{where}: [rrl] must be a table")
    try:
        exempt = tuple(
            ip_network(str(n), strict=False) for n in rrl.get("exempt", ["127.0.0.0/8", "::1/128"])
        )
        idle = parse_duration(str(dns.get("tcp_idle_timeout", "10s"))).total_seconds()
        write = parse_duration(str(dns.get("tcp_write_timeout", "5s"))).total_seconds()
        limits = {
            "max_udp_answer": _int_in(dns, "max_udp_answer", 1232, 512, 4096),
            "max_amplification": _int_in(dns, "max_amplification", 3, 0, 100),
            "tcp_max_clients": _int_in(dns, "tcp_max_clients", 256, 1, 100_000),
            "tcp_max_per_client": _int_in(dns, "tcp_max_per_client", 16, 1, 100_000),
            "rrl": RrlConfig(
                responses_per_second=_int_in(rrl, "responses_per_second", 20, 0, 1_000_000),
                slip=_int_in(rrl, "slip", 2, 0, 10),
                exempt=exempt,
            ),
        }
    except (ValueError, TypeError, InputError) as exc:
        raise ConfigError(f"{where}: [dns]/[rrl] {exc}") from exc
    except ConfigError as exc:
        raise ConfigError(f"{where}: [dns]/[rrl] {exc}") from exc
    if idle <= 0 or write <= 0:
        raise ConfigError(f"{where}: [dns] tcp_idle_timeout and tcp_write_timeout must be > 0")
    return {**limits, "tcp_idle_timeout": idle, "tcp_write_timeout": write}


def _policy(raw: dict[str, Any], where: str) -> tuple[PolicyParams, ReputationParams]:
    section = raw.get("policy", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: [policy] must be a table")
    rules = dict(DEFAULT_RULES)
    halves = dict(DEFAULT_HALF_LIFE)
    quiet = dict(DEFAULT_MAX_QUIET)
    try:
        for cause_text, spec in dict(section.get("causes", {})).items():
            cause = parse_cause(cause_text)
            if "half_life" in spec:
                halves[cause] = parse_duration(str(spec["half_life"]))
            if "max_quiet" in spec:
                text = str(spec["max_quiet"]).strip().lower()
                try:
                    quiet[cause] = None if text == "never" else parse_duration(text)
                except InputError as exc:
                    raise ValueError(
                        f'policy.causes.{cause_text}.max_quiet: {exc}, or "never"'
                    ) from exc
            if cause in rules:
                old = rules[cause]
                rules[cause] = CauseRule(
                    float(spec.get("list", old.list_at)),
                    float(spec.get("delist", old.delist_at)),
                    parse_duration(str(spec["min_listing"]))
                    if "min_listing" in spec
                    else old.min_listing,
                )
                if not 0 <= rules[cause].delist_at <= rules[cause].list_at:
                    raise ValueError(f"policy.causes.{cause_text}: need 0 <= delist <= list")
        defaults = PolicyParams()

        def duration(key: str, default: Any) -> Any:
            return parse_duration(str(section[key])) if key in section else default

        policy = PolicyParams(
            rules=rules,
            recidivism_window=duration("recidivism_window", defaults.recidivism_window),
            max_listing=duration("max_listing", defaults.max_listing),
            escalate_v4=int(section.get("escalate_v4", defaults.escalate_v4)),
            escalate_v6=int(section.get("escalate_v6", defaults.escalate_v6)),
            hosting_domains=int(section.get("hosting_domains", defaults.hosting_domains)),
            escalate_prefix=int(section.get("escalate_prefix", defaults.escalate_prefix)),
            quiet_period=duration("quiet_period", defaults.quiet_period),
            self_removals=int(section.get("self_removals", defaults.self_removals)),
            self_removal_window=duration("self_removal_window", defaults.self_removal_window),
            interval=duration("interval", defaults.interval),
            max_quiet=quiet,
            domain_senders=int(section.get("domain_senders", defaults.domain_senders)),
            contact=str(section.get("contact", defaults.contact)),
            reprobe_every=duration("reprobe_every", defaults.reprobe_every),
        )
    except (ValueError, TypeError, InputError) as exc:
        raise ConfigError(f"{where}: [policy] {exc}") from exc
    if min(policy.escalate_v4, policy.escalate_v6, policy.hosting_domains) < 1:
        raise ConfigError(
            f"{where}: [policy] escalate_v4, escalate_v6, hosting_domains must be >= 1"
        )
    if policy.domain_senders < 1:
        raise ConfigError(f"{where}: [policy] domain_senders must be >= 1")
    if policy.escalate_prefix < 0:
        raise ConfigError(f"{where}: [policy] escalate_prefix must be 0 (off) or a positive count")
    if policy.escalate_prefix and not section.get("pfx2as"):
        raise ConfigError(
            f"{where}: [policy] escalate_prefix needs pfx2as = FILE (a CAIDA prefix-to-AS table)"
        )
    return policy, ReputationParams(half_life=halves)


def toml_error(where: str, exc: tomllib.TOMLDecodeError) -> str:
    """Return a TOML syntax error as ``FILE line N: what (column C); fix the TOML syntax``.

    tomllib (3.11) puts the position in its message, ``... (at line 89, column 5)``, and names
    tables as tuples, ``('dns',)``: both are rewritten as they read in the file.
    """
    text = str(exc)
    match = re.fullmatch(r"(.*) \(at line (\d+), column (\d+)\)", text)
    if match is None:
        return f"{where}: {text}; fix the TOML syntax"
    message, line, column = match.groups()
    message = re.sub(
        r"\(((?:'[^']*',? ?)+)\)",
        lambda m: "[" + ".".join(re.findall(r"'([^']*)'", m.group(1))) + "]",
        message,
    )
    return f"{where} line {line}: {message} (column {column}); fix the TOML syntax"


def parse_config(text: str, path: Path | None = None, *, checked: bool = False) -> Config:
    """Return the configuration in TOML *text*; relative paths resolve against *path*'s folder.

    *checked*: *text* passed the schema before (serve's plan, see cli/launch.py): skip it.
    """
    where = str(path) if path else "configuration"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(toml_error(where, exc)) from exc
    if not checked and os.environ.get(CHECKED_ENV) != text_digest(text):
        check_schema(raw, text, where)  # every key and type at once, before any value is used
    base = path.parent.resolve() if path else Path.cwd()
    data_dir = (base / str(raw.get("data_dir", "."))).resolve()
    store = raw.get("store", {})
    dsn = str(store.get("dsn", "sqlite:///reputable.db"))
    if dsn.startswith("sqlite:///"):
        db_path = Path(dsn.removeprefix("sqlite:///"))
        dsn = "sqlite:///" + str(db_path if db_path.is_absolute() else data_dir / db_path)
    elif not dsn.startswith(("postgresql://", "postgres://", "memory:")):
        raise ConfigError(f"{where}: store.dsn {dsn!r}: use sqlite:///FILE or postgresql://...")
    dns = raw.get("dns", {})
    listings = raw.get("listings", {})
    snapshot = Path(str(dns.get("snapshot", "reputable.snapshot")))
    try:
        workers = int(dns.get("workers", 1))
        if workers < 1:
            raise ValueError("must be at least 1")
        max_v4 = int(listings.get("max_prefix_v4", 16))
        max_v6 = int(listings.get("max_prefix_v6", 32))
        if not (0 <= max_v4 <= 32 and 0 <= max_v6 <= 128):
            raise ValueError("max_prefix_v4 must be 0-32 and max_prefix_v6 0-128")
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    policy, reputation = _policy(raw, where)
    access = _access(dns.get("access")) or (
        AccessRule(ip_network("0.0.0.0/0"), "answer"),
        AccessRule(ip_network("::/0"), "answer"),
    )
    return Config(
        path=path.resolve() if path else None,
        data_dir=data_dir,
        store_dsn=dsn,
        snapshot_path=snapshot if snapshot.is_absolute() else data_dir / snapshot,
        ip_zone=_zone(raw, "ip", "bl.reputable.test", 0),
        domain_zone=_zone(raw, "domain", "dbl.reputable.test", 1),
        allow_zone=_zone(raw, "allow", "wl.reputable.test", 2),
        dns=DnsConfig(
            listen=tuple(_endpoint(e) for e in dns.get("listen", ["127.0.0.1:5300"])),
            workers=workers,
            reload_interval=parse_duration(str(dns.get("reload_interval", "1s"))),
            nameservers=tuple(
                str(n).strip(".") for n in dns.get("nameservers", ["ns1.reputable.test"])
            ),
            hostmaster=str(dns.get("hostmaster", "hostmaster.reputable.test")).strip("."),
            negative_ttl=_seconds(dns.get("negative_ttl", 300), "dns.negative_ttl"),
            access=access,
            fast_path=bool(dns.get("fast_path", True)),
            **_dns_limits(dns, raw.get("rrl", {}), where),
        ),
        max_prefix_v4=max_v4,
        max_prefix_v6=max_v6,
        policy=policy,
        reputation=reputation,
        pfx2as=(base / str(raw["policy"]["pfx2as"])).resolve()
        if isinstance(raw.get("policy"), dict) and raw["policy"].get("pfx2as")
        else None,
        extra={
            k: v
            for k, v in raw.items()
            if k not in {"data_dir", "store", "dns", "zones", "listings", "policy", "rrl"}
        },
    )


def load_config(path: Path | None = None) -> Config:
    """Read the configuration from *path* (default ./reputable.toml; defaults if it is absent)."""
    target = path or DEFAULT_PATH
    if not target.exists():
        if path is not None:
            raise ConfigError(f"config file {path} not found; create one with `reputable init`")
        return parse_config(DEFAULT_TOML, None)
    try:
        text = target.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {target}: {exc}") from exc
    return parse_config(text, target)

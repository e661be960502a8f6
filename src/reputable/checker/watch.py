"""Watching addresses, ranges and domains: fingerprints, changes between rounds (pure), alerts.

A round checks every target, reduces each report to a fingerprint (blocklists that list it,
diagnostic problems), compares with the fingerprint kept on disk and alerts on differences.
Zones that gave no answer keep their previous state, so an outage never reads as "delisted".
"""

from __future__ import annotations

import enum
import json
import os
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from ipaddress import IPv6Address, ip_network
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from reputable.checker.model import Report, Status
from reputable.checker.render import removal_text
from reputable.core.address import IPNetwork, parse_address, parse_domain
from reputable.core.clock import format_instant, parse_duration
from reputable.core.errors import ConfigError, InputError

DEFAULT_MAX_RANGE: Final = 256
DEFAULT_SAMPLE: Final = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchConfig:
    """What to watch, how often, where state lives and where alerts go."""

    interval: timedelta = timedelta(hours=1)
    state: Path = Path("watch-state.json")
    ips: tuple[str, ...] = ()
    ranges: tuple[IPNetwork, ...] = ()
    domains: tuple[str, ...] = ()
    max_range: int = DEFAULT_MAX_RANGE
    sample: int = DEFAULT_SAMPLE
    webhook_url: str = ""
    email_server: str = ""
    email_from: str = ""
    email_to: tuple[str, ...] = ()
    checker: Mapping[str, Any] = field(default_factory=dict)


class ChangeKind(enum.StrEnum):
    """What changed for one subject."""

    LISTED = "listed"
    DELISTED = "delisted"
    PROBLEM = "problem"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between two rounds."""

    subject: str
    kind: ChangeKind
    detail: str


def _strings(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {key} must be a list of strings")
    return tuple(value)


def _count(table: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: {key} must be a whole number of at least 1, got {value!r}")
    return value


def _ips(table: Mapping[str, Any], where: str) -> tuple[str, ...]:
    out = []
    for text in _strings(table, "ips", where):
        try:
            address = parse_address(text)
        except InputError as exc:
            raise ConfigError(f"{where}: ips: {exc}") from exc
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        out.append(str(address))
    return tuple(out)


def _domains(table: Mapping[str, Any], where: str) -> tuple[str, ...]:
    out = []
    for text in _strings(table, "domains", where):
        try:
            name = parse_domain(text).name
        except InputError as exc:
            raise ConfigError(f"{where}: domains: {exc}") from exc
        if "." not in name:
            raise ConfigError(f"{where}: domains: {text!r} is not a fully qualified domain name")
        out.append(name)
    return tuple(out)


def _state(table: Mapping[str, Any], base: Path, where: str) -> Path:
    value = table.get("state", "watch-state.json")
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: state must be the path of a file, got {value!r}")
    path = base / value
    if path.is_dir():
        raise ConfigError(f"{where}: state = {value!r} is a folder: name a file inside it")
    if not path.parent.is_dir():
        raise ConfigError(
            f"{where}: state = {value!r}: folder {path.parent} does not exist; create it or"
            " choose another path (relative paths are relative to the watch file)"
        )
    if not os.access(path.parent, os.W_OK):
        raise ConfigError(f"{where}: state = {value!r}: folder {path.parent} is not writable")
    return path


def _webhook_url(webhook: Mapping[str, Any], where: str) -> str:
    url = webhook.get("url", "")
    if not isinstance(url, str):
        raise ConfigError(f"{where} [webhook]: url must be a string, got {url!r}")
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{where} [webhook]: url = {url!r}: give an http:// or https:// URL with a host"
        )
    return url


def _email_server(email: Mapping[str, Any], where: str) -> str:
    server = email.get("server", "")
    if not isinstance(server, str):
        raise ConfigError(f"{where} [email]: server must be a string, got {server!r}")
    host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "25")
    if server and (not host or not port.isdigit() or not 0 < int(port) < 65536):
        raise ConfigError(
            f'{where} [email]: server = {server!r}: give "HOST" or "HOST:PORT" (port 1-65535)'
        )
    return server


def parse_watch(table: Mapping[str, Any], base: Path, where: str) -> WatchConfig:
    """Return the watch configuration in *table*; relative paths are under *base*.

    Every value is checked here, at load time, so that a bad key is reported before any round
    (and before any alert) with the file and key named.
    """
    try:
        interval = parse_duration(str(table.get("interval", "1h")))
    except (InputError, ValueError) as exc:
        raise ConfigError(f"{where}: interval: {exc}") from exc
    try:
        ranges = tuple(ip_network(r, strict=True) for r in _strings(table, "ranges", where))
    except ValueError as exc:
        raise ConfigError(f"{where}: ranges: {exc}") from exc
    webhook = table.get("webhook", {})
    email = table.get("email", {})
    if not isinstance(webhook, Mapping) or not isinstance(email, Mapping):
        raise ConfigError(f"{where}: [webhook] and [email] must be tables")
    checker = table.get("checker", {})
    if not isinstance(checker, Mapping):
        raise ConfigError(f"{where}: [checker] must be a table")
    if not isinstance(email.get("from", ""), str):
        raise ConfigError(f"{where} [email]: from must be a string")
    config = WatchConfig(
        interval=interval,
        state=_state(table, base, where),
        ips=_ips(table, where),
        ranges=ranges,
        domains=_domains(table, where),
        max_range=_count(table, "max_range", DEFAULT_MAX_RANGE, where),
        sample=_count(table, "sample", DEFAULT_SAMPLE, where),
        webhook_url=_webhook_url(webhook, where),
        email_server=_email_server(email, where),
        email_from=str(email.get("from", "")),
        email_to=_strings(email, "to", f"{where} [email]"),
        checker=checker,
    )
    if not (config.ips or config.ranges or config.domains):
        raise ConfigError(f"{where}: nothing to watch: set ips, ranges or domains")
    if config.email_server and not (config.email_from and config.email_to):
        raise ConfigError(f'{where}: [email] needs from = "..." and to = ["..."]')
    return config


def load_watch(path: Path) -> WatchConfig:
    """Read a watch file, naming the file in every error."""
    try:
        table = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read watch file: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_watch(table, path.parent, str(path))


def range_targets(network: IPNetwork, max_range: int, sample: int) -> list[str]:
    """Return every address of a small *network*, or *sample* evenly spaced ones of a large one."""
    size = network.num_addresses
    if size <= max_range:
        return [str(network.network_address + i) for i in range(size)]
    step = size // sample  # sample >= 1 (checked at load) and size > max_range >= 1
    return [str(network.network_address + i * step) for i in range(sample)]


def targets(config: WatchConfig) -> list[str]:
    """Return the subjects of one round, in order, without duplicates."""
    found = list(config.ips)
    for network in config.ranges:
        found += range_targets(network, config.max_range, config.sample)
    found += config.domains
    return list(dict.fromkeys(found))


def fingerprint(report: Report, previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the state of one subject: listing zones and problems; unanswered zones keep theirs."""
    old_listed = set(previous.get("listed", ())) if previous else set()
    listed = set()
    for result in report.listings:
        if result.allow:
            continue
        name = f"{result.zone} ({result.subject})" if result.subject else result.zone
        unanswered = result.status is not Status.CLEAN and name in old_listed
        if result.status is Status.LISTED or unanswered:
            listed.add(name)
    problems = {f"{f.check}: {f.message}" for f in report.findings if f.is_problem}
    # A check the nameserver did not answer keeps the problems it had: an outage is not a fix.
    unchecked = {f.check for f in report.findings if f.inconclusive}
    old_problems = previous.get("problems", ()) if previous else ()
    problems |= {p for p in old_problems if p.split(": ", 1)[0] in unchecked}
    inconclusive = sorted({f"{f.check}: {f.message}" for f in report.findings if f.inconclusive})
    return {
        "listed": sorted(listed),
        "problems": sorted(problems),
        "inconclusive": inconclusive,
        "error": report.error,
    }


def diff(subject: str, old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[Change]:
    """Return the changes of *subject* between two fingerprints (None: never seen before)."""
    before = old or {"listed": [], "problems": []}
    changes = [Change(subject, ChangeKind.LISTED, z) for z in new["listed"]
               if z not in before["listed"]]  # fmt: skip
    changes += [Change(subject, ChangeKind.DELISTED, z) for z in before["listed"]
                if z not in new["listed"]]  # fmt: skip
    changes += [Change(subject, ChangeKind.PROBLEM, p) for p in new["problems"]
                if p not in before["problems"]]  # fmt: skip
    changes += [Change(subject, ChangeKind.RESOLVED, p) for p in before["problems"]
                if p not in new["problems"]]  # fmt: skip
    return changes


def read_state(path: Path) -> dict[str, Any]:
    """Return the saved state, or an empty one if there is none yet."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {"subjects": {}}
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{path}: unreadable watch state ({exc}); move it away to start over"
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("subjects"), dict):
        raise ConfigError(f"{path}: not a watch state file; move it away to start over")
    return data


def write_state(path: Path, state: Mapping[str, Any]) -> None:
    """Write the state atomically (temporary file, fsync, rename); creates a missing folder."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w", encoding="utf-8") as handle:
            json.dump(state, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot write the watch state: {exc.strerror or exc}; the alerts of this"
            " round were sent and will be sent again next round"
        ) from exc


def next_state(
    state: Mapping[str, Any], reports: Iterable[Report], now: datetime
) -> tuple[dict[str, Any], list[Change]]:
    """Return the new state after a round of *reports*, and what changed (pure)."""
    subjects = dict(state.get("subjects", {}))
    changes: list[Change] = []
    for report in reports:
        old = subjects.get(report.subject)
        new = fingerprint(report, old)
        if report.error and old is not None:
            continue  # a failed check says nothing about the subject: keep its state
        since = {k: v for k, v in (old or {}).get("since", {}).items() if k in new["listed"]}
        since.update({z: format_instant(now) for z in new["listed"] if z not in since})
        new["since"] = since
        changes += explained(report, diff(report.subject, old, new), old, now)
        subjects[report.subject] = new
    return {"subjects": subjects, "checked_at": format_instant(now)}, changes


def _for_humans(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:.0f} hours" if hours < 48 else f"{hours / 24:.0f} days"


def explained(
    report: Report, changes: Sequence[Change], old: Mapping[str, Any] | None, now: datetime
) -> list[Change]:
    """Return *changes* with what each means: a new listing's meaning and removal path, or when
    a listing was seen gone and how long it lasted (the first round that no longer saw it)."""
    by_name = {
        (f"{r.zone} ({r.subject})" if r.subject else r.zone): r
        for r in report.listings
        if not r.allow
    }
    since = (old or {}).get("since", {})
    out: list[Change] = []
    for change in changes:
        detail = change.detail
        if change.kind is ChangeKind.LISTED and detail in by_name:
            result = by_name[detail]
            detail = f"{detail} ({result.meaning}); removal: {removal_text(result)}"
        elif change.kind is ChangeKind.DELISTED:
            detail = f"{detail}: gone at {format_instant(now)}"
            if change.detail in since:
                start = datetime.fromisoformat(since[change.detail].replace("Z", "+00:00"))
                detail += f" (listed since {since[change.detail]}, {_for_humans(now - start)})"
        out.append(Change(change.subject, change.kind, detail))
    return out


def alert_json(changes: Sequence[Change], now: datetime) -> dict[str, Any]:
    """Return the webhook body for *changes*."""
    return {
        "at": format_instant(now),
        "changes": [
            {"subject": c.subject, "change": c.kind.value, "detail": c.detail} for c in changes
        ],
    }


def alert_text(changes: Sequence[Change]) -> str:
    """Return the e-mail body for *changes*, one line each."""
    lines = [f"{c.subject}: {c.kind.value}: {c.detail}" for c in changes]
    return "reputable watch noticed these changes:\n\n" + "\n".join(lines) + "\n"

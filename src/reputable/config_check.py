"""Everything `reputable config check` and `serve` verify beyond the schema, before binding.

The schema (config_schema.py) checks keys, types and ranges when the file is read. This module
composes the rest: it runs every stage's own settings builder over its section (each stage
owns its settings type and the rules a schema cannot express: cause names, CIDRs in lists,
cross-field limits), checks that the files the configuration names exist and are readable,
that zone names are distinct and that listen addresses are numeric. Every finding is a
:class:`~reputable.config_schema.Problem`; nothing here binds, connects or writes.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from reputable.config import CHECKED_ENV, DEFAULT_TOML, Config, ConfigProblems, text_digest
from reputable.config_report import NO_VALUE, Problem
from reputable.core.errors import InputError, ReputableError


def _builders(config: Config, base: Path) -> Iterator[tuple[str, Callable[[], object]]]:
    """Yield (section, builder) for every stage's settings; imports stay lazy (startup cost)."""
    extra = config.extra
    own = (config.ip_zone.name, config.domain_zone.name, config.allow_zone.name)

    def mail() -> object:
        from reputable.evidence.detectors.mail_config import mail_params

        return mail_params(extra, own)

    def net() -> object:
        from reputable.evidence.detectors.netconfig import net_settings

        return net_settings(extra)

    def maillog() -> object:
        from reputable.evidence.sources.maillog import maillog_settings

        return maillog_settings(extra, base)

    def journal() -> object:
        from reputable.evidence.sources.journal import journal_settings

        return journal_settings(extra, base)

    def netlog() -> object:
        from reputable.evidence.sources.netlog import followed_logs

        return followed_logs(extra, base)

    def sources() -> object:
        from reputable.evidence.sources.settings import parse_settings

        return parse_settings(extra)

    def http() -> object:
        from reputable.web.settings import http_settings

        return http_settings(config)

    def web() -> object:
        from reputable.web.pages.settings import page_settings

        return page_settings(config)

    def mail_out() -> object:
        from reputable.web.notify import mail_settings

        return mail_settings(config)

    def transfer() -> object:
        from reputable.publication.dnsbl.transfer import transfer_settings

        return transfer_settings(config)

    def policy_service() -> object:
        from reputable.policyd.settings import parse_policy

        return parse_policy(extra.get("policy_service"))

    def webhooks() -> object:
        from reputable.publication.webhooks.settings import parse_webhooks

        return parse_webhooks(extra.get("webhooks"))

    def sinks() -> object:
        from reputable.publication.sinks import parse_sinks

        return parse_sinks(extra.get("sinks"), base)

    def retention() -> object:
        from reputable.store.maintenance import evidence_retention

        minimum = config.policy.recidivism_window + config.policy.max_listing
        return evidence_retention(extra.get("retention"), minimum)

    def log_format() -> object:
        from reputable.core import log

        return log.format_from(extra.get("log"))

    def user() -> object:
        from reputable.core import privileges

        return privileges.lookup(extra.get("user"))

    def checker() -> object:
        from reputable.checker.settings import parse_settings

        return parse_settings(extra.get("checker", {}), base)

    yield from [
        ("detectors.mail", mail), ("detectors.net", net), ("sources.maillog", maillog),
        ("sources.journal", journal), ("sources.netlog", netlog),
        ("resolver", sources), ("http", http), ("web", web), ("mail", mail_out),
        ("transfer", transfer), ("policy_service", policy_service), ("webhooks", webhooks),
        ("sinks", sinks), ("retention", retention), ("log", log_format), ("user", user),
        ("checker", checker),
    ]  # fmt: skip


def _readable(path: Path) -> str | None:
    """Return why *path* cannot be read as a file, or None when it can."""
    if not path.exists():
        return f"{path} does not exist"
    if not path.is_file():
        return f"{path} is not a file"
    if not os.access(path, os.R_OK):
        return f"{path} is not readable by this user"
    return None


def _named_files(config: Config, base: Path) -> Iterator[tuple[str, Any, Path]]:
    """Yield (key path, value as written, resolved path) of every input file named."""
    extra = config.extra
    if config.pfx2as is not None:
        yield "policy.pfx2as", str(config.pfx2as), config.pfx2as
    sources = extra.get("sources", {})
    maillog = sources.get("maillog", {}) if isinstance(sources, dict) else {}
    for i, name in enumerate(maillog.get("paths", []) if isinstance(maillog, dict) else []):
        yield f"sources.maillog.paths[{i}]", name, base / str(name)
    journal = sources.get("journal", {}) if isinstance(sources, dict) else {}
    for i, name in enumerate(journal.get("files", []) if isinstance(journal, dict) else []):
        yield f"sources.journal.files[{i}]", name, base / str(name)
    netlog = sources.get("netlog", []) if isinstance(sources, dict) else []
    for i, entry in enumerate(netlog if isinstance(netlog, list) else []):
        if isinstance(entry, dict) and "path" in entry:
            yield f"sources.netlog[{i}].path", entry["path"], base / str(entry["path"])
    checker = extra.get("checker", {})
    for i, name in enumerate(checker.get("zone_files", []) if isinstance(checker, dict) else []):
        yield f"checker.zone_files[{i}]", name, base / str(name)


def stage_problems(config: Config, *, logs: bool = True) -> list[Problem]:
    """Return every problem of *config* the schema cannot see (empty: ready to serve).

    With *logs* false, log files that do not exist yet are not problems: serve follows them
    from when they appear (a rotated or not yet written mail.log must not stop it).
    """
    base = config.path.parent if config.path else Path.cwd()
    problems: list[Problem] = []
    for section, build in _builders(config, base):
        try:
            build()
        except ConfigProblems as exc:
            problems += exc.problems
        except (ReputableError, ValueError, OSError) as exc:
            problems.append(Problem(section, NO_VALUE, _without_prefix(str(exc))))
    for key, value, path in _named_files(config, base):
        if not logs and key.startswith("sources.") and not path.exists():
            continue
        why = _readable(path)
        if why:
            problems.append(Problem(key, value, f"{why}; fix the path (relative to the config)"))
    names: dict[str, str] = {}
    for key, zone in (("ip", config.ip_zone), ("domain", config.domain_zone),
                      ("allow", config.allow_zone)):  # fmt: skip
        if zone.name in names:
            problems.append(
                Problem(
                    f"zones.{key}.name",
                    zone.name,
                    f"the same name as [zones.{names[zone.name]}]; give each zone its own",
                )
            )
        names.setdefault(zone.name, key)
    for i, (host, _port) in enumerate(config.dns.listen):
        try:
            ip_address(host)
        except ValueError:
            problems.append(
                Problem(
                    f"dns.listen[{i}]",
                    f"{host}:{_port}",
                    "the host must be a numeric address (127.0.0.1, [::1]), not a name",
                )
            )
    if not config.data_dir.is_dir():
        problems.append(
            Problem("data_dir", str(config.data_dir), "no such folder; create it or fix the path")
        )
    return problems


def _without_prefix(text: str) -> str:
    """Drop a leading "[section]:" a stage message repeats (the problem's path names it)."""
    return text.removeprefix("[http]: ")


def check_config(config: Config) -> None:
    """Raise :class:`ConfigProblems` listing everything wrong with *config* (serve's preflight)."""
    problems = stage_problems(config, logs=False)
    if problems:
        where = str(config.path) if config.path else "configuration"
        raise ConfigProblems(where, problems)


def metrics_address(text: str | None) -> tuple[str, int] | None:
    """Return serve's ``--metrics HOST:PORT`` as (host, port), None when empty (disabled)."""
    if not text:
        return None
    host, sep, port = text.rpartition(":")
    hint = "use --metrics HOST:PORT, e.g. 127.0.0.1:9153, or --metrics '' to switch it off"
    if not sep or not host or not port.isdigit():
        raise InputError(f"serve --metrics {text!r}: {hint}")
    if not 1 <= int(port) <= 65535:
        raise InputError(f"serve --metrics {text!r}: port {port} is out of range (1-65535); {hint}")
    try:
        ip_address(host.strip("[]"))
    except ValueError:
        raise InputError(
            f"serve --metrics {text!r}: the host must be a numeric address; {hint}"
        ) from None
    return host.strip("[]"), int(port)


def check_metrics_bind(address: tuple[str, int] | None) -> None:
    """Raise InputError when serve's metrics listener could not bind *address* (busy, denied)."""
    if address is None:
        return
    host, port = address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise InputError(
                f"serve --metrics {host}:{port}: cannot listen there ({exc.strerror}); is another"
                " reputable serve running? Pick a free port with --metrics HOST:PORT, or"
                " --metrics '' to switch the metrics listener off"
            ) from exc


def preflight(config: Config, metrics: str | None) -> None:
    """Check everything `serve` needs before it binds anything; raise naming all problems.

    Then mark the text as checked (CHECKED_ENV) for the children serve starts.
    """
    check_config(config)
    check_metrics_bind(metrics_address(metrics))
    text = config.path.read_text(encoding="utf-8") if config.path else DEFAULT_TOML
    os.environ[CHECKED_ENV] = text_digest(text)

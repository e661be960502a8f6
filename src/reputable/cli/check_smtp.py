"""``reputable check --smtp`` and ``--message``: the probes' rules, the store, the sample file.

``--smtp`` holds the SMTP dialogue the open-relay probe holds, so it obeys the same rules: the
``[probes]`` allow-list, "seen in your logs" and the per-target interval, read exactly as
``reputable probe relay`` reads them (evidence/sources/probes/runner.py), and its outcome is
recorded as that probe's evidence when a local store exists.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from reputable.checker import catalogue as cat
from reputable.checker.message import MAX_BYTES as MAX_MESSAGE
from reputable.checker.model import Finding, Report
from reputable.checker.runner import check_one
from reputable.checker.service import Request, parse_target
from reputable.checker.settings import Settings
from reputable.config import load_config
from reputable.core.address import Domain, IPAddress
from reputable.core.errors import InputError, SubjectError
from reputable.evidence.parsers.feed_net import feed_network
from reputable.evidence.sources.probes.guard import RateLimiter, in_networks, refusal
from reputable.evidence.sources.probes.model import CLOSED, OPEN, ProbeResult, evidence_of

# The probe runner's own readings of the store ("seen in your logs", "last probed"), so that
# `check --smtp` obeys exactly the rules of `reputable probe relay` (one implementation).
from reputable.evidence.sources.probes.runner import _last_probe, _seen
from reputable.evidence.sources.settings import parse_settings as source_settings
from reputable.store.dsn import open_store
from reputable.store.sqlite import SQLStore

DEFAULT_CONFIG: Final = Path("reputable.toml")


def read_message(path: Path) -> bytes:
    """Return the bytes of the sample message at *path*, or raise InputError saying why not."""
    try:
        size = path.stat().st_size
        if size > MAX_MESSAGE:
            raise InputError(
                f"--message {path}: {size} bytes is more than {MAX_MESSAGE} bytes; give one"
                " message as sent (headers and body, e.g. saved with 'show original')"
            )
        raw = path.read_bytes()
    except IsADirectoryError as exc:
        raise InputError(f"--message {path}: is a folder; give the path of one .eml file") from exc
    except OSError as exc:
        raise InputError(f"--message {path}: cannot read: {exc.strerror or exc}") from exc
    head = raw.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    if b"from:" not in head.lower():
        raise InputError(
            f"--message {path}: no From header in the message head; give one message as sent"
            " (headers and body, e.g. saved with 'show original'), not a body or a mailbox"
        )
    return raw


def existing_store(config_path: Path | None) -> SQLStore | None:
    """Open the local store when a config and its SQLite file exist (never create one)."""
    path = config_path if config_path is not None else DEFAULT_CONFIG
    if not path.exists():
        return None
    local = load_config(path)
    db = Path(local.store_dsn.removeprefix("sqlite:///"))
    if local.store_dsn.startswith("sqlite:///") and not db.exists():
        return None
    return open_store(local)


def smtp_refusal(
    config_path: Path | None,
    store: SQLStore | None,
    address: IPAddress,
    allow: list[str],
    now: datetime,
) -> str | None:
    """Return why ``check --smtp`` may not probe *address* now, or None when it may.

    The rules of ``reputable probe relay``: the ``[probes]`` allow-list (plus ``--allow``), an
    address seen in the ingested logs when ``allow_seen``, and ``per_target`` measured from
    the store's last relay probe of the address (without a store: no memory between runs).
    """
    path = config_path if config_path is not None else DEFAULT_CONFIG
    local = load_config(path) if path.exists() else load_config(None)
    conf = source_settings(local.extra).probes
    try:
        networks = (*conf.allow, *(feed_network(text) for text in allow))
    except SubjectError as exc:
        raise SubjectError(f"--allow: {exc}") from exc
    seen = bool(
        store is not None
        and conf.allow_seen
        and not in_networks(address, networks)
        and _seen(store, address)
    )
    why = refusal(address, networks, seen=seen)
    if why is not None:
        return why
    last = _last_probe(store, "relay", address) if store is not None else None
    limiter = RateLimiter(conf.per_target, conf.per_minute)
    return limiter.refusal(f"relay {address}", now.timestamp(), last_probe=last)


def record_relay(
    store: SQLStore, findings: tuple[Finding, ...], address: IPAddress, port: int, now: datetime
) -> None:
    """Store the relay test's outcome as ``probe:relay`` evidence, as ``probe relay`` would."""
    relay = [f for f in findings if f.check == "relay"]
    if not relay:
        return  # nothing was learnt (no server, or the dialogue broke off)
    result = OPEN if relay[0].is_problem else CLOSED
    probe_result = ProbeResult(
        kind="relay",
        address=address,
        port=port,
        result=result,
        transcript=(f"-- {result}: {relay[0].message} (reputable check --smtp)",),
        facts={"connected": True},
        reason=relay[0].message,
    )
    found = evidence_of(probe_result, now)
    if found is not None:
        store.add_evidence([found])


def checked(
    request: Request,
    settings: Settings,
    zones: tuple[cat.Zone, ...],
    config_path: Path | None,
    smtp_allow: list[str] | None,
) -> Report:
    """Run one check; with ``--smtp`` (*smtp_allow* given) only when the probe rules allow it.

    The relay test's outcome then goes into the local store, when there is one, so the next
    run sees when the address was last probed.
    """
    if smtp_allow is None:
        return asyncio.run(check_one(request, settings, zones))
    target = parse_target(request.subject)
    if isinstance(target, Domain):
        raise InputError(
            f"--smtp probes one IP address, and {target} is a domain: check each MX"
            f" host's address with --smtp (their addresses are listed by `reputable check"
            f" {target}`)"
        )
    now = datetime.now(UTC)
    store = existing_store(config_path)
    try:
        why = smtp_refusal(config_path, store, target, smtp_allow, now)
        if why is not None:
            raise InputError(f"--smtp: {why}")
        report = asyncio.run(check_one(request, settings, zones))
        if store is not None:
            record_relay(store, report.findings, target, request.smtp_port, now)
        return report
    finally:
        if store is not None:
            store.close()

"""``reputable check`` and ``reputable watch``: why an address is blocked and how to fix it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Final, TextIO

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from reputable.checker import catalogue as cat
from reputable.checker.alert import AlertError
from reputable.checker.batch import Sink, check_format, check_many, load_subjects, output_format
from reputable.checker.extra import require
from reputable.checker.model import EXIT_CODE, LocalVerdict, Verdict
from reputable.checker.render import html_page, print_local, print_report
from reputable.checker.report import exit_code, report_json, verdict
from reputable.checker.runner import clients, watch_round
from reputable.checker.selftest import Health, ZoneHealth, selftest
from reputable.checker.service import Request
from reputable.checker.settings import Settings, catalogue, parse_settings
from reputable.checker.watch import load_watch
from reputable.cli.check_smtp import DEFAULT_CONFIG, checked, read_message
from reputable.cli.common import plain_line, state
from reputable.config import load_config
from reputable.core.errors import ConfigError, InputError, ReputableError
from reputable.listings.explain import explain
from reputable.store.dsn import open_store

ERROR_EXIT: Final = EXIT_CODE[Verdict.ERROR]


def load_settings(config: Path | None, origin: str = "", **overrides: Any) -> Settings:
    """Return the ``[checker]`` settings of *config* (or ./reputable.toml) with *overrides*.

    *origin* names where the overrides come from (a watch file's ``[checker]`` table) so that
    error messages point at the right file.
    """
    table: dict[str, Any] = {}
    path = config if config is not None else (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    if path is not None:
        try:
            table = tomllib.loads(path.read_text("utf-8")).get("checker", {})
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    table = {**table, **{k: v for k, v in overrides.items() if v is not None}}
    base = path.parent if path is not None else Path.cwd()
    where = " + ".join(w for w in (f"{path} [checker]" if path else "", origin) if w)
    return parse_settings(table, base, where or "command-line options")


def fail(console: Console, message: str) -> typer.Exit:
    """Print *message* as an error and return the Exit to raise (exit code 2).

    The message is printed as plain text: brackets in it ("[[zone]]") are not Rich markup.
    """
    console.print(Text("error:", style="bold red") + Text(f" {message}"), highlight=False)
    return typer.Exit(ERROR_EXIT)


def writable(path: Path, option: str) -> None:
    """Raise InputError unless a file can be created (or replaced) at *path*."""
    if path.is_dir():
        raise InputError(f"{option} {path}: is a folder; give the path of a file")
    parent = path.parent
    if not parent.is_dir():
        raise InputError(f"{option} {path}: folder {parent} does not exist")
    if not os.access(path if path.exists() else parent, os.W_OK):
        raise InputError(f"{option} {path}: permission denied")


def open_output(path: Path, option: str) -> TextIO:
    """Open *path* for writing, or raise InputError naming the option and the reason."""
    writable(path, option)
    try:
        return path.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise InputError(f"{option} {path}: cannot write: {exc.strerror or exc}") from exc


def guarded(body: Callable[[], int]) -> None:
    """Run *body*; turn its result into the exit code and any ReputableError into a message."""
    err = Console(stderr=True)
    try:
        code = body()
    except ReputableError as exc:
        # check and watch keep their documented verdict codes (docs/checker.md): every error,
        # a missing extra included, is the `error` verdict, exit 2.
        raise fail(err, str(exc)) from None
    except KeyboardInterrupt:
        raise fail(err, "interrupted") from None
    raise typer.Exit(code)


#: Fields of a catalogue entry and of a self-test result under --json/--plain (docs/checker.md).
ZONE_FIELDS: Final = ("zone", "kind", "policy", "ipv6", "operator", "closed")
HEALTH_FIELDS: Final = ("zone", "health", "detail")


def print_records(records: list[dict[str, Any]], fields: tuple[str, ...], plain: bool) -> None:
    """Print *records* as one JSON array, or as tab-separated lines with *plain* (docs/cli.md)."""
    if plain:
        for record in records:
            sys.stdout.write(plain_line(record, fields) + "\n")
    else:
        sys.stdout.write(json.dumps(records, indent=2) + "\n")


def list_zones(
    console: Console, zones: tuple[cat.Zone, ...], *, as_json: bool = False, plain: bool = False
) -> int:
    """Print the catalogue: a table, or for scripts one record per zone (--json, --plain)."""
    if as_json or plain:
        records = [
            {
                "zone": z.name,
                "kind": z.kind.value,
                "policy": "allow" if z.allow else "block",
                "ipv6": z.ipv6,
                "operator": z.operator,
                "closed": z.closed,
            }
            for z in zones
        ]
        print_records(records, ZONE_FIELDS, plain)
        return 0
    table = Table(title=f"{len(zones)} zones", title_justify="left")
    for column in ("zone", "kind", "policy", "IPv6", "operator", "status"):
        table.add_column(column, overflow="fold")
    for z in zones:
        table.add_row(
            z.name,
            z.kind.value,
            "allow" if z.allow else "block",
            "yes" if z.ipv6 else "",
            z.operator,
            f"closed: {z.closed}" if z.closed else "",
        )
    console.print(table)
    return 0


def run_selftest(
    console: Console,
    settings: Settings,
    zones: tuple[cat.Zone, ...],
    *,
    as_json: bool = False,
    plain: bool = False,
) -> int:
    """Test every zone's RFC 5782 test points; exit 0 only if all are healthy."""

    async def go() -> tuple[ZoneHealth, ...]:
        client, _ = clients(settings)
        async with client:
            return await selftest(zones, client)

    results = asyncio.run(go())
    bad = sum(r.health is not Health.OK for r in results)
    if as_json or plain:
        records = [{"zone": r.zone, "health": r.health.value, "detail": r.detail} for r in results]
        print_records(records, HEALTH_FIELDS, plain)
        return 0 if not bad else 1
    table = Table(title="zone self-test (RFC 5782 test points)", title_justify="left")
    for column in ("zone", "health", "detail"):
        table.add_column(column, overflow="fold")
    for r in results:
        style = "green" if r.health is Health.OK else "bold red"
        table.add_row(r.zone, f"[{style}]{r.health.value}[/]", r.detail)
    console.print(table)
    console.print(f"{len(results) - bad} of {len(results)} zones healthy")
    return 0 if not bad else 1


def run_batch(
    file: Path,
    out: Path | None,
    fmt: str | None,
    template: Request,
    settings: Settings,
    zones: tuple[cat.Zone, ...],
) -> int:
    """Check every subject of *file*, streaming results to *out* (or stdout) with progress."""
    chosen_format = output_format(out, fmt) if out is not None else fmt or "jsonl"
    check_format(chosen_format)  # before the output file is created or truncated
    subjects = load_subjects(file)
    handle = open_output(out, "--out") if out is not None else sys.stdout
    try:
        sink = Sink(handle, chosen_format)
        verdicts = asyncio.run(_stream(subjects, template, settings, zones, sink))
    finally:
        if out is not None:
            handle.close()
    for worst in (Verdict.LISTED, Verdict.ERROR, Verdict.INCOMPLETE):
        if worst in verdicts:
            return EXIT_CODE[worst]
    return 0


async def _stream(
    subjects: list[str], template: Request, settings: Settings, zones: tuple[cat.Zone, ...],
    sink: Sink,
) -> set[Verdict]:  # fmt: skip
    seen: set[Verdict] = set()
    client, sync = clients(settings)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task("checking", total=len(subjects))
        async with client:
            async for report in check_many(subjects, template, zones, client, sync):
                sink.write(report)
                seen.add(verdict(report))
                progress.advance(task)
    return seen


Opt = typer.Option


def local_verdict(config_path: Path | None, subject: str) -> LocalVerdict | None:
    """Return this machine's own listing verdict on *subject*, when a local store exists."""
    path = config_path if config_path is not None else DEFAULT_CONFIG
    if not path.exists():
        return None
    local = load_config(path)
    db = Path(local.store_dsn.removeprefix("sqlite:///"))
    if local.store_dsn.startswith("sqlite:///") and not db.exists():
        return None
    store = open_store(local)
    try:
        data = explain(store, local, subject, datetime.now(UTC)).to_json()
    finally:
        store.close()
    return LocalVerdict(
        subject=data["subject"],
        listed=bool(data["listed"]),
        summary=f"{data['subject']} is LISTED here"
        if data["listed"]
        else f"{data['subject']} is not listed here"
        f" (reputation {data['score']}/100, {data['bucket']})",
        details=tuple(
            f"{item['cause']} ({item['code']}) until {item['until'] or 'removed'}: {item['reason']}"
            for item in data["listings"]
        ),
        document=data,
    )


def batch_conflicts(
    subject: str | None, html: Path | None, smtp: bool, message: Path | None = None
) -> list[str]:
    """Return the options that make no sense with --file, each with what to do instead."""
    wrong = []
    if message is not None:
        wrong.append("--message with --file: check a sample message with its one sending IP")
    if subject:
        wrong.append(f"a SUBJECT ({subject!r}) and --file: put it in the file, or drop --file")
    if html is not None:
        wrong.append("--html with --file: batch results go to --out (.csv or JSON lines)")
    if smtp:
        wrong.append("--smtp with --file: the SMTP probe checks one address at a time")
    return wrong


def no_zones_reason(zones: tuple[cat.Zone, ...]) -> str:
    """Return why no zone is left to query from *zones* (called when the selection is empty)."""
    if not zones:
        return "the catalogue is empty (--no-builtin without --zone-file or [[checker.zone]])"
    return (
        f"all {len(zones)} zones of the catalogue are marked closed"
        " (name one with --zone, or pass --include-closed)"
    )


def check_command(
    ctx: typer.Context,
    subject: Annotated[str | None, typer.Argument(help="IP address or domain to check.")] = None,
    domain: Annotated[
        str | None, Opt(help="Sending domain: also check its SPF/DMARC/DKIM.")
    ] = None,
    helo: Annotated[str | None, Opt(help="HELO/EHLO name the server uses.")] = None,
    nameserver: Annotated[str | None, Opt(help="DNS server HOST:PORT, or 'system'.")] = None,
    timeout: Annotated[float | None, Opt(help="Seconds per DNS query attempt.")] = None,
    retries: Annotated[int | None, Opt(help="Retries after a timeout (default 1).")] = None,
    concurrency: Annotated[int | None, Opt(help="Max DNS queries in flight (500).")] = None,
    as_json: Annotated[bool, Opt("--json", help="Print the documented JSON document.")] = False,
    plain: Annotated[
        bool,
        Opt("--plain", help="One line per list: subject, zone, kind, status, codes, causes."),
    ] = False,
    html: Annotated[Path | None, Opt(help="Also write a self-contained HTML report.")] = None,
    zone_file: Annotated[list[Path] | None, Opt(help="Extra zones (catalogue format).")] = None,
    no_builtin: Annotated[
        bool, Opt("--no-builtin", help="Do not use the shipped catalogue.")
    ] = False,
    zone: Annotated[list[str] | None, Opt(help="Only query these zones.")] = None,
    include_closed: Annotated[bool, Opt(help="Also query lists that shut down.")] = False,
    dkim_selector: Annotated[list[str] | None, Opt(help="DKIM selector to check.")] = None,
    no_diagnostics: Annotated[
        bool, Opt("--no-diagnostics", help="Only query the DNS lists.")
    ] = False,
    all_zones: Annotated[bool, Opt("--all", help="Show clean lists too.")] = False,
    list_zones_: Annotated[bool, Opt("--list-zones", help="Print the catalogue.")] = False,
    config: Annotated[
        Path | None,
        Opt("--config", hidden=True, help="Same as the global --config (before the command)."),
    ] = None,
    file: Annotated[Path | None, Opt(help="Check every subject listed in this file.")] = None,
    out: Annotated[Path | None, Opt(help="Write batch results here (.csv or JSON lines).")] = None,
    fmt: Annotated[str | None, Opt("--format", help="Batch output: csv or jsonl.")] = None,
    smtp: Annotated[bool, Opt(help="Probe the IP's SMTP server (banner, TLS, relay).")] = False,
    smtp_port: Annotated[int, Opt(help="Port for --smtp.")] = 25,
    allow: Annotated[
        list[str] | None, Opt(help="With --smtp: also allow probing this CIDR (repeatable).")
    ] = None,
    message: Annotated[
        Path | None,
        Opt(help="A sample message as sent (.eml): DKIM, alignment, one-click unsubscribe."),
    ] = None,
    smtp_ca: Annotated[
        Path | None, Opt(help="With --smtp: verify the STARTTLS certificate with this CA file.")
    ] = None,
    selftest: Annotated[bool, Opt(help="Test each zone with its RFC 5782 test points.")] = False,
) -> None:
    """Check an IP or domain against public DNS lists and mail-setup diagnostics."""

    def body() -> int:
        console = Console()
        config_path = config or state(ctx).config_path
        settings = load_settings(
            config_path,
            nameserver=nameserver,
            timeout=timeout,
            retries=retries,
            concurrency=concurrency,
        )
        zones = catalogue(settings, zone_file or (), builtin=not no_builtin)
        if as_json and plain:
            raise InputError("--json and --plain: choose one output format")
        if list_zones_:
            return list_zones(console, zones, as_json=as_json, plain=plain)
        chosen = cat.select(zones, names=zone or (), include_closed=include_closed)
        if not chosen:
            raise InputError(f"no lists to query: {no_zones_reason(zones)}")
        if selftest:
            return run_selftest(console, settings, chosen, as_json=as_json, plain=plain)
        if not no_diagnostics:
            require()  # SPF/DMARC/DKIM need the checker extra; the lists alone do not
        request = Request(
            subject=subject or "",
            domain=domain or "",
            helo=helo or "",
            dkim_selectors=tuple(dkim_selector or ()) or settings.dkim_selectors,
            diagnostics=not no_diagnostics,
            smtp_port=smtp_port if smtp else 0,
            smtp_cafile=str(smtp_ca) if smtp_ca is not None else "",
            message=read_message(message) if message is not None else b"",
        )
        if file is not None:
            wrong = batch_conflicts(subject, html, smtp, message)
            if wrong:
                raise InputError("cannot combine " + "; ".join(wrong))
            return run_batch(file, out, fmt, request, settings, chosen)
        if out is not None or fmt is not None:
            raise InputError("--out and --format write batch results: use them with --file")
        if not subject:
            raise InputError("give an IP address or domain to check (or --file, --list-zones)")
        if html is not None:
            writable(html, "--html")  # fail before the work, not after it
        report = checked(request, settings, chosen, config_path, (allow or []) if smtp else None)
        local = local_verdict(config_path, subject)
        if as_json:
            document = report_json(report)
            if local is not None:
                document["local"] = dict(local.document)
            sys.stdout.write(json.dumps(document, indent=2) + "\n")
        elif plain:
            columns = ("subject", "zone", "kind", "status", "codes", "causes")
            for entry in report_json(report)["listings"]:
                if all_zones or entry["status"] != "clean":
                    row = {**entry, "subject": entry["subject"] or report.subject}
                    sys.stdout.write(plain_line(row, columns) + "\n")
        else:
            print_report(console, report, all_zones=all_zones)
            if local is not None:
                print_local(console, local)
        if html is not None:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            page = html_page([report], generated=stamp, local=() if local is None else (local,))
            try:
                html.write_text(page, "utf-8")
            except OSError as exc:
                raise InputError(f"--html {html}: cannot write: {exc.strerror or exc}") from exc
        if local is not None and local.listed:
            return EXIT_CODE[Verdict.LISTED]  # listed here is as listed as listed anywhere
        return exit_code(report)

    guarded(body)


def watch_command(
    watch_file: Annotated[Path, typer.Argument(help="watch.toml: what to watch, where to alert.")],
    once: Annotated[bool, Opt(help="Run one round and exit (for cron or tests).")] = False,
    nameserver: Annotated[str | None, Opt(help="DNS server HOST:PORT, or 'system'.")] = None,
    zone_file: Annotated[list[Path] | None, Opt(help="Extra zones (catalogue format).")] = None,
    no_builtin: Annotated[
        bool, Opt("--no-builtin", help="Do not use the shipped catalogue.")
    ] = False,
    zone: Annotated[list[str] | None, Opt(help="Only query these zones.")] = None,
    config: Annotated[
        Path | None,
        Opt("--config", hidden=True, help="Same as the global --config (before the command)."),
    ] = None,
) -> None:
    """Re-check IPs, ranges and domains periodically and alert when anything changes."""

    def body() -> int:
        console = Console(stderr=True)
        watch = load_watch(watch_file)
        require("reputable watch")
        origin = f"{watch_file} [checker]" if watch.checker else ""
        settings = load_settings(config, origin, **{**watch.checker, "nameserver": nameserver})
        zones = catalogue(settings, zone_file or (), builtin=not no_builtin)
        chosen = cat.select(zones, names=zone or ())
        if not chosen:
            raise InputError(f"no lists to query: {no_zones_reason(zones)}")
        while True:
            now = datetime.now(UTC)
            try:
                changes = asyncio.run(watch_round(watch, settings, chosen, now))
            except AlertError as exc:
                console.print(
                    Text("alert failed", style="bold red")
                    + Text(f" (will retry next round): {exc}"),
                    highlight=False,
                )
                if once:
                    return ERROR_EXIT
            else:
                console.print(f"{now:%Y-%m-%d %H:%M:%SZ}: {len(changes)} change(s)")
                for change in changes:
                    console.print(
                        f"  {change.subject}: {change.kind.value}: {change.detail}",
                        markup=False,
                        highlight=False,
                    )
            if once:
                return 0
            time.sleep(watch.interval.total_seconds())

    guarded(body)


def register(app: typer.Typer) -> None:
    """Add the ``check`` and ``watch`` commands to *app*."""
    app.command("check")(check_command)
    app.command("watch")(watch_command)

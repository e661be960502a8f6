"""`reputable ingest maillog|arf` and `reputable report outbound`: mail-server evidence."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from reputable.cli.common import (
    EXIT_FOUND,
    Format,
    JsonOpt,
    PlainOpt,
    action_format,
    console,
    err_console,
    now_option,
    print_json,
    show_summary,
    state,
)
from reputable.cli.ingest import (
    DryRunOpt,
    FollowOpt,
    FromStart,
    FromStartOpt,
    NowOpt,
    TimezoneOpt,
)
from reputable.core.errors import InputError
from reputable.evidence.mailreport import OutboundReport, outbound_report
from reputable.evidence.model import Evidence
from reputable.evidence.parsers.mailevent import ALL_EVENTS
from reputable.evidence.parsers.maillog import PARSERS
from reputable.evidence.parsers.syslog_time import TimeParser
from reputable.evidence.sources.arf import ArfRun, ingest_reports
from reputable.evidence.sources.inputs import (
    check_inputs,
    is_stream,
    label,
    read_chunks,
    zone_named,
)
from reputable.evidence.sources.maillog import (
    SOURCE,
    MaillogSettings,
    MailRun,
    config_params,
    follow_logs,
    ingest_files,
    maillog_settings,
)
from reputable.store.dsn import open_store

report_app = typer.Typer(help="Reports about your own mail traffic.", no_args_is_help=True)

TOP = 10
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="auto, postfix or exim.")]


def register_ingest(ingest_app: typer.Typer, app: typer.Typer) -> None:
    """Add `ingest maillog`, `ingest arf` and `report outbound`."""
    ingest_app.command("maillog")(ingest_maillog)
    ingest_app.command("arf")(ingest_arf)
    report_app.command("outbound")(report_outbound)
    app.add_typer(report_app, name="report")


def ingest_maillog(
    ctx: typer.Context,
    paths: Annotated[
        list[Path],
        typer.Argument(help="Postfix or Exim logs; .gz rotated files too; - for standard input."),
    ],
    follow: FollowOpt = False,
    from_start: FromStartOpt = False,
    dry_run: DryRunOpt = False,
    jsonl: Annotated[
        bool, typer.Option("--jsonl", help="With --dry-run: one JSON object per understood line.")
    ] = False,
    fmt: FormatOpt = "auto",
    source: Annotated[str, typer.Option("--source", help="Source name of the evidence.")] = SOURCE,
    now: NowOpt = None,
    timezone: TimezoneOpt = None,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Read mail logs into evidence: harvest, spam traps, pregreet, brute force (summary at the end).

    --follow resumes where the last --follow of these files stopped (--from-start: from the
    beginning); without it the files are read whole.
    """
    out = action_format(as_json, plain)
    if fmt != "auto" and fmt not in PARSERS:
        raise InputError(f"--format {fmt!r}: use auto, {', '.join(PARSERS)}")
    if jsonl and not dry_run:
        raise InputError("--jsonl prints what each line means and needs --dry-run")
    if jsonl and out is not Format.TABLE:
        raise InputError("--jsonl prints one object per line: drop --json/--plain")
    if from_start and not follow:
        raise InputError("--from-start goes with --follow (without it the files are read whole)")
    config = state(ctx).config
    settings = maillog_settings(config.extra, config.path.parent if config.path else Path.cwd())
    if timezone is not None:
        settings = dataclasses.replace(
            settings, timezone=zone_named(timezone, "--timezone", InputError)
        )
    reference = now_option(now)
    times = TimeParser(reference, settings.timezone)
    run = MailRun(config_params(config), times, source, fmt)
    check_inputs(paths)
    if follow and any(is_stream(p) for p in paths):
        raise InputError(
            "--follow follows growing files; a pipe or - is read as it comes without it"
            " (tail -F mail.log | reputable ingest maillog -)"
        )
    started = time.perf_counter()
    if dry_run:
        # A dry run parses every event, so its summary's "understood" is exactly the lines
        # --jsonl prints; a real ingest counts the events no detector uses by their text.
        run.wanted = ALL_EVENTS
    if dry_run and jsonl:
        for path in paths:
            line = 1
            kind = ""
            for chunk in read_chunks(path):
                kind = kind or run.format_of(chunk)
                for ev in run.events(chunk, label(path), line, kind):
                    typer.echo(json.dumps(ev.to_json(), ensure_ascii=False))
                line += chunk.count("\n")
        return
    if follow:
        if dry_run:
            raise InputError(
                "--follow stores evidence as it goes; it cannot be combined with --dry-run"
            )
        followed = dataclasses.replace(
            settings, paths=tuple(p.resolve() for p in paths), format=fmt, source=source
        )
        _follow(ctx, followed, run, None if now is None else reference, from_start=from_start)
        return
    store = None if dry_run else open_store(config)
    kept: list[Evidence] = []

    def sink(items: list[Evidence]) -> int:
        if store is None:
            kept.extend(items)
            return 0
        return store.add_evidence(items)

    try:
        stored = ingest_files(run, paths, sink)
    finally:
        if store is not None:
            store.close()
    seconds = time.perf_counter() - started
    nothing = bool(run.tally.read and not run.tally.recognised)
    if out is not Format.TABLE:
        show_summary(out, _summary_json(run, stored, seconds, dry_run))
        if nothing:
            err_console.print(
                "no Postfix or Exim line in any file: is this a mail log?", highlight=False
            )
            raise typer.Exit(EXIT_FOUND)
        return
    _summary(run, stored, seconds, dry_run)
    if nothing:
        console.print(
            "[red]no Postfix or Exim line in any file[/red]: is this a mail log?"
            " (--format postfix|exim when the program tag is unusual)",
            highlight=False,
        )
        raise typer.Exit(EXIT_FOUND)


def _summary_json(run: MailRun, stored: int, seconds: float, dry_run: bool) -> dict[str, object]:
    """Return the --json summary of a maillog ingest (docs/cli.md)."""
    t = run.tally
    return {
        "source": run.source,
        "lines": t.read,
        "seconds": round(seconds, 3),
        "understood": t.understood,
        "no_event": t.no_event,
        "not_understood": t.not_understood,
        "examples": list(t.examples),
        "events": {k.value: v for k, v in t.events.most_common()},
        "evidence": sum(run.by_cause.values()),
        "stored": stored,
        "dry_run": dry_run,
        "by_cause": dict(run.by_cause.most_common()),
        "top_ips": [{"ip": ip, "count": n} for ip, n in run.by_ip.most_common(TOP)],
    }


def _follow(
    ctx: typer.Context,
    settings: MaillogSettings,
    run: MailRun,
    fixed: datetime | None,
    *,
    from_start: bool = False,
) -> None:
    """Follow *settings.paths* through the one follow path `serve` uses (Ctrl-C stops)."""
    store = open_store(state(ctx).config)
    positions = FromStart(store) if from_start else store
    stop = asyncio.Event()

    def clock() -> datetime:
        return fixed if fixed is not None else datetime.now(UTC)

    def report(path: Path, added: int) -> None:
        console.print(f"{path}: {added} new evidence", highlight=False)

    console.print(f"following {len(settings.paths)} file(s); Ctrl-C to stop")
    try:
        asyncio.run(
            follow_logs(settings, run.params, positions, stop, clock=clock, on_evidence=report)
        )
    except KeyboardInterrupt:
        pass
    finally:
        store.close()


def _summary(run: MailRun, stored: int, seconds: float, dry_run: bool) -> None:
    t = run.tally
    rate = t.read / seconds if seconds > 0 else 0.0
    console.print(
        f"{t.read} lines read in {seconds:.2f} s ({rate:,.0f} lines/s): {t.understood} understood,"
        f" {t.no_event} recognised without an event, {t.not_understood} not understood",
        highlight=False,
    )
    for example in t.examples:
        console.print(f"  not understood: {example}", highlight=False, markup=False)
    for where, lines in t.unrecognised():
        console.print(
            f"  no Postfix or Exim line in {where} ({lines} lines)", highlight=False, markup=False
        )
    if t.events:
        console.print(
            "events: " + ", ".join(f"{k.value} {v}" for k, v in t.events.most_common()),
            highlight=False,
        )
    total = sum(run.by_cause.values())
    what = "would be stored (dry run)" if dry_run else f"{stored} new stored"
    console.print(
        f"evidence: {total} ({what})"
        + (
            "; by cause: " + ", ".join(f"{k} {v}" for k, v in run.by_cause.most_common())
            if total
            else ""
        ),
        highlight=False,
    )
    _print_top(run.by_ip)


def _print_top(by_ip: Counter[str]) -> None:
    if by_ip:
        console.print(
            "top IPs: " + ", ".join(f"{ip} ({n})" for ip, n in by_ip.most_common(TOP)),
            highlight=False,
        )


def ingest_arf(
    ctx: typer.Context,
    paths: Annotated[
        list[Path],
        typer.Argument(help="ARF messages: .eml files, mbox files, Maildir folders; - for stdin."),
    ],
    dry_run: DryRunOpt = False,
    source: Annotated[str, typer.Option("--source", help="Source name of the evidence.")] = "arf",
    now: NowOpt = None,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Read feedback-loop complaints (RFC 5965) into spam evidence; malformed reports are counted."""
    out = action_format(as_json, plain)
    run = ArfRun(source=source, now=now_option(now))
    store = None if dry_run else open_store(state(ctx).config)
    try:
        items = ingest_reports(run, paths)
        stored = store.add_evidence(items) if store is not None else 0
    finally:
        if store is not None:
            store.close()
    if out is not Format.TABLE:
        show_summary(
            out,
            {
                "source": source,
                "reports": run.reports,
                "evidence": len(items),
                "stored": stored,
                "dry_run": dry_run,
                "duplicates": run.duplicates,
                "malformed": [{"where": w, "why": y} for w, y in run.malformed],
                "top_ips": [{"ip": ip, "count": n} for ip, n in run.by_ip.most_common(TOP)],
            },
        )
        return
    console.print(
        f"{run.reports} reports read: {len(items)} evidence"
        f" ({'dry run' if dry_run else f'{stored} new stored'}), {run.duplicates} duplicates,"
        f" {len(run.malformed)} malformed",
        highlight=False,
    )
    for where, why in run.malformed[:20]:
        console.print(f"  malformed: {where}: {why}", highlight=False, markup=False)
    _print_top(run.by_ip)


def report_outbound(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Your own server's Postfix or Exim logs.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the documented JSON.")] = False,
    plain: Annotated[
        bool,
        typer.Option(
            "--plain", help="One line per sending identity and destination, tab-separated."
        ),
    ] = False,
    fmt: FormatOpt = "auto",
    domains: Annotated[
        int, typer.Option("--domains", help="Destination domains to show per sending identity.")
    ] = 10,
    now: NowOpt = None,
) -> None:
    """Per sending identity: delivered, bounced, deferred, unknown-recipient bounces, by destination.

    An identity is Exim's outgoing interface (I=...) when logged, else the log host and
    delivery service (Postfix logs no source address), as docs/evidence-mail.md says.
    """
    out = action_format(as_json, plain)
    config = state(ctx).config
    settings = maillog_settings(config.extra, config.path.parent if config.path else Path.cwd())
    times = TimeParser(now_option(now), settings.timezone)
    check_inputs(paths)
    report = outbound_report(_chunks(paths), times=times, fmt=fmt)
    if out is Format.JSON:
        print_json(report.to_json(domains))
        return
    if out is Format.PLAIN:
        _plain_outbound(report, domains)
        return
    _print_outbound(report, domains)


def _plain_outbound(report: OutboundReport, domains: int) -> None:
    """Print ip, domain ('*' for the IP's total), recipients, delivered, bounced, deferred, unknown."""
    for s in report.senders:
        typer.echo(f"{s.ip}\t*\t{s.total}\t{s.delivered}\t{s.bounced}\t{s.deferred}\t{s.unknown}")
        for d in s.domains[:domains]:
            typer.echo(
                f"{s.ip}\t{d.domain}\t{d.total}\t{d.delivered}\t{d.bounced}\t{d.deferred}\t{d.unknown}"
            )


def _chunks(paths: Iterable[Path]) -> Iterable[tuple[str, str]]:
    for path in paths:
        for chunk in read_chunks(path):
            yield label(path), chunk


def _print_outbound(report: OutboundReport, domains: int) -> None:
    if not report.senders:
        console.print("no outbound deliveries found")
        return
    for sender in report.senders:
        console.print(
            f"{sender.ip}: {sender.total} recipients: {sender.delivered} delivered, {sender.bounced} bounced"
            f" ({sender.bounce_rate:.1%}), {sender.deferred} deferred; unknown recipient (5.1.1)"
            f" {sender.unknown} ({sender.unknown_rate:.1%})",
            highlight=False,
        )
        for d in sender.domains[:domains]:
            console.print(
                f"  {d.domain}: {d.total} recipients, bounced {d.bounced} ({d.bounce_rate:.1%}),"
                f" unknown {d.unknown} ({d.unknown_rate:.1%}), deferred {d.deferred}",
                highlight=False,
            )
        for warning in sender.warnings:
            console.print(f"  [yellow]warning[/yellow]: {warning}", highlight=False)

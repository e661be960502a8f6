"""`reputable ingest netlog FILE [--format auto|sshd|dovecot|nginx|apache|netfilter|flows]`: network logs into evidence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from reputable.cli.common import (
    Format,
    JsonOpt,
    PlainOpt,
    action_format,
    now_option,
    show_summary,
    state,
)
from reputable.cli.ingest import DryRunOpt, NowOpt, TimezoneOpt
from reputable.core.errors import InputError
from reputable.evidence.detectors.netconfig import net_settings
from reputable.evidence.model import Evidence
from reputable.evidence.parsers.net import NET_PARSERS
from reputable.evidence.parsers.netbase import NetEvent, NetLine
from reputable.evidence.sources.inputs import zone_named
from reputable.evidence.sources.netlog import NetlogSummary, check_format, ingest_netlog
from reputable.store.dsn import open_store


def register_ingest(ingest_app: typer.Typer, app: typer.Typer) -> None:
    """Add `ingest netlog` to the ingest group."""
    del app
    ingest_app.command("netlog")(netlog_command)


def netlog_command(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The log file (.gz too); - for standard input.")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help=f"auto (from the first lines) or one of: {', '.join(NET_PARSERS)}.",
        ),
    ] = "auto",
    dry_run: DryRunOpt = False,
    jsonl: Annotated[
        bool,
        typer.Option(
            "--jsonl", help="Print one JSON object per understood line (summary on stderr)."
        ),
    ] = False,
    now: NowOpt = None,
    source: Annotated[
        str | None,
        typer.Option("--source", help="Evidence source name (default netlog:FORMAT:PATH)."),
    ] = None,
    timezone: TimezoneOpt = None,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Run the network detectors (brute force, probing, floods, scans, sinkholes) over a log."""
    out = action_format(as_json, plain)
    if jsonl and out is not Format.TABLE:
        raise InputError("--jsonl prints one object per line: drop --json/--plain")
    check_format(fmt)
    tz = zone_named(timezone or "UTC", "--timezone", InputError)
    config = state(ctx).config
    settings = net_settings(config.extra)
    reference = now_option(now)
    pending: list[Evidence] = []

    def show(item: NetEvent | NetLine, tags: tuple[str, ...]) -> None:
        if isinstance(item, NetEvent):
            record = item.to_json()
            if tags != (item.event,):
                record["tags"] = list(tags)
            typer.echo(json.dumps(record, ensure_ascii=False))

    def keep(items: list[Evidence]) -> int:
        pending.extend(items)
        return 0

    if dry_run:
        summary = ingest_netlog(
            path,
            fmt,
            settings,
            now=reference,
            sink=keep,
            source=source,
            on_item=show if jsonl else None,
            tz=tz,
        )
    else:
        store = open_store(config)
        try:
            summary = ingest_netlog(
                path,
                fmt,
                settings,
                now=reference,
                sink=store.add_evidence,
                source=source,
                on_item=show if jsonl else None,
                tz=tz,
            )
        finally:
            store.close()
    if out is not Format.TABLE:
        document = summary.to_json()
        document["dry_run"] = dry_run
        if dry_run:
            document["would_store"] = [
                {
                    "subject": str(item.subject),
                    "cause": item.cause.value,
                    "scenario": item.detail.get("scenario"),
                    "events": item.detail.get("events"),
                }
                for item in pending
            ]
        show_summary(out, document)
        return
    _print_summary(summary, pending, dry_run=dry_run, to_stderr=jsonl)


def _print_summary(
    summary: NetlogSummary, pending: list[Evidence], *, dry_run: bool, to_stderr: bool
) -> None:
    def out(text: str) -> None:
        typer.echo(text, err=to_stderr)

    rate = summary.lines / summary.seconds if summary.seconds > 0 else 0.0
    out(
        f"{summary.path} ({summary.format}): {summary.lines} lines in {summary.seconds:.2f} s"
        f" ({rate:,.0f} lines/s); {summary.understood} understood, {summary.other} from other"
        f" programs or blank, {summary.unknown} not understood"
    )
    for lineno, text in summary.examples:
        out(f"  not understood: {summary.path}:{lineno}: {text}")
    if summary.events:
        out("events: " + ", ".join(f"{k} {v}" for k, v in summary.events))
    total = sum(n for _, n in summary.evidence)
    verb = "would store" if dry_run else f"stored {summary.stored} new of"
    detail = ", ".join(f"{k} {v}" for k, v in summary.evidence)
    out(f"evidence: {verb} {total} compromised" + (f" ({detail})" if detail else ""))
    if summary.top_ips:
        out("top IPs: " + ", ".join(f"{ip} {n}" for ip, n in summary.top_ips))
    for item in pending[:20]:
        out(
            f"  {item.subject} {item.cause.value} {item.detail.get('scenario')}:"
            f" {item.detail.get('events')} events {item.detail.get('first_seen')}"
            f" .. {item.detail.get('last_seen')}"
        )
    if len(pending) > 20:
        out(f"  ... and {len(pending) - 20} more")

"""`reputable feed ...`: add, sync, list and remove imported feeds."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import typer

from reputable.cli.common import (
    EXIT_FAILURE,
    Format,
    JsonOpt,
    PlainOpt,
    action_format,
    console,
    output_format,
    print_json,
    show_records,
    show_result,
    state,
)
from reputable.core.clock import format_instant, parse_duration
from reputable.core.errors import InputError
from reputable.evidence.parsers.feed_kinds import FEED_PARSERS
from reputable.evidence.parsers.feed_model import CsvMapping, FeedDefinition, check_name
from reputable.evidence.sources.feed_fetch import check_url
from reputable.listings.feeds import SyncReport, sync_feeds
from reputable.store.dsn import open_store

feed_app = typer.Typer(
    help="Imported feeds: IP/CIDR lists and malware/phishing URL lists.", no_args_is_help=True
)


def _report_json(report: SyncReport) -> dict[str, object]:
    return {
        "name": report.name,
        "status": report.status,
        "entries": report.entries,
        "added": report.added,
        "removed": report.removed,
        "skipped": list(report.skipped),
        "evidence": report.evidence,
        "unresolved": report.unresolved,
        "error": report.error,
    }


@feed_app.command("add")
def feed_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Short name; listings get source feed:NAME.")],
    url: Annotated[str, typer.Argument(help="file:///path, http://... or https://...")],
    kind: Annotated[
        str,
        typer.Option(
            "--kind", help="drop, plain, urlhaus, phishtank, openphish, csv, crowdsec or fail2ban."
        ),
    ],
    refresh: Annotated[str, typer.Option("--refresh", help="Sync interval, e.g. 1h.")] = "1h",
    broad: Annotated[
        bool | None,
        typer.Option(
            "--broad/--no-broad",
            help="May entries be broader than listings.max_prefix? [yes for drop, else no]",
        ),
    ] = None,
    column: Annotated[
        str, typer.Option("--column", help="csv: column of the IP/CIDR or URL (name or index).")
    ] = "0",
    reason_column: Annotated[
        str | None, typer.Option("--reason-column", help="csv: column of the reason.")
    ] = None,
    delimiter: Annotated[str, typer.Option("--delimiter", help="csv: field separator.")] = ",",
    header: Annotated[
        bool, typer.Option("--header/--no-header", help="csv: first row names the columns.")
    ] = False,
    holds: Annotated[str, typer.Option("--holds", help="csv: 'ip' or 'url' entries.")] = "ip",
    sync: Annotated[bool, typer.Option("--sync/--no-sync", help="Sync it right away.")] = True,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Add feed NAME at URL, read as KIND, synced every REFRESH (exit 3 if the first sync fails)."""
    fmt = action_format(as_json, plain)
    if kind not in FEED_PARSERS:
        raise InputError(f"--kind {kind!r}: use one of {', '.join(FEED_PARSERS)}")
    if holds not in ("ip", "url"):
        raise InputError(f"--holds {holds!r}: use ip or url")
    if len(delimiter) != 1:
        raise InputError(f"--delimiter {delimiter!r}: one character, e.g. ',' or ';'")
    every = parse_duration(refresh)
    if every.total_seconds() < 60:
        raise InputError(f"--refresh {refresh}: at least 1m, feeds are not to be hammered")
    definition = FeedDefinition(
        name=check_name(name),
        url=check_url(url),
        kind=kind,
        refresh=every,
        csv=CsvMapping(
            column=column,
            reason_column=reason_column,
            delimiter=delimiter,
            header=header,
            holds=holds,
        ),
        broad=kind == "drop" if broad is None else broad,
    )
    config = state(ctx).config
    store = open_store(config)
    reports: list[SyncReport] = []
    try:
        store.add_feed(definition, now=datetime.now(UTC))
        if sync:
            reports = asyncio.run(sync_feeds(config, store, names=[name]))
    finally:
        store.close()
    if fmt is Format.JSON:
        print_json(
            {
                "name": name,
                "kind": kind,
                "url": definition.url,
                "refresh": refresh,
                "sync": [_report_json(r) for r in reports],
            }
        )
    else:
        if fmt is Format.TABLE:
            console.print(f"added feed {name} ({kind}, every {refresh})", highlight=False)
        _print_reports(reports, fmt)
    if any(r.error for r in reports):
        raise typer.Exit(EXIT_FAILURE)


#: Columns of a sync result in plain output.
SYNC_COLUMNS = ("name", "status", "entries", "added", "removed", "evidence", "unresolved", "error")


def _print_reports(reports: list[SyncReport], fmt: Format = Format.TABLE) -> None:
    if fmt is Format.PLAIN:
        show_records(fmt, [_report_json(r) for r in reports], SYNC_COLUMNS)
        return
    for r in reports:
        if r.error:
            console.print(
                f"[red]{r.name}: error[/red]: {r.error} (kept {r.entries} entries)",
                highlight=False,
            )
            continue
        line = f"{r.name}: {r.status}, {r.entries} entries, +{r.added} -{r.removed}"
        if r.evidence or r.unresolved:
            line += f", {r.evidence} evidence, {r.unresolved} hosts unresolved"
        console.print(line, highlight=False)
        for why in r.skipped[:10]:
            console.print(f"  skipped: {why}", highlight=False)
        if len(r.skipped) > 10:
            console.print(f"  ... and {len(r.skipped) - 10} more skipped", highlight=False)


@feed_app.command("sync")
def feed_sync(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="One feed; all feeds when omitted.")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Accept an empty or much smaller feed.")
    ] = False,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Download and apply feeds now; a failing feed keeps its last good data (exit 3)."""
    fmt = action_format(as_json, plain)
    config = state(ctx).config
    store = open_store(config)
    try:
        reports = asyncio.run(sync_feeds(config, store, names=[name] if name else [], force=force))
    finally:
        store.close()
    if fmt is Format.JSON:
        print_json([_report_json(r) for r in reports])
    else:
        _print_reports(reports, fmt)
    if any(r.error for r in reports):
        raise typer.Exit(EXIT_FAILURE)


@feed_app.command("list")
def feed_list(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Show the feeds with their last sync, entry count and last error."""
    fmt = output_format(as_json, plain)
    store = open_store(state(ctx).config, read_only=True)
    try:
        records = store.feeds()
    finally:
        store.close()
    rows = [
        {
            "name": r.definition.name,
            "kind": r.definition.kind,
            "url": r.definition.url,
            "refresh_s": int(r.definition.refresh.total_seconds()),
            "broad": r.definition.broad,
            "entries": r.state.entries,
            "last_success": format_instant(r.state.last_success),
            "last_attempt": format_instant(r.state.last_attempt),
            "last_error": r.state.last_error,
            "etag": r.state.etag,
            "last_modified": r.state.last_modified,
        }
        for r in records
    ]
    columns = ("name", "kind", "entries", "last_success", "last_error", "url")
    show_records(fmt, rows, columns, summary=f"{len(rows)} feed(s)")


@feed_app.command("remove")
def feed_remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The feed to remove.")],
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Remove feed NAME and delist everything it listed (the audit log keeps the history)."""
    fmt = action_format(as_json, plain)
    store = open_store(state(ctx).config)
    try:
        removed = store.remove_feed(name, actor="cli")
    finally:
        store.close()
    show_result(
        fmt, {"name": name, "removed": removed}, f"removed feed {name} and its {removed} listings"
    )


def register(app: typer.Typer) -> None:
    """Add `reputable feed` to *app*."""
    app.add_typer(feed_app, name="feed")

"""`reputable ingest journal`: systemd's journal (``journalctl --output=export``) into evidence, resumed by cursor."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Annotated

import typer

from reputable.cli.common import (
    Format,
    JsonOpt,
    PlainOpt,
    action_format,
    console,
    err_console,
    now_option,
    show_summary,
    state,
)
from reputable.cli.ingest import DryRunOpt, FollowOpt, FromStart, FromStartOpt, NowOpt
from reputable.core.errors import InputError
from reputable.evidence.detectors.netconfig import net_settings
from reputable.evidence.sources.journal import (
    SOURCE,
    JournalRun,
    JournalSettings,
    ingest_journal,
    journal_settings,
)
from reputable.evidence.sources.maillog import config_params
from reputable.store.dsn import open_store


def register_ingest(ingest_app: typer.Typer, app: typer.Typer) -> None:
    """Add `ingest journal` to the ingest group."""
    del app
    ingest_app.command("journal")(journal_command)


def journal_command(
    ctx: typer.Context,
    units: Annotated[
        list[str] | None,
        typer.Option("--unit", "-u", help="Only this unit (repeatable), e.g. ssh.service."),
    ] = None,
    follow: FollowOpt = False,
    from_start: FromStartOpt = False,
    files: Annotated[
        list[Path] | None,
        typer.Option("--file", help="Read this journal file (repeatable) instead of the system's."),
    ] = None,
    directory: Annotated[
        Path | None, typer.Option("--directory", help="Read the journal files in this folder.")
    ] = None,
    dry_run: DryRunOpt = False,
    source: Annotated[str, typer.Option("--source", help="Source name of the evidence.")] = SOURCE,
    batch: Annotated[int, typer.Option("--batch", hidden=True)] = 20_000,
    now: NowOpt = None,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Read sshd, Postfix, Dovecot, Exim and netfilter entries of the journal into evidence.

    Resumes after the cursor saved by the last run (with the same units), exactly, after a
    crash too (--from-start reads it all again; --dry-run always starts at the beginning); the
    config's sources.journal section gives the defaults (serve follows it).
    """
    fmt = action_format(as_json, plain)
    config = state(ctx).config
    base = config.path.parent if config.path else Path.cwd()
    settings = journal_settings(config.extra, base) or JournalSettings()
    for path in files or ():
        if not path.exists():
            raise InputError(f"{path}: no such journal file")
    settings = dataclasses.replace(
        settings,
        units=tuple(units) if units else settings.units,
        files=tuple(p.resolve() for p in files) if files else settings.files,
        directory=directory.resolve() if directory else settings.directory,
        source=source if source != SOURCE else settings.source,
    )
    if batch < 1:
        raise InputError("--batch must be at least 1")
    run = JournalRun(config_params(config), net_settings(config.extra), now_option(now), settings.source)  # fmt: skip
    store = None if dry_run else open_store(config)
    started = time.perf_counter()
    stored = 0
    try:
        if follow:
            err_console.print("following the journal; Ctrl-C to stop", highlight=False)
        positions = FromStart(store) if store is not None and from_start else store
        stored = ingest_journal(run, settings, positions, follow=follow, batch=batch)
    except KeyboardInterrupt:
        pass
    finally:
        if store is not None:
            store.close()
    seconds = time.perf_counter() - started
    total = sum(run.by_cause.values())
    if fmt is not Format.TABLE:
        show_summary(
            fmt,
            {
                "source": settings.source,
                "entries": run.read,
                "seconds": round(seconds, 3),
                "routed": dict(run.routed.most_common()),
                "unrouted": run.unrouted,
                "bad": run.bad,
                "evidence": total,
                "stored": stored,
                "dry_run": dry_run,
                "by_cause": {k: v for k, v in run.by_cause.most_common() if v},
            },
        )
        return
    rate = run.read / seconds if seconds > 0 else 0.0
    routed = ", ".join(f"{k} {v}" for k, v in run.routed.most_common()) or "none"
    console.print(
        f"{run.read} journal entries read in {seconds:.2f} s ({rate:,.0f} entries/s): {routed};"
        f" {run.unrouted} from other programs, {run.bad} unreadable",
        highlight=False,
    )
    what = "would be stored (dry run)" if dry_run else f"{stored} new stored"
    causes = ", ".join(f"{k} {v}" for k, v in run.by_cause.most_common() if v)
    console.print(f"evidence: {total} ({what})" + (f"; by cause: {causes}" if causes else ""), highlight=False)  # fmt: skip

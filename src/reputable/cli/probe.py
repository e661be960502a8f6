"""`reputable probe relay|proxy|rdns TARGET`: active probes of allow-listed addresses only.

Exit status (docs/cli.md): 0 when the probe ran (whatever it found), 2 when the target was
refused (outside the allow-list, or over a rate limit) and nothing was sent, 3 when it failed.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import typer

from reputable.cli.common import (
    EXIT_FAILURE,
    EXIT_USAGE,
    Format,
    PlainOpt,
    action_format,
    console,
    err_console,
    plain_line,
    print_json,
    state,
)
from reputable.core.errors import SubjectError
from reputable.evidence.parsers.feed_net import feed_network
from reputable.evidence.sources.probes.model import ERROR, REFUSED, ProbeResult
from reputable.evidence.sources.probes.runner import run_probe
from reputable.evidence.sources.settings import parse_settings
from reputable.store.dsn import open_store

probe_app = typer.Typer(
    help="Active probes (open relay, open proxy, reverse DNS) of allow-listed addresses.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
AllowOpt = Annotated[
    list[str] | None,
    typer.Option("--allow", help="Also allow this CIDR for this run (repeatable)."),
]


def _run(ctx: typer.Context, kind: str, target: str, fmt: Format, allow: list[str] | None) -> None:
    config = state(ctx).config
    settings = parse_settings(config.extra)
    try:
        extra = [feed_network(text) for text in allow or []]
    except SubjectError as exc:
        raise SubjectError(f"--allow: {exc}") from exc
    store = open_store(config)
    try:
        result = asyncio.run(
            run_probe(
                kind,
                target,
                settings=settings,
                store=store,
                now=datetime.now(UTC),
                allow=extra,
            )
        )
    finally:
        store.close()
    _show(result, fmt)
    if result.result == REFUSED:
        raise typer.Exit(EXIT_USAGE)
    if result.result == ERROR:
        raise typer.Exit(EXIT_FAILURE)


def _show(result: ProbeResult, fmt: Format) -> None:
    if fmt is Format.JSON:
        print_json(result.as_json())
        return
    if fmt is Format.PLAIN:
        typer.echo(plain_line(result.as_json(), ("probe", "target", "result", "reason")))
        return
    if result.result == REFUSED:
        err_console.print(f"[red]refused:[/red] {result.reason}", highlight=False)
        return
    for line in result.transcript:
        console.print(f"  {line}", highlight=False, markup=False)
    console.print(
        f"{result.kind} {result.target}: [bold]{result.result}[/bold] - {result.reason}",
        highlight=False,
    )


@probe_app.command("relay")
def probe_relay(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="IP[:port] of an SMTP server (port 25).")],
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
    allow: AllowOpt = None,
) -> None:
    """Test TARGET for an open relay: EHLO, MAIL FROM, RCPT TO outside, RSET, QUIT; never DATA."""
    _run(ctx, "relay", target, action_format(as_json, plain), allow)


@probe_app.command("proxy")
def probe_proxy(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="IP:PORT of a suspected proxy.")],
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
    allow: AllowOpt = None,
) -> None:
    """Test TARGET for an open HTTP CONNECT, SOCKS4 or SOCKS5 proxy to [probes] proxy_canary."""
    _run(ctx, "proxy", target, action_format(as_json, plain), allow)


@probe_app.command("rdns")
def probe_rdns(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="IP address.")],
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
    allow: AllowOpt = None,
) -> None:
    """Check TARGET's reverse DNS: PTR present, forward-confirmed, not generic/dynamic."""
    _run(ctx, "rdns", target, action_format(as_json, plain), allow)


def register(app: typer.Typer) -> None:
    """Add `reputable probe` to *app*."""
    app.add_typer(probe_app, name="probe")

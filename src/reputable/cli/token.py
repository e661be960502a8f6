"""`reputable token add|list|revoke`: API tokens (the secret is shown once, stored hashed)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

import typer

from reputable.cli.common import (
    Format,
    JsonOpt,
    PlainOpt,
    action_format,
    err_console,
    output_format,
    print_json,
    show_records,
    show_result,
    state,
)
from reputable.core.clock import format_instant
from reputable.core.errors import InputError
from reputable.store.dsn import open_store
from reputable.web.tokens import check_name, digest, new_secret, parse_scopes

token_app = typer.Typer(
    help="API tokens for the HTTP API (scopes: evidence:write, admin, bouncer).",
    no_args_is_help=True,
)


@token_app.command("add")
def token_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the token (shown in the audit log).")],
    scope: Annotated[
        list[str],
        typer.Option("--scope", "-s", help="evidence:write, admin or bouncer (repeatable)."),
    ],
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Create token NAME and print its secret once (only a digest is stored).

    The secret is the only line on stdout (--json: {"name", "scopes", "secret"}).
    """
    fmt = action_format(as_json, plain)
    scopes = parse_scopes(scope)
    check_name(name)
    secret = new_secret()
    store = open_store(state(ctx).config)
    try:
        store.add_token(name, digest(secret), frozenset(s.value for s in scopes), now=time.time())
    finally:
        store.close()
    names = sorted(s.value for s in scopes)
    if fmt is Format.JSON:
        print_json({"name": name, "scopes": names, "secret": secret})
        return
    typer.echo(secret)
    err_console.print(
        f"token {name} ({' '.join(sorted(s.value for s in scopes))}): the secret above is shown"
        " only now; keep it safe"
    )


@token_app.command("list")
def token_list(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """List tokens: name, scopes, since (created), revoked (never the secrets)."""
    fmt = output_format(as_json, plain)
    store = open_store(state(ctx).config, read_only=True)
    try:
        records = store.tokens()
    finally:
        store.close()
    rows: list[dict[str, object]] = [
        {
            "name": r.name,
            "scopes": sorted(r.scopes),
            "since": format_instant_ts(r.created_at),
            "created_at": format_instant_ts(r.created_at),
            "revoked_at": format_instant_ts(r.revoked_at),
        }
        for r in records
    ]
    columns = ("name", "scopes", "since", "revoked_at")
    show_records(fmt, rows, columns, summary=f"{len(rows)} token(s)")


def format_instant_ts(ts: float | None) -> str | None:
    """Return a stored timestamp as ISO 8601 UTC (None stays None)."""
    return None if ts is None else format_instant(datetime.fromtimestamp(ts, UTC))


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The token to revoke.")],
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Revoke token NAME: requests with it are refused from now on."""
    fmt = action_format(as_json, plain)
    store = open_store(state(ctx).config)
    try:
        done = store.revoke_token(name, now=time.time())
    finally:
        store.close()
    if not done:
        raise InputError(f"no valid token named {name!r}; see `reputable token list`")
    show_result(fmt, {"name": name, "revoked": True}, f"revoked token {name}")


def register(app: typer.Typer) -> None:
    """Add `reputable token` to *app*."""
    app.add_typer(token_app, name="token")

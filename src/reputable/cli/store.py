"""`reputable store backup FILE` and `store vacuum`: maintenance of the SQLite store file.

A PostgreSQL store is maintained with PostgreSQL's own tools; both commands say which.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Annotated

import typer

from reputable.app import store_path
from reputable.cli.common import JsonOpt, PlainOpt, action_format, show_result, state
from reputable.config import Config
from reputable.core.errors import InputError, StoreError
from reputable.store.dsn import is_postgres, shown
from reputable.store.maintenance import backup

store_app = typer.Typer(
    help="Maintenance of the SQLite store: backup, vacuum (PostgreSQL: use pg_dump, VACUUM).",
    no_args_is_help=True,
)


@store_app.command("backup")
def backup_command(
    ctx: typer.Context,
    target: Annotated[Path, typer.Argument(help="New file to write the copy to.")],
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Copy the live store to TARGET with SQLite's online backup API (serve keeps running)."""
    _refuse_postgres(state(ctx).config, "backup", "pg_dump --format=custom --file=TARGET DB")
    fmt = action_format(as_json, plain)
    if target.exists():  # the user's choice of name: a usage error (exit 2), not a store failure
        raise InputError(f"backup target {target} exists; choose a new file name or remove it")
    result = backup(store_path(state(ctx).config), target)
    record = {
        "source": str(result.source),
        "target": str(result.target),
        "pages": result.pages,
        "bytes": result.bytes,
    }
    show_result(
        fmt,
        record,
        f"backed up {result.source} to {result.target}: {result.pages} pages,"
        f" {result.bytes} bytes; restore by stopping serve and copying it back",
    )


@store_app.command("vacuum")
def vacuum_command(ctx: typer.Context, as_json: JsonOpt = False, plain: PlainOpt = False) -> None:
    """Rebuild the store file to return the space of pruned rows to the file system."""
    _refuse_postgres(
        state(ctx).config, "vacuum", "autovacuum (on by default), or VACUUM (FULL) in psql"
    )
    fmt = action_format(as_json, plain)
    path = store_path(state(ctx).config)
    if not path.is_file():
        raise StoreError(f"store {path} does not exist: check store.dsn in the config")
    before = path.stat().st_size
    try:
        db = sqlite3.connect(str(path), timeout=30.0)
        try:
            db.execute("VACUUM")
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise StoreError(f"vacuum of {path} failed: {exc}") from exc
    after = path.stat().st_size
    record = {"path": str(path), "bytes_before": before, "bytes_after": after}
    show_result(fmt, record, f"vacuumed {path}: {before} -> {after} bytes")


def _refuse_postgres(config: Config, command: str, instead: str) -> None:
    """Stop with what to use instead when the store is PostgreSQL (these work on a file)."""
    if is_postgres(config.store_dsn):
        raise StoreError(
            f"`store {command}` works on a SQLite store; store.dsn {shown(config.store_dsn)}"
            f" is PostgreSQL: use {instead} (serve keeps running)"
        )


def register(app: typer.Typer) -> None:
    """Add the `store` command group to *app*."""
    app.add_typer(store_app, name="store")

"""`reputable store backup FILE` and `store vacuum`: maintenance of the SQLite store file.

A PostgreSQL store is maintained with PostgreSQL's own tools; both commands say which.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Annotated

import typer

from reputable.app import store_path
from reputable.cli.common import console, print_json, state
from reputable.config import Config
from reputable.core.errors import StoreError
from reputable.store.dsn import is_postgres, shown
from reputable.store.maintenance import backup

store_app = typer.Typer(
    help="Maintenance of the SQLite store: backup, vacuum (PostgreSQL: use pg_dump, VACUUM).",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@store_app.command("backup")
def backup_command(
    ctx: typer.Context,
    target: Annotated[Path, typer.Argument(help="New file to write the copy to.")],
    as_json: JsonOpt = False,
) -> None:
    """Copy the live store to TARGET with SQLite's online backup API (serve keeps running)."""
    _refuse_postgres(state(ctx).config, "backup", "pg_dump --format=custom --file=TARGET DB")
    result = backup(store_path(state(ctx).config), target)
    if as_json:
        print_json(
            {
                "source": str(result.source),
                "target": str(result.target),
                "pages": result.pages,
                "bytes": result.bytes,
            }
        )
        return
    console.print(
        f"backed up {result.source} to {result.target}: {result.pages} pages,"
        f" {result.bytes} bytes; restore by stopping serve and copying it back",
        highlight=False,
    )


@store_app.command("vacuum")
def vacuum_command(ctx: typer.Context) -> None:
    """Rebuild the store file to return the space of pruned rows to the file system."""
    _refuse_postgres(
        state(ctx).config, "vacuum", "autovacuum (on by default), or VACUUM (FULL) in psql"
    )
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
    console.print(f"vacuumed {path}: {before} -> {after} bytes", highlight=False)


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

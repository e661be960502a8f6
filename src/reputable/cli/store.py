"""`reputable store backup FILE`, `store vacuum` and `store copy`: maintenance of the store.

A PostgreSQL store is backed up and vacuumed with PostgreSQL's own tools; both commands say
which. `store copy` moves every table between SQLite and PostgreSQL stores.
"""

from __future__ import annotations

import sqlite3
import sys
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
    help="Maintenance of the store: backup, vacuum (SQLite; PostgreSQL: pg_dump, VACUUM),"
    " copy between SQLite and PostgreSQL.",
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


@store_app.command(
    "copy",
    help="Copy every table from one store to another (e.g. SQLite to PostgreSQL), verified by"
    " counts.\n\nStop serve and ingests on the source first. The target is created and migrated"
    " if needed; a target that already holds data is refused unless --force. Each table is"
    " copied in one transaction, so a failed copy can simply be run again with --force.",
)
def copy_command(
    ctx: typer.Context,
    to: Annotated[
        str,
        typer.Option("--to", help="Store to copy into: sqlite:///FILE or postgresql://..."),
    ],
    source: Annotated[
        str | None,
        typer.Option("--from", help="Store to copy from (default: store.dsn of the config)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the target's data if it holds any.")
    ] = False,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Rows per batch.")] = 5000,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Copy every table from one store to another, verified by counts (help: above)."""
    fmt = action_format(as_json, plain)
    from reputable.store.copy import copy_store
    from reputable.store.dsn import open_dsn

    origin = source or state(ctx).config.store_dsn

    def migrate(dsn: str) -> None:
        open_dsn(dsn).close()  # creates and migrates the schema

    def progress(table: str, rows: int) -> None:
        if sys.stderr.isatty():
            print(f"\r{table}: {rows} rows", end="", file=sys.stderr, flush=True)

    result = copy_store(
        _absolute(origin),
        _absolute(to),
        migrate=migrate,
        force=force,
        batch=batch,
        progress=progress,
    )
    if sys.stderr.isatty():
        print("\r\033[K", end="", file=sys.stderr, flush=True)
    record: dict[str, object] = {
        "source": result.source,
        "target": result.target,
        "schema_version": result.schema_version,
        "serial": result.serial,
        "rows": result.rows,
        "tables": [
            {"name": t.name, "rows": t.rows, "seconds": round(t.seconds, 3)} for t in result.tables
        ],
    }
    sentence = "\n".join(
        [f"{t.name}: {t.rows} rows ({t.seconds:.2f} s)" for t in result.tables]
        + [
            f"copied {result.rows} rows in {len(result.tables)} tables from {result.source} to"
            f" {result.target}, every count verified; target serial {result.serial}"
        ]
    )
    show_result(fmt, record, sentence, ("source", "target", "rows", "serial"))


def _absolute(dsn: str) -> str:
    """Make a relative sqlite:/// path absolute (relative to the working directory)."""
    if dsn.startswith("sqlite:///"):
        return "sqlite:///" + str(Path(dsn.removeprefix("sqlite:///")).absolute())
    return dsn


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

"""Shared CLI plumbing: loading config, opening the store, output formats and exit codes.

Every command that reports something takes ``--json`` and ``--plain`` (docs/cli.md):

* ``--json``: one JSON document on stdout (field names from the one vocabulary of docs/cli.md);
* ``--plain``: one record per line, fields separated by a tab, no header, no colour, nothing
  cut: what ``grep``, ``cut -f`` and ``while read`` want;
* neither: a table on a terminal; **plain lines when stdout is not a terminal** (a pipe or a
  file), so ``reputable list show | grep 198.51.100.7`` finds the address. Commands that do
  one thing (``list add``) print one sentence instead of a table.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from rich.console import Console
from rich.table import Table

from reputable.config import Config, load_config
from reputable.core import log
from reputable.core.clock import parse_instant
from reputable.core.errors import (
    InputError,
    ReputableError,
    exit_code_of,
)

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

#: Exit codes of every command (docs/cli.md "Exit codes").
EXIT_OK: Final = 0
#: "Listed" or "found" where that is the answer (check, explain), or input lines refused while
#: the good ones were stored (imports).
EXIT_FOUND: Final = 1
#: Usage or input error: a bad option, argument, config file or input file; nothing was done.
EXIT_USAGE: Final = 2
#: Runtime failure: the store, a running server, a feed or a probe failed.
EXIT_FAILURE: Final = 3


@dataclass
class State:
    """Global options, carried in the Typer context."""

    config_path: Path | None = None
    _config: Config | None = None

    @property
    def config(self) -> Config:
        """The loaded configuration (read once)."""
        if self._config is None:
            self._config = load_config(self.config_path)
            log.set_format(log.format_from(self._config.extra.get("log")))
        return self._config


def state(ctx: typer.Context) -> State:
    """Return the global options of this invocation."""
    obj = ctx.find_root().obj
    if not isinstance(obj, State):
        obj = State()
        ctx.find_root().obj = obj
    return obj


def now_option(text: str | None) -> datetime:
    """Return ``--now`` as an aware UTC time, or the current time."""
    return parse_instant(text) if text else datetime.now(UTC)


def print_json(data: Any) -> None:
    """Print *data* as JSON on stdout (no colour, stable key order)."""
    typer.echo(json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False))


class Format(enum.StrEnum):
    """How a command prints what it reports."""

    TABLE = "table"  # a Rich table (or one sentence) on a terminal
    PLAIN = "plain"  # one record per line, tab-separated
    JSON = "json"  # one JSON document


#: The two output options every reporting command has (the CLI walk test checks it).
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document (docs/cli.md).")]
PlainOpt = Annotated[
    bool,
    typer.Option(
        "--plain",
        help="One record per line, tab-separated, no header (the default when piped).",
    ),
]


def output_format(as_json: bool, plain: bool) -> Format:
    """Return the format chosen by ``--json``/``--plain``, or by whether stdout is a terminal."""
    if as_json and plain:
        raise InputError("--json and --plain: choose one output format")
    if as_json:
        return Format.JSON
    if plain or not console.is_terminal:
        return Format.PLAIN
    return Format.TABLE


def action_format(as_json: bool, plain: bool) -> Format:
    """Return the format of a command that does one thing: a sentence unless asked otherwise."""
    if as_json and plain:
        raise InputError("--json and --plain: choose one output format")
    return Format.JSON if as_json else Format.PLAIN if plain else Format.TABLE


def plain_value(value: object) -> str:
    """Return *value* as one tab-free field: '-' for nothing, lists joined with commas."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(plain_value(v) for v in value) or "-"
    # Every line break Python knows (\v, \f, U+2028, ...) as well as \n and \r: one record, one line.
    text = " ".join(str(value).splitlines()).replace("\t", " ")
    return text or "-"


def plain_line(record: Mapping[str, object], columns: Sequence[str]) -> str:
    """Return *record*'s *columns* as one tab-separated line."""
    return "\t".join(plain_value(record.get(c)) for c in columns)


def show_records(
    fmt: Format,
    records: Sequence[Mapping[str, object]],
    columns: Sequence[str],
    *,
    document: object = None,
    summary: str | None = None,
    hide: Sequence[str] = (),
) -> None:
    """Print *records*: as JSON (*document*, or the records), tab-separated lines, or a table.

    The table folds free text (FREE_TEXT) and never wraps or cuts other values (subjects,
    codes, times);
    *summary* follows the table on a terminal and goes nowhere in the other formats. The
    table leaves out the *hide* columns and shows times to the minute, to fit a terminal;
    plain and JSON output keep everything.
    """
    if fmt is Format.JSON:
        print_json(list(records) if document is None else document)
        return
    if fmt is Format.PLAIN:
        for record in records:
            typer.echo(plain_line(record, columns))
        return
    shown = [c for c in columns if c not in hide] if hide else list(columns)
    rows = [[_cell(record.get(c)) for c in shown] for record in records]
    table = Table()
    # Short values (subjects, causes, codes, times) are never wrapped nor cut; the free text
    # columns fold to make room, down to FREE_TEXT_WIDTH. A table that cannot fit the terminal
    # even so is printed wider (the terminal wraps its lines) rather than losing a column.
    needed = 1
    for index, column in enumerate(shown):
        if column in FREE_TEXT:
            width = FREE_TEXT_WIDTH
            table.add_column(column, overflow="fold", min_width=width)
        else:
            width = max(max((len(row[index]) for row in rows), default=0), len(column))
            table.add_column(column, no_wrap=True, min_width=width)
        needed += width + 3  # the cell's padding and its right border
    for row in rows:
        table.add_row(*row)
    out = console
    if needed > console.width:
        out = Console(
            file=console.file,
            width=needed,
            force_terminal=console.is_terminal,
            color_system=console.color_system,  # type: ignore[arg-type]  # a name Rich gave
        )
    out.print(table, markup=False, highlight=False, crop=False)
    if summary:
        console.print(summary, markup=False, highlight=False)


#: Columns of free text, folded in tables; every other column keeps its values whole.
FREE_TEXT: Final = frozenset(
    {"reason", "note", "url", "last_error", "error", "contact", "why", "message", "detail"}
)

#: The narrowest a free text column gets in a table.
FREE_TEXT_WIDTH: Final = 12

#: An RFC 3339 instant as format_instant writes them (the table shows it to the minute).
_INSTANT = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d):\d\d(\.\d+)?Z$")


def _cell(value: object) -> str:
    """Return *value* for a table cell: as in plain output, times to the minute."""
    text = plain_value(value)
    match = _INSTANT.match(text)
    return f"{match.group(1)} {match.group(2)}Z" if match else text


def show_result(
    fmt: Format, record: Mapping[str, object], sentence: str, columns: Sequence[str] = ()
) -> None:
    """Print what a command did: *record* as JSON or one plain line, else *sentence*."""
    if fmt is Format.JSON:
        print_json(dict(record))
    elif fmt is Format.PLAIN:
        typer.echo(plain_line(record, columns or list(record)))
    else:
        console.print(sentence, markup=False, highlight=False)


def fail_with(exc: ReputableError) -> typer.Exit:
    """Print *exc* as one plain error line on stderr and return the Exit to raise."""
    err_console.print(f"error: {exc}", markup=False, highlight=False)
    return typer.Exit(exit_code_of(exc))


def flat(data: object, prefix: str = "") -> list[tuple[str, object]]:
    """Return *data* as (dotted key, value) pairs: ``snapshot.serial``, ``feeds.0.name``."""
    if isinstance(data, dict):
        items: list[tuple[str, object]] = []
        for key, value in data.items():
            items.extend(flat(value, f"{prefix}{key}."))
        return items
    if isinstance(data, list | tuple):
        items = []
        for index, value in enumerate(data):
            items.extend(flat(value, f"{prefix}{index}."))
        return items
    return [(prefix.rstrip("."), data)]


def show_summary(fmt: Format, document: Mapping[str, object]) -> None:
    """Print a summary as JSON, or (plain) one ``key<TAB>value`` line per field, keys dotted."""
    if fmt is Format.JSON:
        print_json(dict(document))
        return
    for key, value in flat(dict(document)):
        typer.echo(f"{key}\t{plain_value(value)}")

"""`reputable config check|show`: validate the file without starting, print what is in effect."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer

from reputable.cli.common import flat, plain_line, plain_value
from reputable.config import DEFAULT_PATH, DEFAULT_TOML, ConfigProblems, load_config, problems_in
from reputable.config_report import Problem, effective_table, to_toml
from reputable.config_schema import Schema
from reputable.core.errors import ConfigError, InputError

config_app = typer.Typer(
    help="Check reputable.toml without starting anything, or print the effective settings.",
    no_args_is_help=True,
)

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="The file to read [the global --config, ./reputable.toml]."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
PlainOpt = Annotated[
    bool, typer.Option("--plain", help="One record a line, tab-separated (docs/cli.md).")
]


def _target(ctx: typer.Context, path: Path | None) -> Path | None:
    """Return the file this command reads: its own --config, else the global one."""
    if path is not None:
        return path
    root = ctx.find_root().obj
    return getattr(root, "config_path", None)


@config_app.command("check")
def check(
    ctx: typer.Context, config: ConfigOpt = None, json_: JsonOpt = False, plain: PlainOpt = False
) -> None:
    """Validate every section, the files it names and its addresses; exit 0 (valid) or 2.

    Like `postfix check`: nothing is bound, started or written.
    """
    if json_ and plain:
        raise InputError("--json and --plain: choose one output format")
    path = _target(ctx, config)
    shown = str(path or DEFAULT_PATH)
    problems: list[Problem] = []
    try:
        loaded = load_config(path)
    except ConfigError as exc:
        problems = problems_in(exc)
    else:
        from reputable.config_check import stage_problems

        problems = stage_problems(loaded)
        if loaded.path is None:
            shown = "built-in defaults (no reputable.toml here)"
    if json_:
        typer.echo(json.dumps(
            {"config": shown, "ok": not problems, "errors": [p.as_dict() for p in problems]},
            indent=2, ensure_ascii=False,
        ))  # fmt: skip
    elif plain:  # one problem a line: path, value, message (nothing when valid)
        for problem in problems:
            record = problem.as_dict()
            typer.echo(plain_line(record, ("path", "value", "message")))
    elif problems:
        typer.echo(f"{shown}: {len(problems)} problem(s):", err=True)
        for problem in problems:
            typer.echo(f"  {problem.text()}", err=True)
    else:
        typer.echo(f"{shown}: OK")
    if problems:
        raise typer.Exit(2)


@config_app.command("show")
def show(
    ctx: typer.Context, config: ConfigOpt = None, json_: JsonOpt = False, plain: PlainOpt = False
) -> None:
    """Print the effective configuration: the file plus every default (secrets redacted)."""
    if json_ and plain:
        raise InputError("--json and --plain: choose one output format")
    path = _target(ctx, config)
    loaded = load_config(path)  # a bad file stops here, with every problem named
    text = DEFAULT_TOML if loaded.path is None else loaded.path.read_text(encoding="utf-8")
    raw: dict[str, Any] = tomllib.loads(text)
    table = effective_table(Schema.model_validate(raw))
    if json_:
        typer.echo(json.dumps(table, indent=2, ensure_ascii=False))
        return
    if plain:  # one setting a line: dotted key, value
        for key, value in flat(table):
            typer.echo(f"{key}\t{plain_value(value)}")
        return
    source = str(loaded.path) if loaded.path else "the built-in defaults"
    typer.echo(f"# effective configuration of {source} (defaults filled in, secrets redacted)")
    typer.echo(to_toml(table), nl=False)


__all__ = ["ConfigProblems", "config_app", "register"]


def register(app: typer.Typer) -> None:
    """Add the `config` group to the top-level *app* (cli/main.py's PLUGINS table)."""
    app.add_typer(config_app, name="config")

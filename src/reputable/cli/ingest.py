"""`reputable ingest ...`: read logs and reports into evidence (mail and network modules add commands)."""

from __future__ import annotations

import importlib

import typer

ingest_app = typer.Typer(help="Read logs, reports and feeds into evidence.", no_args_is_help=True)

#: Modules that add commands to `reputable ingest`, each with ``register_ingest(ingest_app)``.
INGEST_MODULES = (
    "reputable.cli.ingest_mail",
    "reputable.cli.ingest_net",
    "reputable.cli.ingest_journal",
)


def register(app: typer.Typer) -> None:
    """Add `ingest` and whatever the mail and network modules register under it."""
    for name in INGEST_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register_ingest(ingest_app, app)
    app.add_typer(ingest_app, name="ingest")

"""`reputable ingest ...`: read logs and reports into evidence (mail and network modules add commands)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Annotated

import typer

from reputable.evidence.model import Evidence
from reputable.evidence.sources.follow import Position, PositionStore

ingest_app = typer.Typer(help="Read logs, reports and feeds into evidence.", no_args_is_help=True)

#: Modules that add commands to `reputable ingest`, each with ``register_ingest(ingest_app)``.
INGEST_MODULES = (
    "reputable.cli.ingest_mail",
    "reputable.cli.ingest_net",
    "reputable.cli.ingest_journal",
)


#: The options every `ingest` command spells the same way (docs/cli.md "ingest").
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Store nothing (and save no position).")]
FollowOpt = Annotated[
    bool, typer.Option("--follow", help="Keep reading as new lines arrive (Ctrl-C stops).")
]
FromStartOpt = Annotated[
    bool,
    typer.Option(
        "--from-start",
        help="Ignore the position saved by the last run: read everything again (evidence"
        " already stored is not counted twice).",
    ),
]
NowOpt = Annotated[
    str | None,
    typer.Option("--now", help="Reference time (ISO-8601) for timestamps without a year."),
]
TimezoneOpt = Annotated[
    str | None,
    typer.Option("--timezone", help="Zone of timestamps that carry none (IANA name) [UTC]."),
]


class FromStart:
    """A position store that forgets each source's saved position once (``--from-start``).

    The first question about a source gets "no position", so reading starts at the beginning;
    every later one, and every commit, goes to the real store.
    """

    def __init__(self, store: PositionStore) -> None:
        self._store = store
        self._asked: set[str] = set()

    def source_position(self, name: str) -> Position | None:
        """Return None the first time *name* is asked about, then the saved position."""
        if name not in self._asked:
            self._asked.add(name)
            return None
        return self._store.source_position(name)

    def commit_source(self, position: Position, evidence: Iterable[Evidence]) -> int:
        """Store *evidence* and *position* in the real store."""
        return self._store.commit_source(position, evidence)


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

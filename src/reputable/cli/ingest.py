"""`reputable ingest ...`: read logs and reports into evidence (mail and network modules add commands)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from typing import Annotated

import typer

from reputable.evidence.model import Evidence
from reputable.evidence.sources.follow import Position, PositionStore

ingest_app = typer.Typer(help="Read logs, reports and feeds into evidence.", no_args_is_help=True)

#: Modules that add commands to `reputable ingest`, each with ``register_ingest(ingest_app,
#: app)``, and the words they add (under `ingest`, or at the top level: `report`). Only the
#: module owning the command being run is imported: the mail and network modules cost ~0.1 s
#: of start-up that `ingest journal` does not need (bench/journal_ingest.py).
INGEST_MODULES: dict[str, frozenset[str]] = {
    "reputable.cli.ingest_mail": frozenset({"maillog", "arf", "report"}),
    "reputable.cli.ingest_net": frozenset({"netlog"}),
    "reputable.cli.ingest_journal": frozenset({"journal"}),
}


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
    """Add `ingest` and whatever the mail, network and journal modules register under it."""
    _register(app, list(INGEST_MODULES))


def register_only(app: typer.Typer, argv: Sequence[str]) -> None:
    """Add `ingest` with only the modules owning a word of *argv* (all when none does).

    ``reputable ingest --help`` names no module's command: all are imported. A word that is
    only an option's value (``--source journal``) imports one module more, never one less.
    """
    words = set(argv)
    owners = [name for name, owned in INGEST_MODULES.items() if owned & words]
    _register(app, owners or list(INGEST_MODULES))


def _register(app: typer.Typer, names: Sequence[str]) -> None:
    for name in names:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register_ingest(ingest_app, app)
    app.add_typer(ingest_app, name="ingest")

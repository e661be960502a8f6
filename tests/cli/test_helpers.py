"""The pure helpers behind the output formats and `--from-start`."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from reputable.cli import common
from reputable.cli.ingest import FromStart
from reputable.core.errors import ConfigError, DataFileError, InputError, StoreError
from reputable.evidence.model import Evidence
from reputable.evidence.sources.follow import Position


class Positions:
    """A position store in memory that records the commits it gets."""

    def __init__(self) -> None:
        self.saved: dict[str, Position] = {}
        self.commits: list[Position] = []

    def source_position(self, name: str) -> Position | None:
        """Return the saved position of *name*."""
        return self.saved.get(name)

    def commit_source(self, position: Position, evidence: Iterable[Evidence]) -> int:
        """Save *position*; count the evidence."""
        self.saved[position.name] = position
        self.commits.append(position)
        return len(list(evidence))


def test_from_start_forgets_each_saved_position_once() -> None:
    """--from-start: the first question gets no position, later ones and commits the real store."""
    real = Positions()
    old = Position("journal:*", 0, 0, "journal", 500, 500)
    real.saved["journal:*"] = old
    wrapped = FromStart(real)
    assert wrapped.source_position("journal:*") is None
    assert wrapped.source_position("journal:*") == old
    new = Position("journal:*", 0, 0, "journal", 10, 10)
    assert wrapped.commit_source(new, []) == 0
    assert real.commits == [new] and wrapped.source_position("journal:*") == new


def test_flat_dots_nested_keys() -> None:
    """Nested summaries become dotted key/value pairs, lists by index."""
    data = {"snapshot": {"serial": 3}, "feeds": [{"name": "drop", "ok": True}], "x": None}
    assert common.flat(data) == [
        ("snapshot.serial", 3),
        ("feeds.0.name", "drop"),
        ("feeds.0.ok", True),
        ("x", None),
    ]


def test_show_summary_plain_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    """A summary prints as key<TAB>value lines, or as one JSON object."""
    common.show_summary(common.Format.PLAIN, {"lines": 3, "by_cause": {"spam": 2}, "ok": False})
    assert capsys.readouterr().out == "lines\t3\nby_cause.spam\t2\nok\tno\n"
    common.show_summary(common.Format.JSON, {"lines": 3})
    assert capsys.readouterr().out == '{\n  "lines": 3\n}\n'


def test_exit_code_classes() -> None:
    """What the user gave exits 2, what failed at run time 3."""
    for given in (InputError("x"), ConfigError("x"), DataFileError("f", 1, "x")):
        assert common.exit_code_of(given) == common.EXIT_USAGE == 2
    assert common.exit_code_of(StoreError("x")) == common.EXIT_FAILURE == 3


def test_output_format_choice() -> None:
    """--json/--plain win; without them a pipe gets plain lines and an action its sentence."""
    assert common.output_format(True, False) is common.Format.JSON
    assert common.output_format(False, True) is common.Format.PLAIN
    assert common.output_format(False, False) is common.Format.PLAIN  # pytest's stdout: a pipe
    assert common.action_format(False, False) is common.Format.TABLE
    with pytest.raises(InputError, match="choose one"):
        common.output_format(True, True)

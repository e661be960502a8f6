"""`reputable ingest`: only the module of the sub-command being run is imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

#: Runs the CLI's main on argv, then prints which ingest modules were imported and the commands
#: `ingest` has (a fresh interpreter: the registration happens once per process).
PROBE = """
import sys
import typer
from reputable.cli import main
sys.argv = ["reputable", *sys.argv[1:]]
try:
    main.main()
except SystemExit:
    pass
loaded = sorted(m for m in sys.modules if m.startswith("reputable.cli.ingest_"))
group = typer.main.get_command(main.app).commands["ingest"]
print(",".join(loaded), ",".join(sorted(group.commands)), sep="|")
"""


def probe(*argv: str) -> tuple[list[str], list[str]]:
    """Return the ingest modules imported and the `ingest` commands after running *argv*."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=60, check=True
    )
    loaded, commands = done.stdout.strip().splitlines()[-1].split("|")
    return loaded.split(","), commands.split(",")


@pytest.mark.parametrize(
    ("argv", "module"),
    [
        (("ingest", "journal", "--help"), "reputable.cli.ingest_journal"),
        (("ingest", "netlog", "--help"), "reputable.cli.ingest_net"),
        (("--log-level", "INFO", "ingest", "maillog", "--help"), "reputable.cli.ingest_mail"),
        (("report", "outbound", "--help"), "reputable.cli.ingest_mail"),
    ],
)
def test_a_sub_command_imports_only_its_module(argv: tuple[str, ...], module: str) -> None:
    """`ingest journal` does not pay for the mail and network modules' imports."""
    loaded, _ = probe(*argv)
    assert loaded == [module]


def test_the_group_without_a_sub_command_lists_them_all() -> None:
    """`reputable ingest --help` names no module's command: every module registers its own."""
    loaded, commands = probe("ingest", "--help")
    assert loaded == [
        "reputable.cli.ingest_journal",
        "reputable.cli.ingest_mail",
        "reputable.cli.ingest_net",
    ]
    assert {"journal", "maillog", "arf", "netlog"} <= set(commands)

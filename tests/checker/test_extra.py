"""The checker's libraries are an extra: without them the CLI loads and `check` says what to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.checker.conftest import LISTED_IP
from tests.checker.dnsfixture import DnsFixture
from tests.checker.test_cli import run

EXTRA_MODULES = ("checkdmarc", "spf", "dkim")


@pytest.fixture
def without_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the checker extra's modules unimportable, as on an install without the extra."""
    for name in [m for m in sys.modules if m.split(".")[0] in EXTRA_MODULES]:
        monkeypatch.delitem(sys.modules, name)
    for name in EXTRA_MODULES:
        monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules: ImportError


def test_check_without_the_extra_names_what_to_install(
    without_extra: None, world: DnsFixture, zone_file: Path
) -> None:
    """`check` with diagnostics exits 2 naming the missing packages and the pip command."""
    code, out = run(world, zone_file, LISTED_IP)
    said = " ".join(out.split())
    assert code == 2
    assert "checkdmarc, pyspf, dkimpy are not installed" in said
    assert "pip install 'reputable[checker]'" in said
    assert "Traceback" not in out


def test_lists_alone_need_no_extra(without_extra: None, world: DnsFixture, zone_file: Path) -> None:
    """`check --no-diagnostics` only queries the DNS lists, which need none of the extra."""
    code, out = run(world, zone_file, LISTED_IP, "--no-diagnostics", "--zone", "listed.test")
    assert code == 1, out
    assert "listed.test" in out


def test_server_and_pipeline_import_without_the_extra() -> None:
    """The CLI, the app and the checker package import with checkdmarc, pyspf and dkimpy absent."""
    blocked = "; ".join(f"sys.modules[{m!r}] = None" for m in EXTRA_MODULES)
    code = (
        f"import sys; {blocked}; import reputable.cli.main, reputable.app,"
        " reputable.checker.runner, reputable.checker.service; print('ok')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"

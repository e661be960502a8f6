"""`reputable import rbldnsd` from the command line: all or nothing, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from reputable.testing import cli, free_port, write_config


def test_bad_line_reports_file_line_and_imports_nothing(tmp_path: Path) -> None:
    """A malformed last line exits 2 with ``file:line: what``, and no earlier line is applied."""
    config = write_config(tmp_path, dns_port=free_port())
    data = tmp_path / "bl.ip4set"
    data.write_text("192.0.2.1\n!192.0.2.2\n192.0.2.3 :127.0.0.42:unknown code\n")
    result = cli(config, "import", "rbldnsd", str(data), "--zone", "bl.reputable.test", check=False)
    assert result.returncode == 2
    assert f"{data}:3: A value 127.0.0.42 maps to no cause" in result.stderr
    assert "Traceback" not in result.stderr
    shown = cli(config, "list", "show", "--json")
    assert json.loads(shown.stdout) == []
    allows = cli(config, "allow", "show", "--json")
    assert json.loads(allows.stdout) == []


def test_forced_cause_import_then_show(tmp_path: Path) -> None:
    """``--cause`` imports the whole file as one cause, visible in ``list show --json``."""
    config = write_config(tmp_path, dns_port=free_port())
    data = tmp_path / "feed.ip4set"
    data.write_text(":127.0.0.42:third-party feed\n192.0.2.0/30\n")
    cli(config, "import", "rbldnsd", str(data), "--zone", "bl.reputable.test", "--cause", "manual")
    rows = json.loads(cli(config, "list", "show", "--json").stdout)
    assert [(r["subject"], r["cause"], r["source"]) for r in rows] == [
        ("192.0.2.0/30", "manual", f"rbldnsd:{data}")
    ]

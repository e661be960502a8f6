"""The shipped systemd unit passes `systemd-analyze verify`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "packaging" / "systemd" / "reputable.service"


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """systemd-analyze verify accepts the unit (ExecStart pointed at this venv's reputable)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("needs systemd-analyze (Debian package systemd)")
    binary = Path(sys.executable).parent / "reputable"
    text = UNIT.read_text()
    assert "Type=notify" in text
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in text
    assert "NoNewPrivileges=yes" in text
    unit = tmp_path / "reputable.service"
    unit.write_text(text.replace("/usr/bin/reputable", str(binary)))
    done = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "reputable.service" not in done.stderr, done.stderr

"""The simulated month (bench/fairness.py) meets the fairness targets with default settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_month_meets_fairness_targets() -> None:
    """Abusers listed while active, no innocent listed, every spammer delisted within 9.5 days."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fairness.py"), "--clean", "100", "--every", "12"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "innocents listed: 0" in done.stdout
    assert "= 100.00 %" in done.stdout or "= 99." in done.stdout

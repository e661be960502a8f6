"""Real journal files for tests: entries in journal export format through systemd-journal-remote."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterable
from pathlib import Path

import pytest

REMOTE = Path("/lib/systemd/systemd-journal-remote")


def need_journal_tools() -> None:
    """Skip the calling test unless journalctl and systemd-journal-remote are installed."""
    if shutil.which("journalctl") is None:
        pytest.skip("journalctl missing: apt-get install systemd")
    if not REMOTE.exists():
        pytest.skip("systemd-journal-remote missing: apt-get install systemd-journal-remote")


def export(entries: Iterable[dict[str, str]]) -> bytes:
    """Return *entries* in the journal export format (one boot, realtime from each entry's field)."""
    boot = uuid.uuid4().hex
    out = []
    for i, entry in enumerate(entries):
        fields = {"__MONOTONIC_TIMESTAMP": str(1_000_000 + i), "_BOOT_ID": boot, **entry}
        for key, value in fields.items():
            if "\n" in value:
                data = value.encode()
                out.append(key.encode() + b"\n" + len(data).to_bytes(8, "little") + data)
            else:
                out.append(f"{key}={value}".encode())
        out.append(b"")
    return b"\n".join(out) + b"\n"


def write_journal(path: Path, entries: Iterable[dict[str, str]]) -> None:
    """Append *entries* to the journal file *path* (created when missing) with systemd-journal-remote."""
    subprocess.run(
        [str(REMOTE), f"--output={path}", "-"],
        input=export(entries),
        check=True,
        capture_output=True,
        timeout=120,
    )


def entry(at: int, ident: str, message: str, *, pid: int = 100, unit: str = "", host: str = "mx") -> dict[str, str]:  # fmt: skip
    """Return one journal entry at *at* (epoch seconds) from *ident*."""
    out = {
        "__REALTIME_TIMESTAMP": str(at * 1_000_000),
        "_HOSTNAME": host,
        "SYSLOG_IDENTIFIER": ident,
        "_PID": str(pid),
        "MESSAGE": message,
    }
    if unit:
        out["_SYSTEMD_UNIT"] = unit
    return out

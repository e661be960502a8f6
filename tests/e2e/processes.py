"""The live processes of this machine as /proc shows them, for the tests that stop `serve`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Process:
    """One live (not zombie) process: its pid, parent, process group and command line."""

    pid: int
    ppid: int
    pgid: int
    cmdline: str


def live_processes() -> Iterator[Process]:
    """Yield every process that is alive now; zombies and processes that vanish are skipped."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # the fields after "(comm)": state, ppid, pgrp, ... (comm may hold spaces)
            fields = stat[stat.rindex(")") + 2 :].split()
            if fields[0] == "Z":
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            yield Process(int(entry.name), int(fields[1]), int(fields[2]), cmdline)
        except (OSError, ValueError, IndexError):
            continue

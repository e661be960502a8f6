"""The live processes of this machine as /proc shows them, `serve` started for the tests that stop
it, and :func:`stop` to end a test's process on every path."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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


def alive(pid: int) -> bool:
    """True while *pid* exists and is not a zombie (whoever owns it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def descendants(root: int) -> dict[int, str]:
    """Return {pid: command line} of the live (non-zombie) descendants of *root*."""
    processes = list(live_processes())
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for process in processes:
            if process.ppid == parent and process.pid not in found:
                found[process.pid] = process.cmdline
                frontier.append(process.pid)
    return found


def start_serve(config: Path) -> subprocess.Popen[bytes]:
    """Start `reputable serve` on *config* in its own session, its output in serve.log beside it.

    Its own process group, so every child is found by the group.
    """
    with (config.parent / "serve.log").open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "reputable", "--config", str(config), "serve", "--metrics", ""],
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[Any] | None, timeout: float = 10) -> None:
    """End *proc* if it still runs: SIGTERM, SIGKILL after *timeout* seconds; reap it."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

"""A throwaway network namespace for tests that load firewall rules or run real peers.

Everything inside it is private to the test: its own loopback (with the documentation
addresses the test adds to it), its own nftables ruleset and ipsets. :func:`namespace`
names it ``enforce-<random>``; :func:`pid_namespace` names it after the pytest process
(``PREFIX<pid>``), so a later run can tell a killed run's leftovers and delete them. Both are
deleted when the test ends, on every path, with whatever still runs inside.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.processes import alive

PROBE = Path(__file__).with_name("probe_tcp.py")


def netns_missing() -> str | None:
    """Return why this process may not create network namespaces, or None when it may."""
    if shutil.which("ip") is None:
        return "needs the ip command (Debian package iproute2)"
    if os.geteuid() != 0:
        return "creating a network namespace needs root (CAP_SYS_ADMIN)"
    return None


def need_netns() -> None:
    """Skip unless this process may create network namespaces (root and iproute2)."""
    reason = netns_missing()
    if reason:
        pytest.skip(reason)


def delete_namespace(ns: str) -> None:
    """Kill what still runs in *ns* (a daemon an error path left), then delete *ns*."""
    pids = subprocess.run(
        ["ip", "netns", "pids", ns], capture_output=True, text=True, check=False, timeout=10
    )
    for pid in pids.stdout.split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["ip", "netns", "delete", ns], capture_output=True, check=False, timeout=10)


def leftover_namespaces(prefix: str) -> list[str]:
    """Return the namespaces named *prefix*<pid> whose process is gone (killed runs left them)."""
    listed = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=False, timeout=10
    )
    names = (line.split()[0] for line in listed.stdout.splitlines() if line.strip())
    return [
        name
        for name in names
        if (match := re.fullmatch(re.escape(prefix) + r"(\d+)", name))
        and not alive(int(match.group(1)))
    ]


@contextmanager
def _made(name: str, addresses: Sequence[str] = ()) -> Iterator[str]:
    """Create namespace *name* with loopback up and *addresses*; delete it on every path.

    The deletion is in force before ``ip netns add`` runs (a timed-out add is deleted too).
    """
    try:
        subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, timeout=10)
        for address in addresses:
            subprocess.run(
                ["ip", "-n", name, "addr", "add", *address.split(), "dev", "lo"],
                check=True,
                timeout=10,
            )
        yield name
    finally:
        delete_namespace(name)


@contextmanager
def namespace(addresses: Sequence[str] = ()) -> Iterator[str]:
    """Create a namespace with loopback up and *addresses* (``CIDR [flags]``) on it; yield its name."""
    need_netns()
    with _made("enforce-" + secrets.token_hex(4), addresses) as name:
        yield name


_SWEPT: set[str] = set()


@contextmanager
def pid_namespace(prefix: str) -> Iterator[str]:
    """Create ``<prefix><this pid>`` with loopback up; yield its name; delete it on every path.

    The first use of *prefix* in a process deletes the namespaces of *prefix* whose pytest
    process is dead, and any of this process's own that a failed deletion left.
    """
    need_netns()
    if prefix not in _SWEPT:
        _SWEPT.add(prefix)
        for stale in leftover_namespaces(prefix):
            delete_namespace(stale)
    name = f"{prefix}{os.getpid()}"
    delete_namespace(name)
    with _made(name) as made:
        yield made


def run_in(ns: str, argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run *argv* inside namespace *ns* and return the completed process (text output)."""
    return subprocess.run(  # type: ignore[call-overload, no-any-return]  # kwargs pass through
        ["ip", "netns", "exec", ns, *argv], check=False, capture_output=True, text=True, **kwargs
    )


def reachable(ns: str, server: str, sources: Sequence[str]) -> dict[str, bool]:
    """Return, per source address, whether a TCP connect to *server* succeeds inside *ns*."""
    done = run_in(ns, [sys.executable, str(PROBE), server, *sources], timeout=30)
    if done.returncode != 0:
        raise AssertionError(f"probe failed: {done.stderr}")
    result: dict[str, bool] = json.loads(done.stdout)
    return result

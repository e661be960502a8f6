"""A throwaway network namespace for tests that load firewall rules or run real peers.

Everything inside it is private to the test: its own loopback (with the documentation
addresses the test adds to it), its own nftables ruleset and ipsets. It is named
``enforce-<random>`` and deleted when the test ends.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

PROBE = Path(__file__).with_name("probe_tcp.py")


def need_netns() -> None:
    """Skip unless this process may create network namespaces (root and iproute2)."""
    if shutil.which("ip") is None:
        pytest.skip("needs the ip command (Debian package iproute2)")
    if os.geteuid() != 0:
        pytest.skip("creating a network namespace needs root (CAP_SYS_ADMIN)")


@contextmanager
def namespace(addresses: Sequence[str] = ()) -> Iterator[str]:
    """Create a namespace with loopback up and *addresses* (``CIDR [flags]``) on it; yield its name."""
    need_netns()
    name = "enforce-" + secrets.token_hex(4)
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        for address in addresses:
            subprocess.run(
                ["ip", "-n", name, "addr", "add", *address.split(), "dev", "lo"], check=True
            )
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


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

"""No child outlives `serve`, even when `serve` is SIGKILLed (it cannot clean up then).

`serve` runs two DNS worker processes (they would answer forever) and its start-up
`policy run` child (over 200,000 evidence records, so it is still evaluating when the signal
comes); after SIGKILL every one of them must be gone within 2 s (core/lifeline.py:
PR_SET_PDEATHSIG in each child, a parent-pid watch as fallback).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reputable.testing import cli, free_port, write_config
from tests.e2e.processes import alive, descendants, start_serve

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc: Linux"),
]

EVIDENCE = 200_000


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """Two DNS workers; enough evidence that the start-up `policy run` takes a while."""
    path = write_config(tmp_path, dns_port=free_port(), workers="2")
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = tmp_path / "evidence.jsonl"
    with lines.open("w", encoding="utf-8") as out:
        for i in range(EVIDENCE):
            subject = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
            out.write(json.dumps({"subject": subject, "cause": "spam", "source": "t", "at": now}))
            out.write("\n")
    cli(path, "evidence", "import", str(lines), timeout=300)
    cli(path, "list", "add", "198.51.100.7", "--cause", "spam", "--reason", "trap")
    cli(path, "snapshot", "build")
    return path


def _kill_and_check(serve: subprocess.Popen[bytes], children: dict[int, str]) -> None:
    """SIGKILL *serve*; every one of *children* must be gone within 2 s."""
    serve.kill()  # SIGKILL: serve runs no cleanup at all
    serve.wait()
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and any(alive(pid) for pid in children):
        time.sleep(0.01)
    left = {pid: cmd for pid, cmd in children.items() if alive(pid)}
    assert not left, f"children alive 2 s after serve's SIGKILL: {left}"


def test_sigkill_of_serve_leaves_no_child(config: Path) -> None:
    """SIGKILL serve with DNS workers and a `policy run` child running: all gone within 2 s."""
    log = config.parent / "serve.log"
    serve = start_serve(config)
    children: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            children = descendants(serve.pid)
            workers = [c for c in children.values() if "reputable.dnsworker" in c]
            if len(workers) == 2 and any("policy run" in c for c in children.values()):
                break
            if serve.poll() is not None:
                pytest.fail(f"serve exited {serve.returncode}:\n{log.read_text()}")
            time.sleep(0.005)
        else:
            pytest.fail(f"no 2 DNS workers and a `policy run` child seen: {children}")
        _kill_and_check(serve, children)
    finally:
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if serve.poll() is None:
            serve.kill()
            serve.wait()


@pytest.mark.serial  # a wall-clock limit (the workers' parent-pid watch): nothing else runs
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges to `nobody`")
def test_sigkill_after_the_workers_dropped_root(tmp_path: Path) -> None:
    """Workers that changed their user lose PR_SET_PDEATHSIG (the kernel clears it on a
    credential change): the parent-pid watch still ends them within 2 s of serve's SIGKILL."""
    nobody = pwd.getpwnam("nobody")
    folder = Path(tempfile.mkdtemp(prefix="enf-orphans-", dir="/tmp"))  # `nobody` can reach it
    folder.chmod(0o755)
    serve: subprocess.Popen[bytes] | None = None
    children: dict[int, str] = {}
    try:
        config = write_config(folder, dns_port=free_port(), workers="2")
        config.write_text('user = "nobody"\n' + config.read_text())  # a top-level key
        cli(config, "list", "add", "198.51.100.7", "--cause", "spam")
        os.chown(folder, nobody.pw_uid, nobody.pw_gid)
        serve = start_serve(config)
        log = config.parent / "serve.log"
        deadline = time.monotonic() + 60
        while "privileges_dropped" not in log.read_text(errors="replace"):
            if serve.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"serve did not drop privileges:\n{log.read_text()}")
            time.sleep(0.05)
        while time.monotonic() < deadline:
            children = {
                pid: cmd
                for pid, cmd in descendants(serve.pid).items()
                if "reputable.dnsworker" in cmd
            }
            if len(children) == 2 and all(_uid(pid) == nobody.pw_uid for pid in children):
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"no 2 DNS workers running as nobody: {children}")
        _kill_and_check(serve, children)
    finally:
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if serve is not None and serve.poll() is None:
            serve.kill()
            serve.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _uid(pid: int) -> int:
    """Return the effective uid of *pid* (-1 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[2])
    except OSError:
        pass
    return -1

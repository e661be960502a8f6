"""`reputable serve` with no snapshot: it builds one, answers DNS, then brings the rest up.

Its start-up checks run beside that first build at a lower priority (cli/launch.py); what
follows the build is unchanged: DNS, serve_ready, then the HTTP API.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dns.message
import dns.query
import dns.rcode

from reputable import app
from reputable.config import load_config
from reputable.testing import RunningServer, cli, free_port, write_config

IP_NAME = "7.100.51.198.bl.reputable.test"


def test_a_first_build_answers_dns_then_brings_up_http(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, dns_port=port)
    cli(config, "list", "add", "198.51.100.7", "--cause", "spam", "--reason", "trap hits")
    assert not (tmp_path / "reputable.snapshot").exists()
    with RunningServer(config) as running:
        reply = dns.query.udp(
            dns.message.make_query(IP_NAME, "A"), "127.0.0.1", port=port, timeout=5
        )
        assert reply.rcode() == dns.rcode.NOERROR
        assert [rr.address for rr in reply.answer[0]] == ["127.0.0.2"]
        deadline = time.monotonic() + 90  # at once unless the machine is loaded
        while not (found := re.findall(r"http_ready listen=(\S+)", running.log())):
            assert time.monotonic() < deadline, running.log()
            time.sleep(0.05)
        with urllib.request.urlopen(f"http://{found[0]}/healthz", timeout=10) as answer:
            assert json.load(answer)["snapshot_serial"] is not None
        log = running.log()
    assert "snapshot_built" in log and "early_start_adopted" not in log
    assert log.index("dns_ready") < log.index("serve_ready") < log.index("http_ready")


def test_a_first_build_done_before_the_supervisor_starts_is_still_reaped_and_counted(
    tmp_path: Path,
) -> None:
    """The launcher's checks can end after its build: the supervisor joins the build anyway."""
    path = write_config(tmp_path, dns_port=free_port())
    cli(path, "snapshot", "build")  # its snapshot is in place before the supervisor runs
    config = load_config(path)
    child = subprocess.Popen([sys.executable, "-c", "pass"])

    async def scenario() -> app.Supervisor:
        supervisor = app.Supervisor(
            config, app.open_store(config), metrics_listen=None, first_build=child
        )
        await supervisor.first_snapshot()
        assert supervisor.background is not None  # the running build: no second one starts
        assert await supervisor.background
        supervisor.store.close()
        return supervisor

    supervisor = asyncio.run(scenario())
    assert child.returncode == 0
    assert supervisor.activity.snapshot_builds[True] == 1

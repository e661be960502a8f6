"""A real open relay found by `reputable probe relay` is listed in DNS while serve runs, and a
removal request after the fix re-probes it and ends the listing within seconds."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import pytest

from reputable.testing import RunningServer, cli, free_port, write_config
from tests.evidence.probe_servers import SmtpTarget, start_relay, stop

HOST = "127.0.0.5"
NAME = "5.0.0.127.bl.reputable.test"


def a_codes(port: int, name: str) -> set[str]:
    """Return the A codes the server on *port* answers for *name*."""
    reply = dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=3)
    return {r.address for rrset in reply.answer for r in rrset}


@pytest.fixture
def relay() -> Iterator[SmtpTarget]:
    """An open relay (aiosmtpd) on 127.0.0.5, served from a background event loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    target = asyncio.run_coroutine_threadsafe(start_relay(HOST, closed=False), loop).result(60)
    try:
        yield target
    finally:
        asyncio.run_coroutine_threadsafe(stop(target.server), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def wait_for(port: int, wanted: set[str], running: RunningServer) -> None:
    """Wait up to 60 s (a loaded machine) for the A answer of NAME to become *wanted*."""
    deadline = time.monotonic() + 60
    while a_codes(port, NAME) != wanted:
        assert time.monotonic() < deadline, running.log()
        time.sleep(0.2)


def test_probe_finding_lists_and_fix_delists(tmp_path: Path, relay: SmtpTarget) -> None:
    """One open-relay finding answers 127.0.0.5; after the fix a removal request ends it."""
    port = free_port()
    extra = '[probes]\nallow = ["127.0.0.0/8"]\ntimeout = "3s"\nper_target = "1s"\n'
    config = write_config(tmp_path, dns_port=port, extra=extra)
    config.write_text(config.read_text().replace('interval = "5s"', 'interval = "1s"'))
    with RunningServer(config) as running:
        found = cli(config, "probe", "relay", f"{HOST}:{relay.port}")
        assert "open" in found.stdout
        wait_for(port, {"127.0.0.5"}, running)
        relay.handler.closed = True  # the admin fixes the relay
        time.sleep(1.1)  # probes.per_target
        asked = cli(
            config, "delist", "request", HOST, "--contact", "admin@example.net", "--note", "fixed"
        )
        assert "closed" in asked.stdout and "no longer listed" in asked.stdout, asked.stdout
        wait_for(port, set(), running)
    assert not relay.handler.data_seen
    explained = cli(config, "explain", HOST, "--json", check=False).stdout
    assert "re-probe found it closed" in explained

"""The SMTP probe against aiosmtpd servers on 127.0.0.1: banner, STARTTLS, open-relay test."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from typer.testing import CliRunner

from reputable.checker.model import Finding, Severity
from reputable.checker.smtp import probe
from reputable.core.cause import Cause
from reputable.core.errors import InputError
from tests.checker.dnsfixture import DnsFixture
from tests.checker.test_cli import app

LOOPBACK = (ip_network("127.0.0.0/8"),)


class Recorder:
    """An aiosmtpd handler that records commands; relays for anyone unless *closed*."""

    def __init__(self, closed: bool) -> None:
        self.closed = closed
        self.data_seen = False

    async def handle_RCPT(  # noqa: N802  # aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        """Refuse foreign recipients when closed, else accept like an open relay."""
        if self.closed and not address.endswith("@local.test"):
            return "554 5.7.1 Relay access denied"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802  # aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        """Record that DATA was sent (the probe must never do that)."""
        self.data_seen = True
        return "250 OK"


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(params=[False, True], ids=["open", "closed"])
def smtp_server(request: pytest.FixtureRequest) -> Iterator[tuple[Recorder, int]]:
    """Run an aiosmtpd server on 127.0.0.1, open or closed relay."""
    handler = Recorder(closed=request.param)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def run_probe(port: int) -> list[Finding]:
    """Probe 127.0.0.1:port with a loopback-only allow-list."""
    return asyncio.run(probe(ip_address("127.0.0.1"), allowed=LOOPBACK, port=port, timeout=5))


def test_relay_test_detects_open_and_closed_relays(smtp_server: tuple[Recorder, int]) -> None:
    """An open relay is an open_relay error, a closed one ok; DATA is never sent."""
    handler, port = smtp_server
    findings = run_probe(port)
    relay = next(f for f in findings if f.check == "relay")
    assert relay.cause is Cause.OPEN_RELAY
    assert relay.severity is (Severity.OK if handler.closed else Severity.ERROR)
    assert not handler.data_seen
    assert any(f.check == "smtp" and f.message.startswith("banner: 220") for f in findings)
    assert any(f.check == "starttls" and f.severity is Severity.WARNING for f in findings)


def test_probe_refuses_targets_outside_allow_list() -> None:
    """The probe never connects to an address outside the allow-list."""
    with pytest.raises(InputError, match=r"refusing to probe 192\.0\.2\.1"):
        asyncio.run(probe(ip_address("192.0.2.1"), allowed=LOOPBACK))


def test_no_server_is_reported_not_raised() -> None:
    """A closed port is an info finding, not a crash."""
    findings = run_probe(free_port())
    assert [f.severity for f in findings] == [Severity.INFO]


def test_check_smtp_flag_probes_only_the_checked_ip(
    smtp_server: tuple[Recorder, int], world: DnsFixture, zone_file: Path
) -> None:
    """``check 127.0.0.1 --smtp`` reports the relay finding of that address in the JSON."""
    handler, port = smtp_server
    result = CliRunner().invoke(
        app(),
        ["check", "127.0.0.1", "--smtp", "--smtp-port", str(port), "--json", "--nameserver",
         world.nameserver, "--no-builtin", "--zone-file", str(zone_file), "--zone", "clean.test"],
    )  # fmt: skip
    relay = [f for f in json.loads(result.output)["findings"] if f["check"] == "relay"]
    assert [f["severity"] for f in relay] == ["ok" if handler.closed else "error"]
    assert relay[0]["cause"] == "open_relay"

"""The SMTP probe against aiosmtpd servers on 127.0.0.1: banner, STARTTLS, open-relay test."""

from __future__ import annotations

import asyncio
import json
import select
import socket
from collections.abc import Iterator
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from typer.testing import CliRunner

from reputable.app import open_store
from reputable.checker.model import Finding, Severity
from reputable.checker.smtp import probe
from reputable.config import DEFAULT_TOML, load_config
from reputable.core.cause import Cause
from reputable.core.errors import InputError
from reputable.testing import free_port, start_smtp
from tests.checker.dnsfixture import DnsFixture
from tests.checker.test_cli import app
from tests.checker.testca import TestCA, make_ca

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


@pytest.fixture(params=[False, True], ids=["open", "closed"])
def smtp_server(request: pytest.FixtureRequest) -> Iterator[tuple[Recorder, int]]:
    """Run an aiosmtpd server on 127.0.0.1, open or closed relay."""
    handler = Recorder(closed=request.param)
    controller, port = start_smtp(handler)
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
    code, output = check_smtp(world, zone_file, port, "--allow", "127.0.0.0/8")
    relay = [f for f in json.loads(output)["findings"] if f["check"] == "relay"]
    assert [f["severity"] for f in relay] == ["ok" if handler.closed else "error"]
    assert relay[0]["cause"] == "open_relay"
    assert code == 0


def check_smtp(world: DnsFixture, zone_file: Path, port: int, *args: str) -> tuple[int, str]:
    """Run ``check 127.0.0.1 --smtp --json`` against the fixture lists; return code and output."""
    result = CliRunner().invoke(
        app(),
        ["check", "127.0.0.1", "--smtp", "--smtp-port", str(port), "--json", "--nameserver",
         world.nameserver, "--no-builtin", "--zone-file", str(zone_file), "--zone", "clean.test",
         *args],
    )  # fmt: skip
    return result.exit_code, result.output


def test_check_smtp_obeys_the_probe_allow_list(world: DnsFixture, zone_file: Path) -> None:
    """Regression: ``check --smtp`` outside [probes] allow (and no --allow) connects to nothing."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        code, output = check_smtp(world, zone_file, listener.getsockname()[1])
        readable, _, _ = select.select([listener], [], [], 0.2)
    said = " ".join(output.split())  # the terminal may wrap the message
    assert code == 2
    assert "outside the allow-list (probes.allow)" in said and "--allow CIDR" in said
    assert readable == [], "the check connected although the address is not allowed"


def test_check_smtp_obeys_the_per_target_interval(
    smtp_server: tuple[Recorder, int],
    world: DnsFixture,
    zone_file: Path,
    tmp_path: Path,
    store_dsn: str,
) -> None:
    """A second ``check --smtp`` within probes.per_target is refused; the first was recorded."""
    _, port = smtp_server
    config = tmp_path / "reputable.toml"
    config.write_text(
        DEFAULT_TOML.replace("sqlite:///reputable.db", store_dsn)
        + '\n[probes]\nallow = ["127.0.0.0/8"]\nper_target = "10m"\n',
        encoding="utf-8",
    )
    open_store(load_config(config)).close()
    first, _ = check_smtp(world, zone_file, port, "--config", str(config))
    second, output = check_smtp(world, zone_file, port, "--config", str(config))
    assert first == 0
    assert second == 2 and "probes.per_target allows one every 600s" in " ".join(output.split())
    store = open_store(load_config(config))
    try:
        sources = {r.source for r in store.evidence_records(["127.0.0.1"])}
    finally:
        store.close()
    assert sources == {"probe:relay"}


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Recorder, int, TestCA]]:
    """Run a closed-relay aiosmtpd server on 127.0.0.1 that offers STARTTLS (test CA)."""
    ca = make_ca(tmp_path / "tls")
    handler = Recorder(closed=True)
    controller, port = start_smtp(handler, tls_context=ca.server_context())
    yield handler, port, ca
    controller.stop()


def test_starttls_is_used_and_its_certificate_verified(
    tls_server: tuple[Recorder, int, TestCA],
) -> None:
    """A server offering STARTTLS with a certificate of the given CA: TLS works and is trusted."""
    handler, port, ca = tls_server
    findings = asyncio.run(
        probe(
            ip_address("127.0.0.1"), allowed=LOOPBACK, port=port, timeout=5, cafile=str(ca.ca_file)
        )
    )
    tls = [f for f in findings if f.check == "starttls"]
    assert [f.severity for f in tls] == [Severity.OK]
    assert tls[0].message.startswith("STARTTLS works (TLSv1.") and "verified" in tls[0].message
    relay = next(f for f in findings if f.check == "relay")
    assert relay.severity is Severity.OK and not handler.data_seen


def test_starttls_with_an_untrusted_certificate_is_a_finding(
    tls_server: tuple[Recorder, int, TestCA], tmp_path: Path
) -> None:
    """A certificate another CA signed fails the handshake: a starttls warning, not a crash."""
    _, port, _ = tls_server
    other = make_ca(tmp_path / "other", label="other")
    findings = asyncio.run(
        probe(
            ip_address("127.0.0.1"),
            allowed=LOOPBACK,
            port=port,
            timeout=5,
            cafile=str(other.ca_file),
        )
    )
    assert [(f.check, f.severity) for f in findings] == [("starttls", Severity.WARNING)]
    assert "TLS handshake failed" in findings[0].message


def test_starttls_without_ca_tests_tls_only(tls_server: tuple[Recorder, int, TestCA]) -> None:
    """Without a CA file the probe still negotiates TLS and says nothing about trust."""
    _, port, _ = tls_server
    findings = run_probe(port)
    tls = next(f for f in findings if f.check == "starttls")
    assert tls.severity is Severity.OK and "verified" not in tls.message


def test_unreadable_ca_file_is_a_message(
    world: DnsFixture, zone_file: Path, tmp_path: Path
) -> None:
    """A --smtp-ca that is not a CA file ends the check with a message naming it, no traceback."""
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n", encoding="utf-8")
    code, output = check_smtp(
        world, zone_file, free_port(), "--allow", "127.0.0.1/32", "--smtp-ca", str(bad)
    )
    assert code == 2
    assert f"--smtp-ca {bad}: cannot load CA certificates" in " ".join(output.split())
    assert "Traceback" not in output


def test_silent_listener_is_unreachable_and_stalled_dialogue_a_warning() -> None:
    """No greeting at all reads as no SMTP server; a greeting then silence as a stalled dialogue."""

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Greet, then say nothing more until the client leaves."""
        writer.write(b"220 slow.test ESMTP\r\n")
        await writer.drain()
        await reader.read()
        writer.close()

    async def go() -> tuple[list[Finding], list[Finding]]:
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen()
            quiet = await probe(
                ip_address("127.0.0.1"), allowed=LOOPBACK, port=silent.getsockname()[1],
                timeout=0.3,
            )  # fmt: skip
        server = await asyncio.start_server(stall, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        stalled = await probe(ip_address("127.0.0.1"), allowed=LOOPBACK, port=port, timeout=0.3)
        server.close()
        await server.wait_closed()
        return quiet, stalled

    quiet, stalled = asyncio.run(go())
    assert [(f.severity, f.check) for f in quiet] == [(Severity.INFO, "smtp")]
    assert "no SMTP server reachable" in quiet[0].message and "no greeting" in quiet[0].message
    assert [f.severity for f in stalled] == [Severity.WARNING]
    assert "stopped: no reply within 0.3s" in stalled[0].message


def test_message_with_file_is_rejected(world: DnsFixture, zone_file: Path, tmp_path: Path) -> None:
    """--message goes with one subject; with --file it is refused, saying why."""
    subjects = tmp_path / "ips.txt"
    subjects.write_text("127.0.0.1\n", encoding="utf-8")
    eml = tmp_path / "m.eml"
    eml.write_bytes(b"From: a@example.net\r\n\r\nbody\r\n")
    result = CliRunner().invoke(
        app(),
        ["check", "--nameserver", world.nameserver, "--no-builtin", "--zone-file",
         str(zone_file), "--file", str(subjects), "--message", str(eml)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--message with --file" in " ".join(result.output.split())

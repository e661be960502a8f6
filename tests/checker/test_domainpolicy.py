"""MTA-STS (policy over HTTPS from a loopback server with a test CA), TLS-RPT, BIMI and DNSSEC."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from reputable.checker import domainpolicy
from reputable.checker.model import Finding, Severity
from reputable.checker.service import Request, check
from reputable.core.dnsclient import DnsClient, parse_nameserver
from tests.checker.dnsfixture import DnsFixture
from tests.checker.testca import TestCA, make_ca

POLICIES = {
    "mta-sts.example.net": "version: STSv1\nmode: enforce\nmx: mail.example.net\nmax_age: 86400\n",
    "mta-sts.policy.example": "version: STSv1\nmode: enforce\nmx: *.example.org\nmax_age: 86400\n",
}


class PolicyHandler(BaseHTTPRequestHandler):
    """Serves each Host its MTA-STS policy file; anything else is 404."""

    def do_GET(self) -> None:  # http.server's method name
        """Answer the policy of the Host asked for."""
        body = POLICIES.get(self.headers.get("Host", ""))
        if self.path != domainpolicy.POLICY_PATH or body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # stdlib signature
        """Stay quiet."""


@pytest.fixture
def policy_server(tmp_path: Path) -> Iterator[tuple[int, TestCA]]:
    """Serve the policies over HTTPS on 127.0.0.1 with a certificate of a fresh test CA."""
    ca = make_ca(tmp_path / "https", names=tuple(POLICIES))
    server = ThreadingHTTPServer(("127.0.0.1", 0), PolicyHandler)
    server.socket = ca.server_context().wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], ca
    server.shutdown()
    server.server_close()
    thread.join(5)


def policies(world: DnsFixture, domain: str, mx: list[str], port: int, ca: Path) -> list[Finding]:
    """Return the domain-policy findings of *domain*, the policy host mapped to the server."""

    async def go() -> list[Finding]:
        async with DnsClient(parse_nameserver(world.nameserver), timeout=0.5) as client:
            return await domainpolicy.domain_policies(
                client,
                domain,
                mx,
                context=ssl.create_default_context(cafile=str(ca)),
                addresses={f"mta-sts.{domain}": ("127.0.0.1", port)},
            )

    return asyncio.run(go())


def by_check(findings: list[Finding]) -> dict[str, Finding]:
    """Return the findings by check name (one each here)."""
    return {f.check: f for f in findings}


def test_good_domain_policies(world: DnsFixture, policy_server: tuple[int, TestCA]) -> None:
    """Enforced MTA-STS covering the MX, TLS-RPT, BIMI syntax and an AD-marked answer all pass."""
    port, ca = policy_server
    found = by_check(policies(world, "example.net", ["mail.example.net"], port, ca.ca_file))
    assert {c: f.severity for c, f in found.items()} == {
        "mta-sts": Severity.OK, "tls-rpt": Severity.OK, "bimi": Severity.OK,
        "dnssec": Severity.OK,
    }, found  # fmt: skip
    assert "mode enforce" in found["mta-sts"].message
    assert "mailto:tls@example.net" in found["tls-rpt"].message


def test_bad_domain_policies(world: DnsFixture, policy_server: tuple[int, TestCA]) -> None:
    """An MX outside the policy, bad TLS-RPT and BIMI URIs, no AD bit: each said with its fix."""
    port, ca = policy_server
    findings = policies(world, "policy.example", ["mx.policy.example"], port, ca.ca_file)
    found = {f.check: f for f in findings if f.severity is not Severity.OK}
    assert found["mta-sts"].severity is Severity.ERROR
    assert "does not cover MX mx.policy.example" in found["mta-sts"].message
    assert found["tls-rpt"].severity is Severity.WARNING
    assert "l= must be an https URL of an SVG file" in found["bimi"].message
    assert found["dnssec"].severity is Severity.INFO and "AD bit clear" in found["dnssec"].message


def test_policy_with_untrusted_certificate_is_an_error(
    world: DnsFixture, policy_server: tuple[int, TestCA], tmp_path: Path
) -> None:
    """A policy host whose certificate another CA signed cannot serve the policy."""
    port, _ = policy_server
    other = make_ca(tmp_path / "other", label="other")
    found = by_check(policies(world, "example.net", ["mail.example.net"], port, other.ca_file))
    assert found["mta-sts"].severity is Severity.ERROR
    assert "cannot be fetched" in found["mta-sts"].message


def test_domain_check_includes_the_policies(
    world: DnsFixture, zone_file: Path, policy_server: tuple[int, TestCA]
) -> None:
    """A domain check runs MTA-STS, TLS-RPT, BIMI and DNSSEC next to MX and mail auth."""
    from reputable.checker.catalogue import load_zone_file  # test-only import

    port, ca = policy_server
    request = Request(
        subject="example.net",
        https_cafile=str(ca.ca_file),
        https_addresses=(("mta-sts.example.net", "127.0.0.1", port),),
    )

    async def go() -> list[Finding]:
        async with DnsClient(parse_nameserver(world.nameserver), timeout=0.5) as client:
            report = await check(request, load_zone_file(zone_file), client)
        return list(report.findings)

    checks = {f.check: f.severity for f in asyncio.run(go())}
    assert checks["mta-sts"] is Severity.OK and checks["dnssec"] is Severity.OK


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("version: STSv2\nmode: enforce\nmx: a\nmax_age: 1\n", "version must be STSv1"),
        ("version: STSv1\nmode: strict\nmx: a\nmax_age: 1\n", "mode must be"),
        ("version: STSv1\nmode: enforce\nmax_age: 1\n", "no mx: line"),
        ("version: STSv1\nmode: enforce\nmx: a\nmax_age: 99999999999\n", "max_age"),
        ("version STSv1\n", "is not 'key: value'"),
    ],
)
def test_policy_syntax(text: str, why: str) -> None:
    """Malformed policy files are rejected with what is wrong (RFC 8461 §3.2)."""
    policy, reason = domainpolicy.parse_policy(text)
    assert policy is None and why in reason


def test_mx_wildcards_cover_one_label() -> None:
    """``*.example.net`` matches mail.example.net, not example.net nor a.b.example.net."""
    assert domainpolicy.mx_matches("mail.example.net.", "*.example.net")
    assert not domainpolicy.mx_matches("example.net", "*.example.net")
    assert not domainpolicy.mx_matches("a.b.example.net", "*.example.net")

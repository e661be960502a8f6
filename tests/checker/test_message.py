"""`check --message`: DKIM verification, alignment, RFC 8058 one-click unsubscribe, readiness lines."""

from __future__ import annotations

import json
from ipaddress import ip_address
from pathlib import Path

import dkim
import pytest

from reputable.checker import message
from reputable.checker.bulk import State, readiness
from reputable.checker.model import Finding, Report, Severity
from reputable.core.cause import Cause
from reputable.core.dnsclient import parse_nameserver, sync_resolver
from tests.checker.conftest import DKIM_PRIVATE_PEM, LISTED_IP
from tests.checker.dnsfixture import DnsFixture
from tests.checker.test_cli import run

SIGNED = (b"from", b"to", b"subject", b"list-unsubscribe", b"list-unsubscribe-post")


def sample(
    *,
    sender: str = "news@example.net",
    return_path: str = "bounce@example.net",
    unsubscribe: bool = True,
    post: str = "List-Unsubscribe=One-Click",
    signed: tuple[bytes, ...] = SIGNED,
    sign: bool = True,
    tamper: bool = False,
) -> bytes:
    """Return a bulk message as received, DKIM-signed by example.net's "default" key."""
    head = [f"From: News <{sender}>", "To: reader@example.org", "Subject: Our December news"]
    if unsubscribe:
        head += [
            "List-Unsubscribe: <https://example.net/u/123>, <mailto:u@example.net>",
            f"List-Unsubscribe-Post: {post}",
        ]
    body = "Hello,\r\nthe news.\r\n"
    raw = ("\r\n".join(head) + "\r\n\r\n" + body).encode()
    if sign:
        signature = dkim.sign(
            raw, b"default", b"example.net", DKIM_PRIVATE_PEM, include_headers=list(signed)
        )
        raw = signature + raw
    if tamper:
        raw = raw.replace(b"the news.", b"the NEWS!")
    return f"Return-Path: <{return_path}>\r\n".encode() + raw


def assess(world: DnsFixture, raw: bytes) -> dict[str, Finding]:
    """Return the message findings of *raw*, by check name, DKIM keys asked of the fixture."""
    resolver = sync_resolver(parse_nameserver(world.nameserver), 0.5, 1)
    return {f.check: f for f in message.assess(raw, resolver)}


def test_signed_aligned_message_with_one_click_passes(world: DnsFixture) -> None:
    """A message signed by its From domain with RFC 8058 headers signed passes every check."""
    found = assess(world, sample())
    assert {c: f.severity for c, f in found.items()} == {
        "from": Severity.OK, "message-dkim": Severity.OK, "alignment": Severity.OK,
        "list-unsubscribe": Severity.OK,
    }  # fmt: skip
    assert "d=example.net s=default" in found["message-dkim"].message
    assert "https://example.net/u/123" in found["list-unsubscribe"].message


def test_changed_body_fails_dkim_and_alignment(world: DnsFixture) -> None:
    """A body changed after signing fails DKIM; with a foreign Return-Path nothing aligns."""
    found = assess(world, sample(tamper=True, return_path="bounce@esp.example"))
    assert found["message-dkim"].severity is Severity.ERROR
    assert "does not verify" in found["message-dkim"].message
    assert found["alignment"].severity is Severity.ERROR


def test_return_path_alignment_without_dkim(world: DnsFixture) -> None:
    """Unsigned mail aligns through its Return-Path domain (SPF must then pass for it)."""
    found = assess(world, sample(sign=False, return_path="bounce@mail.example.net"))
    assert found["message-dkim"].severity is Severity.ERROR
    assert found["alignment"].severity is Severity.OK
    assert "Return-Path domain mail.example.net is aligned" in found["alignment"].message


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"unsubscribe": False}, "no List-Unsubscribe header"),
        ({"post": "yes"}, "not 'List-Unsubscribe=One-Click'"),
        ({"signed": (b"from", b"to", b"subject")}, "not covered by the DKIM signature"),
    ],
)
def test_one_click_unsubscribe_rules(
    world: DnsFixture, kwargs: dict[str, object], words: str
) -> None:
    """RFC 8058: https URI, the exact Post value, and both headers under the DKIM signature."""
    found = assess(world, sample(**kwargs))  # type: ignore[arg-type]  # the parameters above
    assert found["list-unsubscribe"].severity is Severity.ERROR
    assert words in found["list-unsubscribe"].message


def test_check_with_message_gives_readiness_lines(
    world: DnsFixture, zone_file: Path, tmp_path: Path
) -> None:
    """`check IP --message` takes the domain from From and reports one line per requirement."""
    eml = tmp_path / "sample.eml"
    eml.write_bytes(sample())
    code, out = run(world, zone_file, LISTED_IP, "--message", str(eml), "--json",
                    "--zone", "clean.test")  # fmt: skip
    doc = json.loads(out)
    states = {r["name"]: r["state"] for r in doc["readiness"]["requirements"]}
    assert code == 0
    assert states.pop("TLS offered on the SMTP path (STARTTLS)") == "cannot tell"
    assert set(states.values()) == {"pass"}, states
    assert doc["readiness"]["summary"] == (
        "cannot tell yet: 1 of 8 requirements could not be checked"
    )


def test_terminal_shows_readiness_summary(
    world: DnsFixture, zone_file: Path, tmp_path: Path
) -> None:
    """The terminal report has a readiness section with a verdict line per requirement."""
    eml = tmp_path / "sample.eml"
    eml.write_bytes(sample(unsubscribe=False))
    _, out = run(world, zone_file, LISTED_IP, "--message", str(eml), "--zone", "clean.test")
    flat = " ".join(out.split())
    assert "Bulk-sender readiness: not ready for bulk sending: 1 of 8 requirements fail" in flat
    assert "fail one-click unsubscribe (RFC 8058): no List-Unsubscribe header" in flat


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "cannot read"),
        (b"just a body, no headers\n", "no From header"),
    ],
)
def test_bad_message_file_is_a_message(
    world: DnsFixture, zone_file: Path, tmp_path: Path, content: bytes | None, words: str
) -> None:
    """A missing or headerless --message file is exit 2 with the file and the fix named."""
    eml = tmp_path / "sample.eml"
    if content is not None:
        eml.write_bytes(content)
    code, out = run(world, zone_file, LISTED_IP, "--message", str(eml))
    flat = " ".join(out.split())
    assert code == 2 and f"--message {eml}" in flat and words in flat
    assert "Traceback" not in out


def test_readiness_ready_when_every_requirement_passes() -> None:
    """All eight requirements passing reads "ready"; a sending-less report has no readiness."""

    def ok(check: str, text: str) -> Finding:
        return Finding(check=check, cause="mail_auth", severity=Severity.OK, message=text)

    findings = (
        ok("spf", "SPF of example.net authorises 192.0.2.7"),
        ok("message-dkim", "DKIM signature verifies (d=example.net s=k)"),
        ok("dmarc", "DMARC of example.net: policy p=reject"),
        ok("alignment", "DKIM d=example.net is aligned with From domain example.net"),
        Finding(check="rdns", cause=Cause.RDNS, severity=Severity.OK, message="PTR ok (FCrDNS)"),
        ok("starttls", "STARTTLS works (TLSv1.3)"),
        ok("list-unsubscribe", "one-click unsubscribe: https://example.net/u (RFC 8058)"),
        ok("from", "From domain example.net, Return-Path domain example.net"),
    )
    ready = readiness(Report(subject="192.0.2.7", findings=findings))
    assert ready is not None and ready.verdict == "ready"
    assert {r.state for r in ready.requirements} == {State.PASS}
    assert readiness(Report(subject=str(ip_address("192.0.2.7")))) is None

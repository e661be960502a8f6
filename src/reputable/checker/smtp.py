"""SMTP probe of the checked address: banner, EHLO, STARTTLS and an open-relay test without DATA.

Banner, EHLO and STARTTLS problems use cause ``mail_auth`` (they hurt delivery, never list).
The relay test asks the server to accept mail from one outside domain to another (both RFC 2606
reserved names), then resets and quits: it never sends DATA, so no message can ever be relayed.
Only the address being checked is probed, and callers pass an allow-list of networks the probe
may reach (tests: loopback only).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Sequence
from typing import Final

from reputable.checker.model import MAIL_AUTH, Finding, FindingCause, Severity
from reputable.core.address import IPAddress, IPNetwork
from reputable.core.cause import Cause
from reputable.core.errors import InputError

RELAY_FROM: Final = "relay-test@example.com"
RELAY_TO: Final = "relay-test@example.org"


class SmtpError(Exception):
    """The server closed, timed out or spoke something that is not SMTP."""


def _f(check: str, cause: FindingCause, severity: Severity, message: str, fix: str = "") -> Finding:
    return Finding(check=check, cause=cause, severity=severity, message=message, remediation=fix)


def permitted(address: IPAddress, allowed: Sequence[IPNetwork]) -> bool:
    """True when *address* lies in one of the *allowed* networks."""
    return any(address.version == n.version and address in n for n in allowed)


class _Session:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float):
        self.reader, self.writer, self.timeout = reader, writer, timeout

    async def reply(self) -> tuple[int, list[str]]:
        lines: list[str] = []
        async with asyncio.timeout(self.timeout):
            while True:
                raw = await self.reader.readline()
                if not raw:
                    raise SmtpError("the server closed the connection")
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if len(line) < 3 or not line[:3].isdigit():
                    raise SmtpError(f"not an SMTP reply: {line[:60]!r}")
                lines.append(line[4:])
                if line[3:4] != "-":
                    return int(line[:3]), lines

    async def command(self, text: str) -> tuple[int, list[str]]:
        self.writer.write(text.encode() + b"\r\n")
        await self.writer.drain()
        return await self.reply()


async def _starttls(session: _Session, helo: str) -> Finding:
    code, text = await session.command("STARTTLS")
    if code != 220:
        return _f(
            "starttls",
            MAIL_AUTH,
            Severity.WARNING,
            f"STARTTLS refused: {code} {text[0]}",
            "Fix the TLS setup of the MTA (certificate and key paths).",
        )
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only whether TLS works is tested here, not the cert
    try:
        async with asyncio.timeout(session.timeout):
            await session.writer.start_tls(context)
    except (ssl.SSLError, OSError, TimeoutError) as exc:
        raise SmtpError(f"TLS handshake failed: {exc}") from exc
    await session.command(f"EHLO {helo}")
    version = session.writer.get_extra_info("ssl_object").version()
    return _f("starttls", MAIL_AUTH, Severity.OK, f"STARTTLS works ({version})")


async def _conversation(session: _Session, address: IPAddress, helo: str) -> list[Finding]:
    code, text = await session.reply()
    if code != 220:
        return [
            _f(
                "smtp",
                MAIL_AUTH,
                Severity.ERROR,
                f"banner is {code} {' '.join(text)}",
                "The server should greet with 220; check its access rules.",
            )
        ]
    findings = [_f("smtp", MAIL_AUTH, Severity.OK, f"banner: 220 {text[0]}")]
    code, caps = await session.command(f"EHLO {helo}")
    if code != 250:
        findings.append(
            _f(
                "smtp",
                MAIL_AUTH,
                Severity.WARNING,
                f"EHLO answered {code}",
                "Enable ESMTP (EHLO) on the server.",
            )
        )
    elif any(c.upper().startswith("STARTTLS") for c in caps):
        findings.append(await _starttls(session, helo))
    else:
        findings.append(
            _f(
                "starttls",
                MAIL_AUTH,
                Severity.WARNING,
                "STARTTLS is not offered",
                "Enable STARTTLS (Postfix: smtpd_tls_security_level = may).",
            )
        )
    code, _ = await session.command(f"MAIL FROM:<{RELAY_FROM}>")
    if code == 250:
        code, text = await session.command(f"RCPT TO:<{RELAY_TO}>")
    if code in (250, 251):
        findings.append(
            _f(
                "relay",
                Cause.OPEN_RELAY,
                Severity.ERROR,
                f"{address} accepts mail from {RELAY_FROM} to {RELAY_TO}: open relay",
                "Allow relaying only for your own networks and authenticated users"
                " (Postfix: smtpd_relay_restrictions = permit_mynetworks,"
                " permit_sasl_authenticated, defer_unauth_destination).",
            )
        )
    else:
        findings.append(
            _f("relay", Cause.OPEN_RELAY, Severity.OK, f"relaying to {RELAY_TO} refused ({code})")
        )
    await session.command("RSET")
    session.writer.write(b"QUIT\r\n")
    return findings


async def probe(
    address: IPAddress,
    *,
    allowed: Sequence[IPNetwork],
    port: int = 25,
    helo: str = "reputable-check.invalid",
    timeout: float = 10.0,
) -> list[Finding]:
    """Probe the SMTP server at *address*; refuses any address outside *allowed*."""
    if not permitted(address, allowed):
        raise InputError(f"refusing to probe {address}: the SMTP probe may only reach "
                         f"{', '.join(map(str, allowed)) or 'nothing'}")  # fmt: skip
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(str(address), port)
    except (OSError, TimeoutError) as exc:
        return [
            _f(
                "smtp",
                MAIL_AUTH,
                Severity.INFO,
                f"no SMTP server reachable on {address}:{port} ({exc or 'timeout'})",
                "If this host sends mail only,"
                " that is fine; a mail server must accept connections on port 25.",
            )
        ]
    session = _Session(reader, writer, timeout)
    try:
        return await _conversation(session, address, helo)
    except (SmtpError, OSError, TimeoutError) as exc:
        return [
            _f(
                "smtp",
                MAIL_AUTH,
                Severity.WARNING,
                f"SMTP dialogue with {address} failed: {exc or 'timeout'}",
                "Check the server's logs for this connection.",
            )
        ]
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()

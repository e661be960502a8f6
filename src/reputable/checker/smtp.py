"""SMTP probe of the checked address: banner, EHLO, STARTTLS and an open-relay test without DATA.

The conversation is the one shared SMTP dialogue of core/smtp.py (the open-relay probe holds the
same one); this module turns what it showed into findings. Banner, EHLO and STARTTLS problems
use cause ``mail_auth`` (they hurt delivery, never list). The relay test asks the server to
accept mail from one outside domain to another (both RFC 2606 reserved names), then resets and
quits: it never sends DATA, so no message can ever be relayed. Only the address being checked
is probed, and callers pass an allow-list of networks the probe may reach (the CLI: the
``[probes]`` allow-list and rate limits; tests: loopback only).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Sequence
from typing import Final

from reputable.checker.model import MAIL_AUTH, Finding, FindingCause, Severity
from reputable.core.address import IPAddress, IPNetwork
from reputable.core.cause import Cause
from reputable.core.errors import InputError
from reputable.core.smtp import Dialogue, SmtpError, converse

RELAY_FROM: Final = "relay-test@example.com"
RELAY_TO: Final = "relay-test@example.org"


def _f(check: str, cause: FindingCause, severity: Severity, message: str, fix: str = "") -> Finding:
    return Finding(check=check, cause=cause, severity=severity, message=message, remediation=fix)


def permitted(address: IPAddress, allowed: Sequence[IPNetwork]) -> bool:
    """True when *address* lies in one of the *allowed* networks."""
    return any(address.version == n.version and address in n for n in allowed)


def tls_context(cafile: str | None = None) -> ssl.SSLContext:
    """Return the client TLS context: chain checked against *cafile*, or only TLS itself tested.

    The checked server is known by address only, so the host name is never matched.
    """
    if cafile:
        try:
            context = ssl.create_default_context(cafile=cafile)
        except (OSError, ssl.SSLError) as exc:
            raise InputError(
                f"--smtp-ca {cafile}: cannot load CA certificates ({exc.strerror or exc});"
                " give a PEM file of CA certificates"
            ) from exc
        context.check_hostname = False
        return context
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only whether TLS works is tested, not the certificate
    return context


def _tls_finding(dialogue: Dialogue, verified: bool) -> Finding:
    if not dialogue.starttls_offered:
        return _f(
            "starttls",
            MAIL_AUTH,
            Severity.WARNING,
            "STARTTLS is not offered",
            "Enable STARTTLS (Postfix: smtpd_tls_security_level = may, with smtpd_tls_cert_file"
            " and smtpd_tls_key_file); large mailbox providers require TLS from bulk senders.",
        )
    if dialogue.starttls is not None and dialogue.starttls.code != 220:
        return _f(
            "starttls",
            MAIL_AUTH,
            Severity.WARNING,
            f"STARTTLS refused: {dialogue.starttls.code} {dialogue.starttls.text}",
            "Fix the TLS setup of the MTA (certificate and key paths).",
        )
    trust = ", certificate verified" if verified else ""
    return _f("starttls", MAIL_AUTH, Severity.OK, f"STARTTLS works ({dialogue.tls_version}{trust})")


def findings_of(dialogue: Dialogue, address: IPAddress, *, verified: bool = False) -> list[Finding]:
    """Return the findings of one SMTP dialogue with *address* (pure)."""
    banner = dialogue.banner
    if banner.code != 220:
        return [
            _f(
                "smtp",
                MAIL_AUTH,
                Severity.ERROR,
                f"banner is {banner.code} {' '.join(banner.lines)}",
                "The server should greet with 220; check its access rules.",
            )
        ]
    findings = [_f("smtp", MAIL_AUTH, Severity.OK, f"banner: 220 {banner.text}")]
    if not dialogue.esmtp:
        code = dialogue.ehlo.code if dialogue.ehlo is not None else 0
        findings.append(
            _f(
                "smtp",
                MAIL_AUTH,
                Severity.WARNING,
                f"EHLO answered {code}",
                "Enable ESMTP (EHLO) on the server.",
            )
        )
    findings.append(_tls_finding(dialogue, verified))
    if dialogue.mail is None:
        return findings
    if dialogue.relayed:
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
        code = (dialogue.rcpt or dialogue.mail).code
        findings.append(
            _f("relay", Cause.OPEN_RELAY, Severity.OK, f"relaying to {RELAY_TO} refused ({code})")
        )
    return findings


async def probe(
    address: IPAddress,
    *,
    allowed: Sequence[IPNetwork],
    port: int = 25,
    helo: str = "reputable-check.invalid",
    timeout: float = 10.0,
    cafile: str | None = None,
) -> list[Finding]:
    """Probe the SMTP server at *address*; refuses any address outside *allowed*."""
    if not permitted(address, allowed):
        raise InputError(f"refusing to probe {address}: the SMTP probe may only reach "
                         f"{', '.join(map(str, allowed)) or 'nothing'}")  # fmt: skip
    heard: list[str] = []  # lines the server sent: none means it was never reached
    try:
        dialogue = await converse(
            address,
            port,
            helo=helo,
            sender=RELAY_FROM,
            recipient=RELAY_TO,
            timeout=timeout,
            tls=tls_context(cafile),
            log=lambda side, line: heard.append(line) if side == "S" else None,
        )
    except (ConnectionRefusedError, socket.gaierror) as exc:
        return [_unreachable(address, port, str(exc))]
    except TimeoutError:
        if not heard:
            return [_unreachable(address, port, f"no greeting within {timeout:g}s")]
        return [
            _f(
                "smtp",
                MAIL_AUTH,
                Severity.WARNING,
                f"SMTP dialogue with {address} stopped: no reply within {timeout:g}s",
                "Check the server's logs for this connection (slow DNS checks or tarpitting).",
            )
        ]
    except (SmtpError, OSError) as exc:
        if str(exc).startswith("TLS handshake failed"):
            return [
                _f(
                    "starttls",
                    MAIL_AUTH,
                    Severity.WARNING,
                    f"STARTTLS offered by {address} but {exc}",
                    "Install a certificate chain your peers accept (and its key) in the MTA"
                    " (Postfix: smtpd_tls_chain_files), then check again.",
                )
            ]
        if isinstance(exc, OSError) and not isinstance(exc, SmtpError):
            return [_unreachable(address, port, str(exc))]
        return [
            _f(
                "smtp",
                MAIL_AUTH,
                Severity.WARNING,
                f"SMTP dialogue with {address} failed: {exc}",
                "Check the server's logs for this connection.",
            )
        ]
    return findings_of(dialogue, address, verified=bool(cafile))


def _unreachable(address: IPAddress, port: int, why: str) -> Finding:
    return _f(
        "smtp",
        MAIL_AUTH,
        Severity.INFO,
        f"no SMTP server reachable on {address}:{port} ({why or 'timeout'})",
        "If this host sends mail only, that is fine; a mail server must accept connections on"
        " port 25.",
    )

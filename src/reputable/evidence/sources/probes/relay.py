"""The open-relay probe: EHLO, MAIL FROM an outside address, RCPT TO another, then RSET and QUIT.

The conversation is the one shared SMTP dialogue of core/smtp.py (also used by ``reputable
check --smtp``): it never sends DATA (nor BDAT), so no message can ever be relayed through it.
The target is an open relay when it accepts the outside recipient (RFC 5321 §3.3: 250 or 251 to
RCPT); relays that accept RCPT and would refuse at DATA count as open all the same.
"""

from __future__ import annotations

from typing import Final

from reputable.core.address import IPAddress
from reputable.core.smtp import Dialogue, SmtpError, converse
from reputable.evidence.sources.probes.model import (
    CLOSED,
    ERROR,
    OPEN,
    ProbeResult,
    Transcript,
)

KIND: Final = "relay"
DEFAULT_PORT: Final = 25
#: Kept for callers that catch it: the shared dialogue's error (core/smtp.py).
SmtpProbeError = SmtpError


def verdict(dialogue: Dialogue, sender: str, recipient: str) -> tuple[str, str]:
    """Return the probe result (open / closed) and its reason for *dialogue*."""
    if dialogue.banner.code != 220:
        return CLOSED, f"the server refuses service (banner {dialogue.banner.code})"
    if dialogue.mail is None:
        return CLOSED, "the server refused EHLO and HELO"
    if dialogue.mail.code != 250:
        return CLOSED, f"the server refused the outside sender ({dialogue.mail.code})"
    if dialogue.relayed:
        return OPEN, f"the server accepted mail from {sender} to outside recipient {recipient}"
    code = dialogue.rcpt.code if dialogue.rcpt is not None else 0
    return CLOSED, f"the server refused the outside recipient ({code})"


async def probe_relay(
    address: IPAddress,
    port: int,
    *,
    helo: str,
    sender: str,
    recipient: str,
    timeout: float,
) -> ProbeResult:
    """Probe *address*:*port* for an open relay within *timeout* seconds; never send DATA."""
    log = Transcript()
    sides = {"C": log.sent, "S": log.received}
    result, reason = ERROR, ""
    connected = False

    def line(side: str, text: str) -> None:
        nonlocal connected
        connected = True
        sides[side](text)

    try:
        dialogue = await converse(
            address, port, helo=helo, sender=sender, recipient=recipient, timeout=timeout, log=line
        )
        result, reason = verdict(dialogue, sender, recipient)
    except TimeoutError:
        result, reason = ERROR, f"no complete answer within {timeout:g}s"
    except ConnectionRefusedError:
        result, reason = CLOSED, f"nothing listens on port {port}"
    except (OSError, SmtpError, UnicodeError) as exc:
        result, reason = ERROR, str(exc) or type(exc).__name__
    log.note(f"{result}: {reason}")
    return ProbeResult(
        kind=KIND,
        address=address,
        port=port,
        result=result,
        transcript=tuple(log.lines),
        facts={"mail_from": sender, "rcpt_to": recipient, "connected": connected},
        reason=reason,
    )

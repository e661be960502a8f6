"""The open-relay probe: EHLO, MAIL FROM an outside address, RCPT TO another, then RSET and QUIT.

The probe never sends DATA (nor BDAT): no message can ever be relayed through it. The target
is an open relay when it accepts the outside recipient (RFC 5321 §3.3: 250 or 251 to RCPT).
Some relays accept RCPT and refuse later at DATA; the probe counts them open all the same,
since accepting the recipient is already the relay decision.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from reputable.core.address import IPAddress
from reputable.evidence.sources.probes.model import (
    CLOSED,
    ERROR,
    OPEN,
    ProbeResult,
    Transcript,
)

KIND: Final = "relay"
DEFAULT_PORT: Final = 25
_FORBIDDEN: Final = ("DATA", "BDAT")
_GOODBYE_TIMEOUT: Final = 2.0


class SmtpProbeError(Exception):
    """The target closed, timed out, or does not speak SMTP."""


class _Smtp:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, log: Transcript
    ) -> None:
        self.reader, self.writer, self.log = reader, writer, log

    async def reply(self) -> int:
        while True:
            raw = await self.reader.readline()
            if not raw:
                raise SmtpProbeError("the server closed the connection")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.log.received(line)
            if len(line) < 3 or not line[:3].isdigit():
                raise SmtpProbeError(f"not an SMTP reply: {line[:60]!r}")
            if line[3:4] != "-":
                return int(line[:3])

    async def command(self, text: str) -> int:
        if text.split(" ", 1)[0].upper() in _FORBIDDEN:
            # Belt and braces: nothing in this module sends these, and nothing may.
            raise SmtpProbeError(f"refusing to send {text!r}: the relay probe never sends mail")
        self.log.sent(text)
        self.writer.write(text.encode("ascii") + b"\r\n")
        await self.writer.drain()
        return await self.reply()

    def goodbye(self) -> None:
        for text in ("RSET", "QUIT"):
            self.log.sent(text)
            self.writer.write(text.encode("ascii") + b"\r\n")


async def _conversation(smtp: _Smtp, helo: str, sender: str, recipient: str) -> tuple[str, str]:
    banner = await smtp.reply()
    if banner != 220:
        return CLOSED, f"the server refuses service (banner {banner})"
    if await smtp.command(f"EHLO {helo}") != 250 and await smtp.command(f"HELO {helo}") != 250:
        return CLOSED, "the server refused EHLO and HELO"
    code = await smtp.command(f"MAIL FROM:<{sender}>")
    if code != 250:
        return CLOSED, f"the server refused the outside sender ({code})"
    code = await smtp.command(f"RCPT TO:<{recipient}>")
    if code in (250, 251):
        return OPEN, f"the server accepted mail from {sender} to outside recipient {recipient}"
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
    result, reason = ERROR, ""
    connected = False
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(str(address), port)
            connected = True
            smtp = _Smtp(reader, writer, log)
            finished = False
            try:
                result, reason = await _conversation(smtp, helo, sender, recipient)
                finished = True
            finally:
                # Always end the transaction before anything else could happen, then leave;
                # after a failure, say so without waiting for answers that may never come.
                with contextlib.suppress(OSError, SmtpProbeError, TimeoutError):
                    if finished:
                        async with asyncio.timeout(_GOODBYE_TIMEOUT):
                            await smtp.command("RSET")
                            await smtp.command("QUIT")
                    else:
                        smtp.goodbye()
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except TimeoutError:
        result, reason = ERROR, f"no complete answer within {timeout:g}s"
    except ConnectionRefusedError:
        result, reason = CLOSED, f"nothing listens on port {port}"
    except (OSError, SmtpProbeError, UnicodeError) as exc:
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

"""The one SMTP client dialogue: banner, EHLO, STARTTLS, MAIL FROM, RCPT TO, then RSET and QUIT.

It lives in ``core`` because two parts hold this conversation and must hold it the same way:
the open-relay probe in ``evidence`` (evidence that can list an address) and ``reputable check
--smtp`` in ``checker`` (advice to an admin), and ``evidence`` may not import ``checker``.

The dialogue never sends DATA nor BDAT (:meth:`Session.command` refuses them): no message can
ever be relayed through it. A server is an open relay when it accepts the outside recipient
(RFC 5321 §3.3: 250 or 251 to RCPT); some relays refuse later at DATA, but accepting the
recipient already is the relay decision. After the test the transaction is reset and the
session closed politely (RSET, QUIT), within a short grace time.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from reputable.core.address import IPAddress

_FORBIDDEN: Final = ("DATA", "BDAT")
_GOODBYE_TIMEOUT: Final = 2.0

#: Called with ("C", line) for every line sent and ("S", line) for every line received.
LineLog = Callable[[str, str], None]


class SmtpError(Exception):
    """The server closed, timed out in a reply, or spoke something that is not SMTP."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply: its code and the text of each line (RFC 5321 §4.2)."""

    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        """The first line's text, the one worth showing."""
        return self.lines[0] if self.lines else ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Dialogue:
    """What one relay-test conversation showed, step by step (None: the step was not reached)."""

    banner: Reply
    ehlo: Reply | None = None
    esmtp: bool = False  # EHLO accepted (else HELO was tried)
    starttls_offered: bool = False
    starttls: Reply | None = None  # the reply to STARTTLS, when it was sent
    tls_version: str = ""  # after a successful handshake
    mail: Reply | None = None
    rcpt: Reply | None = None

    @property
    def relayed(self) -> bool:
        """True when the outside recipient was accepted: the server is an open relay."""
        return self.rcpt is not None and self.rcpt.code in (250, 251)


class Session:
    """One SMTP client connection: replies read whole, every wait under *timeout*."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        timeout: float,
        log: LineLog | None = None,
    ) -> None:
        self.reader, self.writer, self.timeout = reader, writer, timeout
        self.log = log or (lambda _side, _line: None)

    async def reply(self) -> Reply:
        """Read one (possibly multi-line) reply."""
        lines: list[str] = []
        async with asyncio.timeout(self.timeout):
            while True:
                raw = await self.reader.readline()
                if not raw:
                    raise SmtpError("the server closed the connection")
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                self.log("S", line)
                if len(line) < 3 or not line[:3].isdigit():
                    raise SmtpError(f"not an SMTP reply: {line[:60]!r}")
                lines.append(line[4:])
                if line[3:4] != "-":
                    return Reply(int(line[:3]), tuple(lines))

    async def command(self, text: str) -> Reply:
        """Send one command line and read its reply; DATA and BDAT are refused here."""
        if text.split(" ", 1)[0].upper() in _FORBIDDEN:
            # Belt and braces: nothing sends these, and nothing may.
            raise SmtpError(f"refusing to send {text!r}: the SMTP dialogue never sends mail")
        self.log("C", text)
        self.writer.write(text.encode("ascii") + b"\r\n")
        await self.writer.drain()
        return await self.reply()

    async def starttls(self, context: ssl.SSLContext) -> str:
        """Upgrade the connection after a 220 to STARTTLS; return the TLS version."""
        try:
            async with asyncio.timeout(self.timeout):
                await self.writer.start_tls(context)
        except (ssl.SSLError, OSError, TimeoutError) as exc:
            raise SmtpError(f"TLS handshake failed: {exc or type(exc).__name__}") from exc
        tls = self.writer.get_extra_info("ssl_object")
        return str(tls.version()) if tls is not None else "TLS"

    async def goodbye(self, *, wait: bool) -> None:
        """End the transaction and leave: RSET and QUIT, waiting for answers only if *wait*."""
        with contextlib.suppress(OSError, SmtpError, TimeoutError, ssl.SSLError):
            if wait:
                async with asyncio.timeout(_GOODBYE_TIMEOUT):
                    await self.command("RSET")
                    await self.command("QUIT")
            else:
                for text in ("RSET", "QUIT"):
                    self.log("C", text)
                    self.writer.write(text.encode("ascii") + b"\r\n")


async def relay_test(
    session: Session,
    *,
    helo: str,
    sender: str,
    recipient: str,
    tls: ssl.SSLContext | None = None,
) -> Dialogue:
    """Hold the dialogue up to RCPT TO; with *tls*, upgrade by STARTTLS when it is offered.

    Stops at the first refusal (banner not 220, neither EHLO nor HELO accepted, sender
    refused); the Dialogue says how far it got.
    """
    banner = await session.reply()
    if banner.code != 220:
        return Dialogue(banner=banner)
    ehlo = await session.command(f"EHLO {helo}")
    esmtp = ehlo.code == 250
    if not esmtp:
        helo_reply = await session.command(f"HELO {helo}")
        if helo_reply.code != 250:
            return Dialogue(banner=banner, ehlo=ehlo)
    offered = esmtp and any(c.upper().startswith("STARTTLS") for c in ehlo.lines[1:])
    starttls: Reply | None = None
    version = ""
    if tls is not None and offered:
        starttls = await session.command("STARTTLS")
        if starttls.code == 220:
            version = await session.starttls(tls)
            await session.command(f"EHLO {helo}")  # RFC 3207 §4.2: start over after TLS
    mail = await session.command(f"MAIL FROM:<{sender}>")
    steps = Dialogue(
        banner=banner,
        ehlo=ehlo,
        esmtp=esmtp,
        starttls_offered=offered,
        starttls=starttls,
        tls_version=version,
        mail=mail,
    )
    if mail.code != 250:
        return steps
    rcpt = await session.command(f"RCPT TO:<{recipient}>")
    return Dialogue(
        banner=banner,
        ehlo=ehlo,
        esmtp=esmtp,
        starttls_offered=offered,
        starttls=starttls,
        tls_version=version,
        mail=mail,
        rcpt=rcpt,
    )


async def converse(
    address: IPAddress,
    port: int,
    *,
    helo: str,
    sender: str,
    recipient: str,
    timeout: float,
    tls: ssl.SSLContext | None = None,
    log: LineLog | None = None,
) -> Dialogue:
    """Connect to *address*:*port* and run :func:`relay_test` within *timeout* seconds in all.

    Raises ConnectionRefusedError when nothing listens, TimeoutError, SmtpError or OSError.
    The session always ends with RSET and QUIT (not waited for after a failure).
    """
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(str(address), port)
        session = Session(reader, writer, timeout=timeout, log=log)
        finished = False
        try:
            dialogue = await relay_test(
                session, helo=helo, sender=sender, recipient=recipient, tls=tls
            )
            finished = True
        finally:
            await session.goodbye(wait=finished)
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()
    return dialogue

"""Loopback targets for the probe tests: aiosmtpd open/closed relays and CONNECT/SOCKS proxies."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


class RelayHandler:
    """An aiosmtpd handler: relays for anyone unless *closed*; records DATA if it ever came."""

    def __init__(self, *, closed: bool) -> None:
        self.closed = closed
        self.data_seen = False

    async def handle_RCPT(  # noqa: N802  # aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        """Refuse outside recipients when closed, else accept them like an open relay."""
        if self.closed and not address.endswith("@local.test"):
            return "554 5.7.1 <" + address + ">: Relay access denied"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802  # aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        """Note that DATA arrived (the probe must never get here)."""
        self.data_seen = True
        return "250 OK"


class RecordingSMTP(SMTP):
    """aiosmtpd's SMTP server that also keeps every byte the client sent."""

    def __init__(self, handler: RelayHandler, wire: bytearray) -> None:
        super().__init__(handler, hostname="mx.relay.test", ident="test relay")
        self.wire = wire

    def data_received(self, data: bytes) -> None:
        """Record the client's bytes, then let aiosmtpd handle them."""
        self.wire.extend(data)
        super().data_received(data)


@dataclass
class SmtpTarget:
    """A running relay fixture: its address, port, handler and the client's raw bytes."""

    host: str
    port: int
    handler: RelayHandler
    wire: bytearray
    server: asyncio.Server

    def commands(self) -> list[str]:
        """Return the command verbs the client sent, in order."""
        lines = bytes(self.wire).decode("ascii", "replace").split("\r\n")
        return [line.split(" ", 1)[0].split(":", 1)[0].upper() for line in lines if line]


async def start_relay(host: str, *, closed: bool) -> SmtpTarget:
    """Serve an aiosmtpd relay fixture on *host* (a 127.0.0.x address), port chosen by the OS."""
    handler = RelayHandler(closed=closed)
    wire = bytearray()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: RecordingSMTP(handler, wire), host, 0)
    port = int(server.sockets[0].getsockname()[1])
    return SmtpTarget(host, port, handler, wire, server)


async def stop(server: asyncio.Server) -> None:
    """Close a fixture server."""
    server.close()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(server.wait_closed(), 1)


@dataclass
class Canary:
    """The operator's canary: a TCP listener that counts the connections proxies make to it."""

    connections: int = 0
    server: asyncio.Server | None = None
    port: int = 0

    async def start(self) -> Canary:
        """Listen on 127.0.0.1, port chosen by the OS."""

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            """Count and hang up."""
            self.connections += 1
            writer.close()

        self.server = await asyncio.start_server(accept, "127.0.0.1", 0)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self


@dataclass
class ProxyTarget:
    """A small proxy speaking HTTP CONNECT, SOCKS4 and SOCKS5: open connects, closed refuses."""

    open: bool
    socks5_auth: bool = False  # closed variant: SOCKS5 demanding a password
    requests: list[str] = field(default_factory=list)
    server: asyncio.Server | None = None
    port: int = 0

    async def start(self, host: str) -> ProxyTarget:
        """Listen on *host* (127.0.0.x), port chosen by the OS."""
        self.server = await asyncio.start_server(self._serve, host, 0)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self

    async def _tunnel(self, host: str, port: int) -> bool:
        if not self.open:
            return False
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            return False
        writer.close()
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await reader.readexactly(1)
            if first == b"\x04":
                head = await reader.readexactly(7)
                await reader.readuntil(b"\x00")
                port, host = int.from_bytes(head[1:3], "big"), ".".join(map(str, head[3:7]))
                self.requests.append(f"socks4 {host}:{port}")
                ok = await self._tunnel(host, port)
                writer.write(b"\x00" + (b"\x5a" if ok else b"\x5b") + head[1:7])
            elif first == b"\x05":
                count = (await reader.readexactly(1))[0]
                await reader.readexactly(count)
                if self.socks5_auth:
                    writer.write(b"\x05\xff")
                    self.requests.append("socks5 no acceptable method")
                else:
                    writer.write(b"\x05\x00")
                    req = await reader.readexactly(10)
                    host = ".".join(map(str, req[4:8]))
                    port = int.from_bytes(req[8:10], "big")
                    self.requests.append(f"socks5 {host}:{port}")
                    ok = await self._tunnel(host, port)
                    writer.write(b"\x05" + (b"\x00" if ok else b"\x02") + b"\x00\x01" + req[4:10])
            else:
                line = first + await reader.readline()
                while (await reader.readline()) not in (b"\r\n", b""):
                    pass
                target = line.decode().split()[1]
                self.requests.append(f"http {target}")
                host, _, port_text = target.rpartition(":")
                ok = await self._tunnel(host, int(port_text))
                status = b"200 Connection established" if ok else b"403 Forbidden"
                writer.write(b"HTTP/1.1 " + status + b"\r\n\r\n")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

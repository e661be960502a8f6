"""A tiny authoritative DNS server on 127.0.0.1 (UDP and TCP) serving fake public zones."""

from __future__ import annotations

import asyncio
import errno
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from reputable.testing import free_port


@dataclass
class ZoneData:
    """What the fixture serves: exact records, wildcard answers, refusing and silent suffixes."""

    records: Mapping[tuple[str, str], Sequence[str]] = field(default_factory=dict)
    wildcards: Mapping[tuple[str, str], Sequence[str]] = field(default_factory=dict)
    zones: Sequence[str] = ()
    refuse: Sequence[str] = ()
    silent: Sequence[str] = ()
    delay: float = 0.0
    #: Answers under these suffixes carry the AD bit when asked for (a validating resolver).
    validated: Sequence[str] = ()


def _under(name: str, suffixes: Sequence[str]) -> bool:
    return any(name == s or name.endswith("." + s) for s in suffixes)


def answer(data: ZoneData, query: dns.message.Message) -> dns.message.Message | None:
    """Return the response to *query*, or None to stay silent."""
    question = query.question[0]
    name = question.name.to_text(omit_final_dot=True).lower()
    rdtype = dns.rdatatype.to_text(question.rdtype)
    if _under(name, data.silent):
        return None
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    asks_ad = bool(query.flags & dns.flags.AD) or bool(query.ednsflags & dns.flags.DO)
    if asks_ad and _under(name, data.validated):
        response.flags |= dns.flags.AD
    if _under(name, data.refuse) or not _under(name, data.zones):
        response.set_rcode(dns.rcode.REFUSED)
        return response
    values = data.records.get((name, rdtype))
    if values is None:
        for (suffix, wtype), wvalues in data.wildcards.items():
            if wtype == rdtype and name.endswith("." + suffix):
                values = wvalues
    if values:
        rrset = dns.rrset.from_text_list(question.name, 60, "IN", rdtype, list(values))
        response.answer.append(rrset)
        return response
    exists = any(n == name for n, _ in data.records) or any(
        name.endswith("." + s) for s, _ in data.wildcards
    )
    if not exists:
        response.set_rcode(dns.rcode.NXDOMAIN)
    return response


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsFixture) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server.queries.append(data)
        query = dns.message.from_wire(data)
        response = answer(self.server.data, query)
        if response is None or self.transport is None:
            return
        wire = response.to_wire()
        transport = self.transport
        loop = asyncio.get_running_loop()
        if self.server.data.delay:
            loop.call_later(self.server.data.delay, transport.sendto, wire, addr)
        else:
            transport.sendto(wire, addr)


class DnsFixture:
    """Runs the fake server in its own thread so synchronous tests (CLI runner) can use it too."""

    def __init__(self, data: ZoneData) -> None:
        self.data = data
        self.queries: list[bytes] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    @property
    def nameserver(self) -> str:
        """Return the server as ``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    async def _start(self) -> None:
        # One port for UDP and TCP: a reserved one (free_port), outside the kernel's ephemeral
        # range; binding UDP to port 0 and then TCP to the same port raced outgoing connections.
        for attempt in range(5):
            port = free_port()
            try:
                self._udp, _ = await self._loop.create_datagram_endpoint(
                    lambda: _Udp(self), local_addr=("127.0.0.1", port)
                )
                self._tcp = await asyncio.start_server(self._serve_tcp, "127.0.0.1", port)
            except OSError as exc:
                if self._udp is not None:
                    self._udp.close()
                    self._udp = None
                if exc.errno != errno.EADDRINUSE or attempt == 4:
                    raise
                continue
            self.port = port
            return

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            size = int.from_bytes(await reader.readexactly(2), "big")
            query = dns.message.from_wire(await reader.readexactly(size))
            response = answer(self.data, query)
            if response is not None:
                wire = response.to_wire()
                writer.write(len(wire).to_bytes(2, "big") + wire)
                await writer.drain()
        finally:
            writer.close()

    def start(self) -> DnsFixture:
        """Bind UDP and TCP on 127.0.0.1 (same free port) and serve in a background thread."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(60)  # a loaded machine
        return self

    def stop(self) -> None:
        """Close the sockets and stop the thread."""

        async def _close() -> None:
            if self._udp is not None:
                self._udp.close()
            if self._tcp is not None:
                self._tcp.close()
                await self._tcp.wait_closed()

        asyncio.run_coroutine_threadsafe(_close(), self._loop).result(60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(60)  # closing a loop that still runs raises
        self._loop.close()

    def count(self, name: str) -> int:
        """Return how many queries for *name* arrived."""
        wanted = dns.name.from_text(name)
        return sum(dns.message.from_wire(q).question[0].name == wanted for q in self.queries)

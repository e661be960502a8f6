"""DNS lookups to one explicitly configured nameserver: many queries in flight over one UDP socket.

Every lookup names its nameserver; nothing here ever falls back to the machine's resolver
unless the user asked for it with ``system`` (see :func:`parse_nameserver`).
"""

from __future__ import annotations

import asyncio
import enum
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from types import TracebackType
from typing import Final, Protocol

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver

from reputable.checker import wire
from reputable.core.errors import InputError

DEFAULT_TIMEOUT: Final = 3.0
DEFAULT_RETRIES: Final = 1
DEFAULT_CONCURRENCY: Final = 100
RECEIVE_BUFFER: Final = 1 << 20


class Outcome(enum.StrEnum):
    """How a DNS lookup ended."""

    ANSWER = "answer"
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    TIMEOUT = "timeout"
    REFUSED = "refused"
    SERVFAIL = "servfail"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Lookup:
    """Result of one lookup: the outcome and the records of the asked type, as text."""

    outcome: Outcome
    records: tuple[str, ...] = ()
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Nameserver:
    """A DNS server given by numeric address and port."""

    host: IPv4Address | IPv6Address
    port: int = 53

    def __str__(self) -> str:
        if isinstance(self.host, IPv6Address):
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


def system_nameserver() -> Nameserver:
    """Return the first nameserver of the machine's resolver configuration (/etc/resolv.conf)."""
    try:
        configured = dns.resolver.Resolver(configure=True).nameservers
    except dns.resolver.NoResolverConfiguration as exc:
        raise InputError("no system resolver configured: pass --nameserver HOST:PORT") from exc
    for entry in configured:
        try:
            return Nameserver(ip_address(str(entry)))
        except ValueError:
            continue
    raise InputError("the system resolver has no numeric nameserver: pass --nameserver HOST:PORT")


def parse_nameserver(text: str) -> Nameserver:
    """Return ``HOST``, ``HOST:PORT``, ``[V6]:PORT`` or ``system`` as a Nameserver."""
    raw = text.strip()
    if raw == "system":
        return system_nameserver()
    host, port = raw, "53"
    if raw.startswith("["):
        host, _, rest = raw[1:].partition("]")
        port = rest.lstrip(":") or "53"
    elif raw.count(":") == 1:
        host, port = raw.split(":")
    try:
        address = ip_address(host)
    except ValueError as exc:
        raise InputError(
            f"bad nameserver {text!r}: give a numeric address like 127.0.0.1:53 or [::1]:53"
            " (a host name would need another resolver to find it)"
        ) from exc
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"bad nameserver {text!r}: port must be 1-65535")
    return Nameserver(address, int(port))


class Resolver(Protocol):
    """Looks up one name and type at a nameserver; fakes answer from a dict."""

    async def lookup(self, name: str, rdtype: str, server: Nameserver | None = None) -> Lookup:
        """Return the records of type *rdtype* at *name*, asking *server* or the default one."""
        ...


def records_of(response: dns.message.Message, rdtype: str) -> tuple[str, ...]:
    """Return the answer records of *rdtype* in *response* as text (TXT strings joined)."""
    wanted = dns.rdatatype.from_text(rdtype)
    out: list[str] = []
    for rrset in response.answer:
        if rrset.rdtype != wanted:
            continue
        for rdata in rrset:
            if wanted == dns.rdatatype.TXT:
                out.append(b"".join(rdata.strings).decode("utf-8", "replace"))
            else:
                out.append(rdata.to_text())
    return tuple(out)


def outcome_from(rcode: int, records: tuple[str, ...]) -> Lookup:
    """Return the Lookup that a response code and the records of the asked type amount to."""
    if rcode == dns.rcode.NOERROR:
        return Lookup(Outcome.ANSWER if records else Outcome.NODATA, records)
    if rcode == dns.rcode.NXDOMAIN:
        return Lookup(Outcome.NXDOMAIN)
    if rcode == dns.rcode.REFUSED:
        return Lookup(Outcome.REFUSED, detail="rcode REFUSED")
    if rcode == dns.rcode.SERVFAIL:
        return Lookup(Outcome.SERVFAIL, detail="rcode SERVFAIL")
    return Lookup(Outcome.ERROR, detail=f"rcode {dns.rcode.to_text(dns.rcode.Rcode(rcode))}")


def outcome_of(response: dns.message.Message, rdtype: str) -> Lookup:
    """Return the Lookup that a dnspython *response* amounts to."""
    return outcome_from(response.rcode(), records_of(response, rdtype))


class _Mux(asyncio.DatagramProtocol):
    """Routes each UDP response to the waiting query by message id and source address."""

    def __init__(self) -> None:
        self.pending: dict[int, tuple[tuple[str, int], asyncio.Future[bytes]]] = {}
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if len(data) < 12:
            return
        entry = self.pending.get(int.from_bytes(data[:2], "big"))
        if entry is None or entry[1].done():
            return
        expected, future = entry
        if (ip_address(str(addr[0]).split("%")[0]), addr[1]) == (
            ip_address(expected[0]),
            expected[1],
        ):
            future.set_result(data)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and similar: fail every waiter, each retries on its own.
        for _, future in self.pending.values():
            if not future.done():
                future.set_exception(exc)


class DnsClient:
    """Async DNS client: bounded concurrency, per-attempt timeout, retries, TCP on truncation."""

    def __init__(
        self,
        server: Nameserver,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self.server = server
        self.timeout = timeout
        self.retries = retries
        self._limit = asyncio.Semaphore(concurrency)
        self._sockets: dict[int, tuple[asyncio.DatagramTransport, _Mux]] = {}
        self._opening = asyncio.Lock()

    async def __aenter__(self) -> DnsClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the UDP sockets and wait until they are released."""
        sockets = list(self._sockets.values())
        self._sockets.clear()
        for transport, _ in sockets:
            transport.close()
        for _, mux in sockets:
            await mux.closed

    async def _socket(self, server: Nameserver) -> tuple[asyncio.DatagramTransport, _Mux]:
        family = server.host.version
        found = self._sockets.get(family)
        if found is not None:
            return found
        async with self._opening:
            if family not in self._sockets:
                local = "0.0.0.0" if family == 4 else "::"
                loop = asyncio.get_running_loop()
                transport, mux = await loop.create_datagram_endpoint(_Mux, local_addr=(local, 0))
                # Room for bursts of answers to many queries in flight (kernel caps the value).
                transport.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER
                )
                self._sockets[family] = (transport, mux)
            return self._sockets[family]

    async def _exchange(
        self, build: Callable[[int], bytes], server: Nameserver
    ) -> tuple[int, bytes]:
        """Send the query *build* makes for a fresh id; return the id and the raw response."""
        transport, mux = await self._socket(server)
        qid = secrets.randbelow(65536)
        while qid in mux.pending:
            qid = secrets.randbelow(65536)
        host = str(server.host)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        mux.pending[qid] = ((host, server.port), future)
        try:
            transport.sendto(build(qid), (host, server.port))
            async with asyncio.timeout(self.timeout):
                return qid, await future
        finally:
            del mux.pending[qid]

    async def _tcp(self, name: str, rdtype: str, server: Nameserver) -> Lookup:
        query = dns.message.make_query(dns.name.from_text(name), rdtype)
        async with asyncio.timeout(self.timeout):
            response = await dns.asyncquery.tcp(
                query, str(server.host), port=server.port, timeout=self.timeout
            )
        return outcome_of(response, rdtype)

    async def _fast(self, name: str, rdtype: str, question: bytes, server: Nameserver) -> Lookup:
        # Hot path (A/TXT, the DNSBL queries): hand-rolled wire code, see wire.py.
        qid, data = await self._exchange(lambda i: wire.encode_query(i, question), server)
        rcode, truncated, records = wire.parse_response(data, qid, question)
        if truncated:
            return await self._tcp(name, rdtype, server)
        return outcome_from(rcode, records)

    async def _slow(self, name: str, rdtype: str, server: Nameserver) -> Lookup:
        query = dns.message.make_query(dns.name.from_text(name), rdtype)

        def build(qid: int) -> bytes:
            query.id = qid
            return query.to_wire()

        _, data = await self._exchange(build, server)
        response = dns.message.from_wire(data)
        if not query.is_response(response):
            raise wire.WireError("response does not match the question")
        if response.flags & dns.flags.TC:
            return await self._tcp(name, rdtype, server)
        return outcome_of(response, rdtype)

    def _question(self, name: str, rdtype: str) -> bytes | None:
        code = wire.FAST_TYPES.get(rdtype)
        if code is None or not name.isascii():
            return None
        return wire.encode_question(name, code)

    async def lookup(self, name: str, rdtype: str, server: Nameserver | None = None) -> Lookup:
        """Return the records of type *rdtype* at *name* from *server* (default: the client's)."""
        target = server or self.server
        try:
            question = self._question(name, rdtype)
            if question is None:
                dns.name.from_text(name)
        except (dns.exception.DNSException, ValueError) as exc:
            return Lookup(Outcome.ERROR, detail=f"bad query name {name!r}: {exc}")
        last = Lookup(Outcome.TIMEOUT, detail=f"no answer from {target}")
        async with self._limit:
            for _ in range(1 + self.retries):
                try:
                    if question is not None:
                        return await self._fast(name, rdtype, question, target)
                    return await self._slow(name, rdtype, target)
                except TimeoutError:
                    last = Lookup(
                        Outcome.TIMEOUT,
                        detail=f"no answer from {target} within {self.timeout:g}s"
                        f" ({1 + self.retries} tries)",
                    )
                except (OSError, dns.exception.DNSException, EOFError, ValueError) as exc:
                    last = Lookup(Outcome.ERROR, detail=f"{target}: {exc or type(exc).__name__}")
        return last

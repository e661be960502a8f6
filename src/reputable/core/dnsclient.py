"""The one DNS client of reputable: lookups to explicitly configured nameservers, many in flight.

Every lookup names its nameserver; nothing here ever falls back to the machine's resolver
unless the user asked for it with ``system`` (see :func:`parse_nameserver`).

It lives in ``core`` (with dnspython, which STYLE.md otherwise keeps in ``dnsbl/`` and
``checker/``) because three parts ask DNS questions and must not each grow their own client:
the checker (public lists, PTR, SPF/DMARC/DKIM), the probes and feed lookups in ``evidence``
(:mod:`reputable.evidence.sources.resolver` wraps this client), and the libraries that need a
blocking dnspython resolver (:func:`sync_resolver`). ``evidence`` may not import ``checker``, so
``core`` is the only place all of them may import.
"""

from __future__ import annotations

import asyncio
import enum
import os
import socket
from array import array
from collections import deque
from collections.abc import Sequence
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

from reputable.core import dnswire as wire
from reputable.core.errors import InputError

DEFAULT_TIMEOUT: Final = 3.0
DEFAULT_RETRIES: Final = 1
#: Queries in flight at most: within 1.3x of the latency bound at this level on 2 cores, and
#: under the per-thread limits of common recursive resolvers (unbound: 512 or 1024).
DEFAULT_CONCURRENCY: Final = 500
SOCKET_BUFFER: Final = 1 << 21
#: Datagrams read per wake-up of the reader before other callbacks get a turn.
BURST: Final = 256
#: Largest UDP DNS message (RFC 6891 allows up to 65,535 octets).
MAX_DATAGRAM: Final = 65535
ID_BATCH: Final = 4096
#: While lookups are being queued, read the sockets in passing after this many.
POLL_EVERY: Final = 64
_CLOSED: Final = "the DNS client was closed"


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


_PENDING: Final = Lookup(Outcome.ERROR, detail="not answered yet")  # placeholder, never returned
_NXDOMAIN: Final = Lookup(Outcome.NXDOMAIN)
_NODATA: Final = Lookup(Outcome.NODATA)


def outcome_from(rcode: int, records: tuple[str, ...]) -> Lookup:
    """Return the Lookup that a response code and the records of the asked type amount to."""
    if rcode == dns.rcode.NOERROR:
        return Lookup(Outcome.ANSWER, records) if records else _NODATA
    if rcode == dns.rcode.NXDOMAIN:
        return _NXDOMAIN  # values are frozen: one shared instance for the commonest answer
    if rcode == dns.rcode.REFUSED:
        return Lookup(Outcome.REFUSED, detail="rcode REFUSED")
    if rcode == dns.rcode.SERVFAIL:
        return Lookup(Outcome.SERVFAIL, detail="rcode SERVFAIL")
    return Lookup(Outcome.ERROR, detail=f"rcode {dns.rcode.to_text(dns.rcode.Rcode(rcode))}")


def outcome_of(response: dns.message.Message, rdtype: str) -> Lookup:
    """Return the Lookup that a dnspython *response* amounts to."""
    return outcome_from(response.rcode(), records_of(response, rdtype))


class _Query:
    """One lookup, waiting for a slot or in flight: what to ask, where, and how it went so far."""

    __slots__ = (
        "batch", "conn", "deadline", "index", "last", "name", "qid", "question", "rdtype", "server",
        "tries",
    )  # fmt: skip

    def __init__(
        self,
        name: str,
        rdtype: str,
        server: Nameserver,
        question: bytes | dns.message.Message,
        batch: _Batch,
        index: int,
        tries: int,
    ) -> None:
        self.name = name
        self.rdtype = rdtype
        self.server = server
        # The A/TXT question for the fast path (dnswire.py), or dnspython's query for the rest.
        self.question = question
        self.batch = batch  # whose result list gets this lookup's Lookup at *index*
        self.index = index
        self.tries = tries
        self.qid = -1
        self.deadline = 0.0  # of the try in flight
        self.conn: _Conn | None = None
        self.last: Lookup | None = None  # how the latest try failed


class _Batch:
    """Lookups asked together: one future for all their results, set when the last one ends."""

    __slots__ = ("future", "left", "results")

    def __init__(self, future: asyncio.Future[list[Lookup]], size: int) -> None:
        self.future = future
        self.results: list[Lookup] = [_PENDING] * size
        self.left = size

    def done(self, index: int, lookup: Lookup) -> None:
        """Record the result at *index*; resolve the future when it was the last one."""
        self.results[index] = lookup
        self.left -= 1
        if not self.left and not self.future.done():
            self.future.set_result(self.results)


class _Conn:
    """A non-blocking UDP socket connected to one nameserver, and its attempts by message id.

    Connected, so the kernel drops datagrams from any other address or port for us.
    """

    __slots__ = ("pending", "sock")

    def __init__(self, server: Nameserver) -> None:
        family = socket.AF_INET6 if server.host.version == 6 else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
            # Room for bursts of answers to many queries in flight (kernel caps the value).
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
            self.sock.connect((str(server.host), server.port))
        except OSError:
            self.sock.close()
            raise
        self.pending: dict[int, _Query] = {}


class _Ids:
    """Unpredictable 16-bit message ids, drawn from the OS's CSPRNG a few thousand at a time."""

    __slots__ = ("_pool",)

    def __init__(self) -> None:
        self._pool: list[int] = []

    def take(self) -> int:
        """Return the next id."""
        if not self._pool:
            self._pool = list(array("H", os.urandom(2 * ID_BATCH)))
        return self._pool.pop()


class DnsClient:
    """Async DNS client: bounded concurrency, per-attempt timeout, retries, TCP on truncation.

    Hot path, optimised by measurement (bench/check_bulk.py, docs/benchmarks.md, 2026-11-29):
    with asyncio's datagram transport (one datagram per loop wake-up), a Task, a Semaphore and an
    ``asyncio.timeout`` per query this client spent 72-93 µs of CPU per query and was CPU-bound
    at concurrency 500 (4.8 s for 40,000 queries, bound 1.6 s). So it bypasses them: lookups
    asked together share one future, filled by the socket's reader callback, which drains every
    datagram waiting per wake-up and sends the next waiting query at once; the per-attempt
    timeout is one deadline queue swept by a single timer (attempts time out up to
    ``min(timeout / 10, 50 ms)`` late); the A/TXT wire format is hand-written (dnswire.py). Now
    15-24 µs per query: 1.8 s at concurrency 500.
    """

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
        self.concurrency = max(1, concurrency)
        self._slack = min(timeout / 10, 0.05)
        self._busy = 0  # lookups holding a slot: in flight, or over TCP
        self._waiting: deque[_Query] = deque()
        self._queued = 0  # lookups queued since the sockets were last read in passing
        self._conns: dict[Nameserver, _Conn] = {}
        self._default: _Conn | None = None  # the socket to self.server, once open
        self._deadlines: deque[tuple[float, _Query]] = deque()  # in send order, so sorted
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ids = _Ids()
        self._tasks: set[asyncio.Task[None]] = set()

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
        """Close the sockets; lookups still waiting or in flight end as errors."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            task.cancel()
        conns = list(self._conns.values())
        self._conns.clear()
        self._default = None
        closed = Lookup(Outcome.ERROR, detail=_CLOSED)
        orphans = [q for c in conns for q in c.pending.values()] + list(self._waiting)
        self._waiting.clear()
        self._deadlines.clear()
        for conn in conns:
            if self._loop is not None:
                self._loop.remove_reader(conn.sock)
            conn.sock.close()
            conn.pending.clear()
        for query in orphans:
            if not query.batch.future.done():
                query.batch.done(query.index, closed)
        self._busy = 0
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._loop = None  # closed: may be used again, on another loop too

    def submit_all(
        self, asks: Sequence[tuple[str, str, Nameserver | None]]
    ) -> asyncio.Future[list[Lookup]]:
        """Start every (name, type, server or None for the default) lookup in *asks*.

        Return one future for their Lookups, in order: no Task and no future per lookup.
        Cancelling it abandons them all; a slot is freed when the answer or the timeout of the
        attempt in flight comes.
        """
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        elif loop is not asyncio.get_running_loop():
            raise RuntimeError("a DnsClient serves the event loop it was first used on")
        batch = _Batch(loop.create_future(), len(asks))
        if not asks:
            batch.future.set_result([])
        for index, (name, rdtype, server) in enumerate(asks):
            try:
                question: bytes | dns.message.Message | None = self._question(name, rdtype)
                if question is None:
                    question = dns.message.make_query(dns.name.from_text(name), rdtype)
            except (dns.exception.DNSException, ValueError) as exc:
                batch.done(index, Lookup(Outcome.ERROR, detail=f"bad query name {name!r}: {exc}"))
                continue
            target = server or self.server
            query = _Query(name, rdtype, target, question, batch, index, 1 + self.retries)
            if self._busy < self.concurrency:
                self._busy += 1
                self._attempt(query)
                continue
            self._waiting.append(query)
            self._queued += 1
            if self._queued >= POLL_EVERY:
                # A caller queuing thousands of lookups in one go would keep the loop from
                # reading the answers to those in flight (a 0.3 s stall for 40,000 at once,
                # measured): read them in passing, which also sends the next waiting lookups.
                self._queued = 0
                for conn in list(self._conns.values()):
                    self._readable(conn)
        return batch.future

    async def lookup_all(self, asks: Sequence[tuple[str, str, Nameserver | None]]) -> list[Lookup]:
        """Return the Lookups of every (name, type, server) in *asks*, all asked concurrently."""
        return await self.submit_all(asks)

    async def lookup(self, name: str, rdtype: str, server: Nameserver | None = None) -> Lookup:
        """Return the records of type *rdtype* at *name* from *server* (default: the client's)."""
        return (await self.submit_all(((name, rdtype, server),)))[0]

    async def authenticated(
        self, name: str, rdtype: str, server: Nameserver | None = None
    ) -> tuple[Lookup, bool]:
        """Return the lookup of *name* and whether the resolver marked it validated (AD bit).

        The query sets the AD bit (RFC 6840 §5.7), so a validating resolver says whether the
        answer was DNSSEC-validated without this client validating anything itself. Rare (one
        per domain check): plain dnspython queries, same timeout and retries, TCP on truncation.
        """
        target = server or self.server
        query = dns.message.make_query(dns.name.from_text(name), rdtype)
        query.flags |= dns.flags.AD
        last = Lookup(Outcome.TIMEOUT, detail=f"no answer from {target} within {self.timeout:g}s")
        for _ in range(1 + self.retries):
            try:
                async with asyncio.timeout(self.timeout):
                    response = await dns.asyncquery.udp(
                        query, str(target.host), port=target.port, timeout=self.timeout
                    )
                    if response.flags & dns.flags.TC:
                        response = await dns.asyncquery.tcp(
                            query, str(target.host), port=target.port, timeout=self.timeout
                        )
            except (TimeoutError, dns.exception.Timeout):
                continue
            except (OSError, dns.exception.DNSException, EOFError) as exc:
                last = Lookup(Outcome.ERROR, detail=f"{target}: {exc or type(exc).__name__}")
                continue
            return outcome_of(response, rdtype), bool(response.flags & dns.flags.AD)
        return last, False

    def _question(self, name: str, rdtype: str) -> bytes | None:
        code = wire.FAST_TYPES.get(rdtype)
        if code is None or not name.isascii():
            return None
        return wire.encode_question(name, code)

    def _conn(self, server: Nameserver) -> _Conn:
        if server is self.server and self._default is not None:
            return self._default  # skips hashing the Nameserver for most queries
        conn = self._conns.get(server)
        if conn is None:
            conn = self._conns[server] = _Conn(server)
            asyncio.get_running_loop().add_reader(conn.sock, self._readable, conn)
        if server is self.server:
            self._default = conn
        return conn

    def _attempt(self, query: _Query) -> None:
        """Send the next try of *query*; when no try is left, end it with its last failure."""
        if query.batch.future.done():  # cancelled by its waiter: no more tries, free the slot
            self._busy -= 1
            return
        while query.tries > 0:
            query.tries -= 1
            try:
                conn = self._conn(query.server)
                qid = self._ids.take()
                while qid in conn.pending:
                    qid = self._ids.take()
                if isinstance(query.question, bytes):
                    packet = wire.encode_query(qid, query.question)
                else:
                    query.question.id = qid
                    packet = query.question.to_wire()
                try:  # noqa: SIM105  # hot path: a bare try costs less than contextlib.suppress
                    conn.sock.send(packet)
                except BlockingIOError:
                    pass  # send buffer full: as if the datagram were lost; the timeout retries
            except OSError as exc:
                query.last = Lookup(
                    Outcome.ERROR, detail=f"{query.server}: {exc or type(exc).__name__}"
                )
                continue
            query.qid = qid
            query.conn = conn
            conn.pending[qid] = query
            loop = asyncio.get_running_loop()
            deadline = query.deadline = loop.time() + self.timeout
            self._deadlines.append((deadline, query))
            if self._timer is None:  # then no deadline is pending: this one is the first
                self._timer = loop.call_at(deadline, self._expire)
            return
        self._finish(
            query, query.last or Lookup(Outcome.TIMEOUT, detail=f"no answer from {query.server}")
        )

    def _finish(self, query: _Query, lookup: Lookup) -> None:
        self._busy -= 1
        query.batch.done(query.index, lookup)

    def _fill(self) -> None:
        """Start waiting lookups while slots are free."""
        waiting = self._waiting
        while waiting and self._busy < self.concurrency:
            query = waiting.popleft()
            if query.batch.future.done():
                continue  # cancelled while waiting
            self._busy += 1
            self._attempt(query)

    def _readable(self, conn: _Conn) -> None:
        """Reader callback: handle every datagram waiting (up to a burst), then refill slots."""
        recv, pending = conn.sock.recv, conn.pending
        for _ in range(BURST):
            try:
                data = recv(MAX_DATAGRAM)
            except BlockingIOError:
                break
            except OSError as exc:
                # ICMP port unreachable and similar: every attempt on this socket fails and retries.
                failed = list(pending.values())
                pending.clear()
                for attempt in failed:
                    attempt.last = Lookup(Outcome.ERROR, detail=f"{attempt.server}: {exc}")
                    self._attempt(attempt)
                break
            if len(data) < 12:
                continue
            qid = data[0] << 8 | data[1]
            query = pending.get(qid)
            if query is not None:
                del pending[qid]
                self._answered(query, data)
        self._fill()

    def _answered(self, query: _Query, data: bytes) -> None:
        try:
            if isinstance(query.question, bytes):
                rcode, truncated, records = wire.parse_response(data, query.qid, query.question)
                lookup = outcome_from(rcode, records)
            else:
                response = dns.message.from_wire(data)
                if not query.question.is_response(response):
                    raise wire.WireError("response does not match the question")
                truncated = bool(response.flags & dns.flags.TC)
                lookup = outcome_of(response, query.rdtype)
        except (dns.exception.DNSException, ValueError) as exc:
            query.last = Lookup(
                Outcome.ERROR, detail=f"{query.server}: {exc or type(exc).__name__}"
            )
            self._attempt(query)
            return
        if not truncated:
            self._finish(query, lookup)
            return
        task = asyncio.get_running_loop().create_task(self._over_tcp(query))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _over_tcp(self, query: _Query) -> None:
        """Ask again over TCP after a truncated answer; the lookup keeps its slot meanwhile."""
        try:
            lookup = await self._tcp(query.name, query.rdtype, query.server)
        except asyncio.CancelledError:  # by aclose()
            query.batch.done(query.index, Lookup(Outcome.ERROR, detail=_CLOSED))
            raise
        except TimeoutError:
            query.last = self._timed_out(query)
        except (OSError, dns.exception.DNSException, EOFError, ValueError) as exc:
            query.last = Lookup(
                Outcome.ERROR, detail=f"{query.server}: {exc or type(exc).__name__}"
            )
        else:
            self._finish(query, lookup)
            return
        self._attempt(query)
        self._fill()

    async def _tcp(self, name: str, rdtype: str, server: Nameserver) -> Lookup:
        query = dns.message.make_query(dns.name.from_text(name), rdtype)
        async with asyncio.timeout(self.timeout):
            response = await dns.asyncquery.tcp(
                query, str(server.host), port=server.port, timeout=self.timeout
            )
        return outcome_of(response, rdtype)

    def _timed_out(self, query: _Query) -> Lookup:
        return Lookup(
            Outcome.TIMEOUT,
            detail=f"no answer from {query.server} within {self.timeout:g}s"
            f" ({1 + self.retries} tries)",
        )

    def _expire(self) -> None:
        """Timer callback: time out every attempt past its deadline, then re-arm for the next.

        Meanwhile self._timer still holds the handle that fired, so the retries sent here do not
        arm another timer.
        """
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadlines = self._deadlines
        while deadlines:
            deadline, query = deadlines[0]
            conn = query.conn
            if (
                query.deadline != deadline
                or conn is None
                or conn.pending.get(query.qid) is not query
            ):
                deadlines.popleft()  # answered, or tried again since
                continue
            if deadline > now:
                break
            deadlines.popleft()
            del conn.pending[query.qid]
            query.last = self._timed_out(query)
            self._attempt(query)
        self._fill()
        self._timer = None
        if deadlines:
            self._timer = loop.call_at(max(deadlines[0][0], now + self._slack), self._expire)


def sync_resolver(server: Nameserver, timeout: float, retries: int) -> dns.resolver.Resolver:
    """Return a blocking dnspython resolver that asks only *server* (for checkdmarc and pyspf)."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [str(server.host)]
    resolver.port = server.port
    resolver.timeout = timeout
    resolver.lifetime = timeout * (retries + 1)
    return resolver

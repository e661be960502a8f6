"""DnsClient's query engine on loopback: concurrency limit, timeouts, retries, cancellation, TCP."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from ipaddress import IPv4Address

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from reputable.core.dnsclient import DnsClient, Lookup, Nameserver, Outcome
from reputable.testing import free_port

Answer = Callable[[dns.message.Message], dns.message.Message | None]


def nxdomain_or_listed(query: dns.message.Message) -> dns.message.Message:
    """Answer 127.0.0.2 for names whose first label is "7", NXDOMAIN for the rest."""
    response = dns.message.make_response(query)
    name = query.question[0].name
    if name.labels[0] == b"7":
        response.answer.append(dns.rrset.from_text(name, 60, "IN", "A", "127.0.0.2"))
    else:
        response.set_rcode(dns.rcode.NXDOMAIN)
    return response


class Server(asyncio.DatagramProtocol):
    """A UDP server on 127.0.0.1 in the test's own loop: answers at once, or holds the queries."""

    def __init__(self, answer: Answer = nxdomain_or_listed, *, hold: bool = False) -> None:
        self.answer = answer
        self.hold = hold
        self.seen: list[dns.message.Message] = []
        self.held: list[tuple[dns.message.Message, tuple[str, int]]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        self.seen.append(query)
        if self.hold:
            self.held.append((query, addr))
        else:
            self.reply(query, addr)

    def reply(self, query: dns.message.Message, addr: tuple[str, int]) -> None:
        """Send the answer to *query*, if the answer function gives one."""
        response = self.answer(query)
        if response is not None and self.transport is not None:
            self.transport.sendto(response.to_wire(), addr)

    def release(self) -> None:
        """Answer every held query, and the next ones at once."""
        self.hold = False
        for query, addr in self.held:
            self.reply(query, addr)
        self.held.clear()


async def serve(server: Server) -> tuple[asyncio.DatagramTransport, Nameserver]:
    """Bind *server* on a free 127.0.0.1 port; return its transport and address."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: server, local_addr=("127.0.0.1", 0))
    return transport, Nameserver(IPv4Address("127.0.0.1"), transport.get_extra_info("sockname")[1])


def test_concurrency_limit_holds_and_queued_lookups_follow() -> None:
    """With 3 slots only 3 queries are out until answers free them; then all 10 complete."""

    async def go() -> tuple[int, list[Lookup], int]:
        server = Server(hold=True)
        transport, address = await serve(server)
        async with DnsClient(address, timeout=2, concurrency=3) as client:
            future = client.submit_all([(f"{i}.0.0.127.bl.test", "A", None) for i in range(10)])
            await asyncio.sleep(0.1)
            out_at_once = len(server.seen)
            server.release()
            lookups = await future
        transport.close()
        await asyncio.sleep(0)  # let the transport finish closing while the loop still runs
        return out_at_once, lookups, len(server.seen)

    out_at_once, lookups, seen = asyncio.run(go())
    assert out_at_once == 3
    assert seen == 10
    assert [x.outcome for x in lookups] == [Outcome.NXDOMAIN] * 7 + [Outcome.ANSWER] + [
        Outcome.NXDOMAIN
    ] * 2
    assert lookups[7].records == ("127.0.0.2",)


def test_thousands_queued_at_once_each_get_their_own_answer() -> None:
    """2,000 lookups queued in one go (40 batches) over 50 slots: each gets its own answer."""

    async def go() -> tuple[list[Lookup], int]:
        server = Server()
        transport, address = await serve(server)
        names = [f"{i % 10}.{i // 10}.0.10.bl.test" for i in range(2000)]
        async with DnsClient(address, timeout=2, concurrency=50) as client:
            batches = await asyncio.gather(
                *(
                    client.submit_all([(name, "A", None) for name in names[i : i + 50]])
                    for i in range(0, 2000, 50)
                )
            )
        transport.close()
        await asyncio.sleep(0)  # let the transport finish closing while the loop still runs
        return [lookup for batch in batches for lookup in batch], len(server.seen)

    lookups, seen = asyncio.run(go())
    assert seen == 2000
    for i, lookup in enumerate(lookups):
        assert lookup.outcome is (Outcome.ANSWER if i % 10 == 7 else Outcome.NXDOMAIN), i


@pytest.mark.serial  # a wall-clock limit: no other worker's test runs meanwhile
def test_silence_is_a_timeout_after_one_retry_on_time() -> None:
    """A silent server: two tries, then TIMEOUT (never clean), within the timeouts plus slack."""

    async def go() -> tuple[Lookup, float, int]:
        server = Server(lambda _: None)
        transport, address = await serve(server)
        async with DnsClient(address, timeout=0.2, retries=1) as client:
            start = time.monotonic()
            lookup = await client.lookup("2.0.0.127.bl.test", "A")
            elapsed = time.monotonic() - start
        transport.close()
        await asyncio.sleep(0)  # let the transport finish closing while the loop still runs
        return lookup, elapsed, len(server.seen)

    lookup, elapsed, seen = asyncio.run(go())
    assert lookup.outcome is Outcome.TIMEOUT
    assert "2 tries" in lookup.detail
    assert seen == 2
    assert 0.4 <= elapsed < 1.0  # two timeouts of 0.2 s, each up to timeout/10 late, plus slack


@pytest.mark.serial  # a wall-clock limit: no other worker's test runs meanwhile
def test_closed_port_is_an_error_at_once_not_a_timeout() -> None:
    """ICMP port unreachable on the connected socket ends the lookup as an error, quickly."""
    # Reserved and below the ephemeral range (free_port): nothing binds it meanwhile; a port
    # bound to 0 and closed could be any socket's again before the query goes out.
    port = free_port()

    async def go() -> tuple[Lookup, float]:
        async with DnsClient(Nameserver(IPv4Address("127.0.0.1"), port), timeout=2) as client:
            start = time.monotonic()
            lookup = await client.lookup("2.0.0.127.bl.test", "A")
            return lookup, time.monotonic() - start

    lookup, elapsed = asyncio.run(go())
    assert lookup.outcome is Outcome.ERROR
    assert "refused" in lookup.detail.lower()
    assert elapsed < 1


def test_answer_to_another_question_is_retried_then_an_error() -> None:
    """A response whose question is not ours is never taken as the answer."""

    def wrong(query: dns.message.Message) -> dns.message.Message:
        other = dns.message.make_query("other.test", "A", use_edns=False)
        other.id = query.id
        return dns.message.make_response(other)

    async def go() -> tuple[Lookup, int]:
        server = Server(wrong)
        transport, address = await serve(server)
        async with DnsClient(address, timeout=1) as client:
            lookup = await client.lookup("2.0.0.127.bl.test", "A")
        transport.close()
        await asyncio.sleep(0)  # let the transport finish closing while the loop still runs
        return lookup, len(server.seen)

    lookup, seen = asyncio.run(go())
    assert lookup.outcome is Outcome.ERROR
    assert "does not match" in lookup.detail
    assert seen == 2


def test_cancelled_lookup_is_not_retried_and_frees_its_slot() -> None:
    """Cancelling a batch's future: no retry is sent, and the next lookup gets the slot."""

    async def go() -> tuple[Lookup, list[str]]:
        server = Server(hold=True)
        transport, address = await serve(server)
        async with DnsClient(address, timeout=0.2, concurrency=1) as client:
            first = client.submit_all([("1.0.0.127.bl.test", "A", None)])
            second = client.submit_all([("7.0.0.127.bl.test", "A", None)])
            await asyncio.sleep(0.05)
            first.cancel()
            await asyncio.sleep(0.3)  # the first try times out: the slot goes to the second
            server.release()
            (lookup,) = await second
        transport.close()
        await asyncio.sleep(0)  # let the transport finish closing while the loop still runs
        return lookup, [q.question[0].name.to_text() for q in server.seen]

    lookup, names = asyncio.run(go())
    assert lookup.outcome is Outcome.ANSWER
    assert names[0] == "1.0.0.127.bl.test."
    assert names[1:] and set(names[1:]) == {"7.0.0.127.bl.test."}  # no retry of the first


def test_closing_ends_waiting_and_pending_lookups_as_errors() -> None:
    """aclose() leaves no lookup hanging: in flight or queued, each ends as an error."""

    async def go() -> list[Lookup]:
        server = Server(hold=True)
        transport, address = await serve(server)
        client = DnsClient(address, timeout=5, concurrency=1)
        futures = [client.submit_all([(f"{i}.0.0.127.bl.test", "A", None)]) for i in range(3)]
        await asyncio.sleep(0.05)
        await client.aclose()
        transport.close()
        await asyncio.sleep(0)  # let the transport finish closing while the loop still runs
        return [lookup for batch in await asyncio.gather(*futures) for lookup in batch]

    lookups = asyncio.run(go())
    assert [x.outcome for x in lookups] == [Outcome.ERROR] * 3
    assert all("closed" in x.detail for x in lookups)


def test_truncated_answer_is_asked_again_over_tcp() -> None:
    """A UDP answer with TC set is not used: the same question goes over TCP."""

    def truncated(query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.TC
        return response

    async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        size = int.from_bytes(await reader.readexactly(2), "big")
        query = dns.message.from_wire(await reader.readexactly(size))
        response = dns.message.make_response(query)
        response.answer.append(
            dns.rrset.from_text(query.question[0].name, 60, "IN", "TXT", '"over tcp"')
        )
        wire = response.to_wire()
        writer.write(len(wire).to_bytes(2, "big") + wire)
        await writer.drain()
        writer.close()

    async def go() -> Lookup:
        server = Server(truncated)
        transport, address = await serve(server)
        listener = await asyncio.start_server(tcp, "127.0.0.1", address.port)
        async with DnsClient(address, timeout=2) as client:
            lookup = await client.lookup("2.0.0.127.bl.test", "TXT")
        listener.close()
        await listener.wait_closed()
        transport.close()
        await asyncio.sleep(0)  # let the transport finish closing while the loop still runs
        return lookup

    lookup = asyncio.run(go())
    assert lookup.outcome is Outcome.ANSWER
    assert lookup.records == ("over tcp",)


def test_other_types_use_dnspython_on_the_same_engine() -> None:
    """A PTR lookup (not on the A/TXT fast path) goes through the same sockets and slots."""

    def ptr(query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.answer.append(
            dns.rrset.from_text(query.question[0].name, 60, "IN", "PTR", "mail.example.")
        )
        return response

    async def go() -> Lookup:
        server = Server(ptr)
        transport, address = await serve(server)
        async with DnsClient(address, timeout=2) as client:
            lookup = await client.lookup("2.0.0.127.in-addr.arpa", "PTR")
        transport.close()
        await asyncio.sleep(0)  # let the transport finish closing while the loop still runs
        return lookup

    lookup = asyncio.run(go())
    assert lookup.outcome is Outcome.ANSWER
    assert lookup.records == ("mail.example.",)


def test_bad_names_fail_alone_and_an_empty_batch_is_done() -> None:
    """A name that cannot be asked is an error in its place; the rest of the batch is asked."""

    async def go() -> tuple[list[Lookup], list[Lookup], int]:
        server = Server()
        transport, address = await serve(server)
        async with DnsClient(address, timeout=2) as client:
            lookups = await client.lookup_all(
                [("a..test", "A", None), ("7.0.0.127.bl.test", "A", None), ("x.test", "NOPE", None)]
            )
            empty = await client.lookup_all([])
        transport.close()
        await asyncio.sleep(0)  # let the transport finish closing while the loop still runs
        return lookups, empty, len(server.seen)

    lookups, empty, seen = asyncio.run(go())
    assert [x.outcome for x in lookups] == [Outcome.ERROR, Outcome.ANSWER, Outcome.ERROR]
    assert "bad query name" in lookups[0].detail
    assert empty == []
    assert seen == 1


def test_answer_from_another_address_is_ignored() -> None:
    """A forged answer with the right id from another port never reaches the lookup."""

    async def go() -> tuple[Lookup, int]:
        server = Server(hold=True)
        transport, address = await serve(server)
        forger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        forger.bind(("127.0.0.1", 0))
        async with DnsClient(address, timeout=2) as client:
            future = client.submit_all([("1.0.0.127.bl.test", "A", None)])
            while not server.held:
                await asyncio.sleep(0.01)
            query, source = server.held[0]
            forged = dns.message.make_response(query)
            forged.answer.append(
                dns.rrset.from_text(query.question[0].name, 60, "IN", "A", "127.0.0.9")
            )
            forger.sendto(forged.to_wire(), source)
            await asyncio.sleep(0.1)
            server.release()
            (lookup,) = await future
        forger.close()
        transport.close()
        await asyncio.sleep(0)  # let the transport finish closing while the loop still runs
        return lookup, len(server.seen)

    lookup, seen = asyncio.run(go())
    assert lookup.outcome is Outcome.NXDOMAIN
    assert seen == 1

"""DNS over TCP cannot be starved: timeouts on reads and writes, per-client and global limits."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import dns.message
import dns.query
import pytest

from reputable.config import parse_config
from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.listings.model import Batch, Listing
from reputable.publication.dnsbl.worker import Worker
from reputable.publication.snapshot.publish import publish
from reputable.testing import MemoryStore, wait_for, write_config

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
BIG = "77.2.0.192.bl.reputable.test"  # nine ~1,000-byte reasons: a ~9 KB TCP answer


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Worker]:
    """A started worker (UDP and TCP on loopback) with short TCP timeouts."""
    path = write_config(
        tmp_path,
        dns_port=0,
        tcp_idle_timeout='"3s"',
        tcp_write_timeout='"1s"',
        tcp_max_clients="256",
        tcp_max_per_client="16",
    )
    config = parse_config(path.read_text(), path)
    store = MemoryStore()
    listings = tuple(
        Listing(
            subject=parse_subject("192.0.2.77"),
            cause=cause,
            reason=cause.value + " " + "R" * 990,
            source="t",
            listed_at=NOW,
        )
        for cause in list(Cause)[:9]
    )
    store.apply(Batch(listings=listings), actor="t", action="t")
    publish(store, config, NOW)
    worker = Worker(config, 0)
    worker.start()
    try:
        # The TCP service starts on the worker's thread: seconds on a loaded machine.
        wait_for(lambda: getattr(worker, "tcp_service", None) is not None, 60, "the TCP service")
        yield worker
    finally:
        worker.stop()


def _query(name: str, qid: int, rdtype: str = "TXT") -> bytes:
    query = dns.message.make_query(name, rdtype)
    query.id = qid
    wire = query.to_wire()
    return struct.pack(">H", len(wire)) + wire


def _connect(address: tuple[str, int], source: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.settimeout(5)
    sock.connect(address)
    return sock


def _read_reply(sock: socket.socket) -> dns.message.Message:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    (length,) = struct.unpack(">H", exactly(2))
    return dns.message.from_wire(exactly(length))


def test_pipelined_queries_are_answered_in_order(worker: Worker) -> None:
    """Five queries in one write get five answers on the same connection, in order (RFC 7766)."""
    address = worker.tcp[0].getsockname()
    with _connect(address, "127.0.0.1") as sock:
        sock.sendall(b"".join(_query(BIG, 100 + i, "A" if i % 2 else "TXT") for i in range(5)))
        assert [_read_reply(sock).id for _ in range(5)] == [100, 101, 102, 103, 104]


def test_a_client_that_never_reads_is_closed_after_the_write_timeout(worker: Worker) -> None:
    """A client asking for big answers without reading loses its connection within ~1 s."""
    address = worker.tcp[0].getsockname()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(address)
    with sock:
        sock.setblocking(False)
        sent = 0
        for i in range(2000):
            try:
                sock.send(_query(BIG, i))
                sent += 1
            except BlockingIOError:
                break
            except (ConnectionResetError, BrokenPipeError):
                # Under load the sending took longer than the write timeout and the server
                # has already dropped us (the behaviour under test); its count still decides.
                break
        deadline = time.monotonic() + 4
        while worker.tcp_service.connections and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker.tcp_service.connections == 0, f"still open after {sent} queries"


def test_per_client_limit(worker: Worker) -> None:
    """The 17th connection from one address is closed at once; another address still gets in."""
    address = worker.tcp[0].getsockname()
    held = [_connect(address, "127.0.0.5") for _ in range(16)]
    try:
        # The 17th must meet a full quota: the service has taken all 16 first (a fixed 0.2 s
        # was not always enough for its thread on a loaded machine).
        wait_for(lambda: worker.tcp_service.connections >= 16, 30, "16 connections taken")
        with _connect(address, "127.0.0.5") as extra:
            extra.settimeout(2)
            extra.sendall(_query(BIG, 1, "A"))
            with pytest.raises((ConnectionError, OSError)):
                _read_reply(extra)
        with _connect(address, "127.0.0.6") as other:
            assert _read_reply_after(other, _query(BIG, 2, "A")).id == 2
    finally:
        for sock in held:
            sock.close()


def _read_reply_after(sock: socket.socket, query: bytes) -> dns.message.Message:
    sock.sendall(query)
    return _read_reply(sock)


@pytest.mark.serial  # a wall-clock limit: no other worker's test runs meanwhile
@pytest.mark.slow
def test_300_stalled_and_500_idle_clients_do_not_starve_good_ones(worker: Worker) -> None:
    """With 300 never-reading and 500 idle clients, 100 good TCP queries all succeed in 2 s."""
    address = worker.tcp[0].getsockname()
    udp_address = worker.udp[0].getsockname()
    attackers: list[socket.socket] = []
    try:
        for i in range(300):  # 10 per address: under the per-client limit
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.bind((f"127.0.1.{1 + i // 10}", 0))
            sock.settimeout(5)
            sock.connect(address)
            sock.setblocking(False)
            for q in range(40):
                try:
                    sock.send(_query(BIG, q))
                except BlockingIOError:
                    break
            attackers.append(sock)
        for i in range(500):
            attackers.append(_connect(address, f"127.0.2.{1 + i // 10}"))
        time.sleep(0.2)

        def good(i: int) -> float:
            started = time.monotonic()
            with _connect(address, f"127.0.3.{1 + i}") as sock:
                reply = _read_reply_after(sock, _query(BIG, 7000 + i, "A"))
                assert reply.id == 7000 + i and reply.answer
            return time.monotonic() - started

        def udp(i: int) -> float:
            started = time.monotonic()
            query = dns.message.make_query(BIG, "A", use_edns=0, payload=1232)
            reply = dns.query.udp(query, udp_address[0], port=udp_address[1], timeout=1)
            assert reply.answer
            return time.monotonic() - started

        started = time.monotonic()
        with ThreadPoolExecutor(10) as pool:
            tcp_times = list(pool.map(good, range(100)))
            udp_times = list(pool.map(udp, range(100)))
        elapsed = time.monotonic() - started
    finally:
        for sock in attackers:
            sock.close()
    print(
        f"good TCP: max {max(tcp_times):.3f} s; UDP: max {max(udp_times):.3f} s; all in"
        f" {elapsed:.2f} s; evicted {worker.tcp_service.evicted}, refused"
        f" {worker.tcp_service.refused}"
    )
    assert max(tcp_times) < 2.0 and elapsed < 4.0, (max(tcp_times), elapsed)
    assert max(udp_times) < 1.0
    assert worker.tcp_service.evicted >= 300
    assert worker.tcp_service.connections <= 256


def test_shutdown_with_open_connections_is_quiet(
    worker: Worker, capfd: pytest.CaptureFixture[str]
) -> None:
    """Stopping a worker with 300 open TCP connections takes under 2 s and logs no traceback.

    The 2 s are the stop's own: wall time less the time the stopping thread sat runnable
    waiting for a CPU (its /proc schedstat), so a loaded machine cannot fail the test; every
    serving thread must also have ended by itself (stop() gives up joining after 1.5 s).
    """
    address = worker.tcp[0].getsockname()
    socks = [_connect(address, f"127.0.4.{1 + i // 10}") for i in range(300)]
    waited: list[float] = []

    def run_delay() -> float:
        stat = Path(f"/proc/self/task/{threading.get_native_id()}/schedstat").read_text()
        return int(stat.split()[1]) / 1e9

    def stop() -> None:
        before = run_delay()
        worker.stop()
        waited.append(run_delay() - before)

    try:
        time.sleep(0.3)
        started = time.monotonic()
        stopper = threading.Thread(target=stop)
        stopper.start()
        stopper.join(10)
        took = time.monotonic() - started
        assert waited, "stop() did not return within 10 s"
        own = took - waited[0]
        assert own < 2.0, f"stop took {own:.2f} s of its own ({took:.2f} s wall)"
        alive = [t.name for t in getattr(worker, "_threads", []) if t.is_alive()]
        assert not alive, f"threads still running after stop(): {alive}"
    finally:
        for sock in socks:
            sock.close()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "CancelledError" not in err


def _serve_stream(messages: Callable[[threading.Event], Iterator[bytes | None]]) -> list[bytes]:
    """Serve one query whose answer is *messages* (given an event the client sets after the
    first message arrived); return what the client read before the connection closed."""
    import asyncio

    from reputable.publication.dnsbl.tcp import TcpLimits, TcpService

    got_first = threading.Event()

    async def run() -> list[bytes]:
        service = TcpService(lambda packet, host: messages(got_first), TcpLimits())
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        await service.start([listener])
        reader, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        writer.write(_query("x.bl.reputable.test", 1))
        received = []
        try:
            async with asyncio.timeout(60):  # the whole exchange, on a loaded machine
                while head := await reader.read(2):
                    received.append(await reader.readexactly(int.from_bytes(head, "big")))
                    got_first.set()
        finally:
            writer.close()
            await service.close()
        return received

    return asyncio.run(run())


def test_a_transfer_is_sent_message_by_message() -> None:
    """The first message reaches the client before the second is built (a zone transfer
    used to be built whole first), and a None midway closes the connection."""

    def messages(got_first: threading.Event) -> Iterator[bytes | None]:
        yield b"first"
        yield b"second" if got_first.wait(30) else b"second, after the whole was built"
        yield None
        yield b"never sent"

    assert _serve_stream(messages) == [b"first", b"second"]

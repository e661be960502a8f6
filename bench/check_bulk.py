"""Benchmark: 1,000 IPv4 addresses x 40 zones against a local DNS server that delays every answer.

Run: python bench/check_bulk.py [--addresses 1000] [--zones 40] [--delay 0.02] [--concurrency 200]

Everything stays on 127.0.0.1: the server runs in a child process and answers every query after
*delay* seconds (NXDOMAIN, or 127.0.0.2 for addresses whose last octet is 7). Compared on the same
input in the same run: reputable's DnsClient, pydnsbl (its aiodns resolver re-created to point at
the local server: pydnsbl has no nameserver option), and a plain dnspython asyncio loop.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import multiprocessing.connection
import socket
import time
from collections.abc import Callable, Coroutine
from ipaddress import IPv4Address
from typing import Any

import dns.asyncquery
import dns.message
import dns.rcode

from reputable.checker.catalogue import SubjectKind, builtin_zones
from reputable.checker.dnsbl import check_zones
from reputable.checker.model import Status
from reputable.checker.transport import DnsClient, Nameserver

_LISTED_A = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x7f\x00\x00\x02"


def reply(query: bytes) -> bytes:
    """Return the answer to *query*, built by hand so the server costs little CPU."""
    pos = 12
    first = b""
    while query[pos]:
        length = query[pos]
        if not first:
            first = query[pos + 1 : pos + 1 + length]
        pos += 1 + length
    end = pos + 5
    qtype = int.from_bytes(query[pos + 1 : pos + 3], "big")
    listed = first == b"7" and qtype == 1
    flags = (0x8400 | (query[2] & 0x01) << 8) | (0 if listed else 3)
    header = (
        query[:2]
        + flags.to_bytes(2, "big")
        + b"\x00\x01"
        + (b"\x00\x01" if listed else b"\x00\x00")
    )
    return header + b"\x00\x00\x00\x00" + query[12:end] + (_LISTED_A if listed else b"")


class _Delayed(asyncio.DatagramProtocol):
    def __init__(self, delay: float, counter: list[int]) -> None:
        self.delay = delay
        self.counter = counter
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.counter[0] += 1
        assert self.transport is not None
        asyncio.get_running_loop().call_later(self.delay, self.transport.sendto, reply(data), addr)


def serve(conn: multiprocessing.connection.Connection, delay: float) -> None:
    """Child process: serve on 127.0.0.1 until told to stop; report the port and query count."""

    async def main() -> None:
        counter = [0]
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Delayed(delay, counter), local_addr=("127.0.0.1", 0)
        )
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        conn.send(transport.get_extra_info("sockname")[1])
        while True:
            await asyncio.sleep(0.05)
            if conn.poll():
                if conn.recv() == "stop":
                    break
                conn.send(counter[0])
        transport.close()

    asyncio.run(main())


async def run_reputable(port: int, ips: list[IPv4Address], zones: list[Any], limit: int) -> int:
    """Check every address on every zone with reputable's client; return listed results."""
    async with DnsClient(Nameserver(IPv4Address("127.0.0.1"), port), timeout=3,
                         concurrency=limit) as client:  # fmt: skip
        results = await asyncio.gather(*(check_zones(ip, zones, client, txt=False) for ip in ips))
    return sum(r.status is Status.LISTED for rs in results for r in rs)


async def run_plain(port: int, ips: list[IPv4Address], zones: list[Any], limit: int) -> int:
    """The same with a plain dnspython asyncio loop: one socket per query."""
    gate = asyncio.Semaphore(limit)

    async def one(name: str) -> bool:
        async with gate:
            query = dns.message.make_query(name, "A")
            response = await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=3)
            return response.rcode() == dns.rcode.NOERROR and bool(response.answer)

    names = [".".join(reversed(str(ip).split("."))) + "." + z.name for ip in ips for z in zones]
    return sum(await asyncio.gather(*(one(n) for n in names)))


def run_pydnsbl(port: int, ips: list[IPv4Address], zones: list[Any], limit: int) -> int | str:
    """The same with pydnsbl, its resolver replaced by one bound to the local server."""
    try:
        import aiodns
        from pydnsbl import DNSBLIpChecker
        from pydnsbl.providers import Provider
    except ImportError as exc:
        return f"not installed ({exc})"
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # pydnsbl schedules its tasks on the current loop
    try:
        checker = DNSBLIpChecker(providers=[Provider(z.name) for z in zones], timeout=3, tries=2,
                                 concurrency=limit, loop=loop)  # fmt: skip
        # pydnsbl offers no nameserver option: swap in an aiodns resolver that asks 127.0.0.1 only.
        checker._resolver = aiodns.DNSResolver(
            nameservers=["127.0.0.1"], udp_port=port, tcp_port=port, timeout=3, tries=2, loop=loop
        )
        if checker._resolver.nameservers != ["127.0.0.1"]:
            return "could not be pointed at the local server: skipped"
        results = checker.bulk_check([str(ip) for ip in ips])
        return sum(len(r.detected_by) for r in results)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def timed(label: str, fn: Callable[[], Any], queries: int, bound: float, conn: Any) -> None:
    """Run *fn*, print its time, rate and ratio to the latency bound, and the server's count."""
    conn.send("count")
    before = conn.recv()
    start = time.perf_counter()
    listed = fn()
    elapsed = time.perf_counter() - start
    conn.send("count")
    seen = conn.recv() - before
    if isinstance(listed, str):
        print(f"{label:<22} {listed}")
        return
    print(f"{label:<22} {elapsed:8.2f} s {queries / elapsed:10.0f} q/s {elapsed / bound:7.2f}x"
          f"   listed={listed:<6} server saw {seen} queries")  # fmt: skip


def main() -> None:
    """Parse arguments, start the server, run the three clients and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=1000)
    parser.add_argument("--zones", type=int, default=40)
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--skip", action="append", default=[], choices=["pydnsbl", "plain"])
    args = parser.parse_args()
    zones = [z for z in builtin_zones()
             if z.kind is SubjectKind.IP and not z.allow and not z.closed][: args.zones]  # fmt: skip
    ips = [IPv4Address("198.18.0.0") + i for i in range(args.addresses)]
    queries = len(ips) * len(zones)
    bound = queries * args.delay / args.concurrency
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(child, args.delay), daemon=True)
    server.start()
    port = parent.recv()
    print(f"{len(ips)} addresses x {len(zones)} zones = {queries} queries, server delay "
          f"{args.delay * 1000:.0f} ms, concurrency {args.concurrency}: latency bound "
          f"{bound:.2f} s")  # fmt: skip
    c = args.concurrency

    def run(coro: Callable[..., Coroutine[Any, Any, int]]) -> Callable[[], int]:
        return lambda: asyncio.run(coro(port, ips, zones, c))

    timed("reputable DnsClient", run(run_reputable), queries, bound, parent)
    if "pydnsbl" not in args.skip:
        timed("pydnsbl", lambda: run_pydnsbl(port, ips, zones, c), queries, bound, parent)
    if "plain" not in args.skip:
        timed("plain dnspython loop", run(run_plain), queries, bound, parent)
    parent.send("stop")
    server.join(5)


if __name__ == "__main__":
    main()

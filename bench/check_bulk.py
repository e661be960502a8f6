"""Benchmark: 1,000 IPv4 addresses x 40 zones against a local DNS server that delays every answer.

Run: python bench/check_bulk.py [--repeat 3] [--concurrency N ...] [--skip plain]

Everything stays on 127.0.0.1: the server runs in a child process and answers every query
*delay* seconds (default 20 ms) after the kernel stamped its arrival (NXDOMAIN, or 127.0.0.2 for
addresses whose last octet is 7), and counts every query. Compared on the same input in the same
run: reputable (DnsClient + check_zones), pydnsbl (its aiodns resolver re-created to point at
the local server: pydnsbl has no nameserver option), and a plain dnspython asyncio loop. Each
runs at every concurrency given, by default reputable's and pydnsbl's own defaults, so each tool
is seen at its default and all at equal concurrency. The latency bound is
queries x delay / concurrency; the table also gives the server's CPU per query and how late it
answered, to show the harness is not what limits the clients.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import multiprocessing
import multiprocessing.connection
import select
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

import dns.asyncquery
import dns.message
import dns.rcode

from reputable.checker.catalogue import SubjectKind, builtin_zones
from reputable.checker.dnsbl import check_zones
from reputable.checker.model import Status
from reputable.core.dnsclient import DEFAULT_CONCURRENCY, DnsClient, Nameserver

_SO_TIMESTAMPNS = 35  # Linux; not exported by the socket module
_TIMESPEC = struct.Struct("@qq")
_LISTED_A = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x7f\x00\x00\x02"


def reply(query: bytes) -> bytes:
    """Return the answer to *query*, built by hand so the server costs little CPU."""
    end = query.index(0, 12) + 5  # end of the question: the bench asks ASCII names only
    listed = query[12] == 1 and query[13] == 0x37 and query[end - 3] == 1  # "7.x.x.x" IN A
    flags = 0x8400 | (query[2] & 0x01) << 8 | (0 if listed else 3)
    return (
        query[:2]
        + flags.to_bytes(2, "big")
        + (b"\x00\x01\x00\x01\x00\x00\x00\x00" if listed else b"\x00\x01\x00\x00\x00\x00\x00\x00")
        + query[12:end]
        + (_LISTED_A if listed else b"")
    )


@dataclass
class ServerStats:
    """What the delaying server reports: queries counted, its CPU, how late its answers went."""

    queries: int = 0
    answered: int = 0
    cpu: float = 0.0
    late_sum: float = 0.0  # seconds past their due time, summed over the answers

    def since(self, before: ServerStats) -> ServerStats:
        """Return the figures accumulated after *before*."""
        return ServerStats(
            self.queries - before.queries,
            self.answered - before.answered,
            self.cpu - before.cpu,
            self.late_sum - before.late_sum,
        )


def serve(conn: multiprocessing.connection.Connection, delay: float, tick: float) -> None:
    """Child process: answer every query *delay* seconds after it arrived, until told to stop.

    A plain loop, not asyncio, so that the harness is not what limits the clients. Each query is
    stamped by the kernel on arrival (SO_TIMESTAMPNS) and answered at the first wake-up at least
    *delay* later. While answers are pending the loop wakes every *tick* seconds, reads every
    datagram waiting and sends every answer due; it never sleeps on the socket then, so a client's
    sendto() does not pay for waking the server (it would not with a resolver on another
    machine). Idle, it blocks on the socket.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
    sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    conn.send(sock.getsockname()[1])
    stats = ServerStats()
    due: deque[tuple[float, bytes, Any]] = deque()
    recv, send, clock, space = sock.recvmsg, sock.sendto, time.time, socket.CMSG_SPACE(16)
    next_poll = clock()
    while True:
        try:
            while True:
                data, ancillary, _, addr = recv(4096, space)
                arrived = clock()  # the kernel's stamp below is earlier, if present
                for level, kind, raw in ancillary:
                    if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                        seconds, nanoseconds = _TIMESPEC.unpack(raw)
                        arrived = seconds + nanoseconds * 1e-9
                stats.queries += 1
                due.append((arrived + delay, reply(data), addr))
        except BlockingIOError:
            pass
        now = clock()
        while due and due[0][0] <= now:
            deadline, answer, addr = due.popleft()
            send(answer, addr)
            stats.answered += 1
            stats.late_sum += now - deadline
        if now >= next_poll:
            next_poll = now + 0.05
            if conn.poll():
                if conn.recv() == "stop":
                    break
                stats.cpu = time.process_time()
                conn.send(stats)
        if due:
            time.sleep(max(0.0, min(tick, due[0][0] - clock())))
        else:
            select.select([sock, conn], [], [], 0.05)
    sock.close()


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


def pydnsbl_default_concurrency() -> int | None:
    """Return pydnsbl's own default concurrency (read from its signature), or None."""
    try:
        from pydnsbl import DNSBLIpChecker
    except ImportError:
        return None
    default = inspect.signature(DNSBLIpChecker.__init__).parameters["concurrency"].default
    return int(default)


@dataclass(frozen=True)
class Run:
    """One timed run of one tool at one concurrency."""

    tool: str
    concurrency: int
    seconds: float
    cpu: float  # the client's own CPU (this process), seconds
    listed: int
    server: ServerStats


def timed(tool: str, fn: Callable[[], int | str], limit: int, conn: Any) -> Run | str:
    """Run *fn* and return its figures with the server's, or the reason it did not run."""
    conn.send("stats")
    before = conn.recv()
    start, cpu = time.perf_counter(), time.process_time()
    listed = fn()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    conn.send("stats")
    after = conn.recv()
    if isinstance(listed, str):
        return listed
    return Run(tool, limit, elapsed, cpu, listed, after.since(before))


def median_of(runs: list[Run]) -> Run:
    """Return the run with the median time (the lower middle one for an even count)."""
    return sorted(runs, key=lambda r: r.seconds)[(len(runs) - 1) // 2]


def print_table(runs: list[Run], queries: int, delay: float, defaults: dict[str, int]) -> None:
    """Print one line per tool and concurrency (median of the repeats), with every ratio."""
    groups: dict[tuple[str, int], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.tool, run.concurrency), []).append(run)
    medians = {key: median_of(group) for key, group in groups.items()}
    base = medians.get(("pydnsbl", defaults.get("pydnsbl", -1)))
    print(f"\n{'tool':<11} {'conc.':>9} {'time':>7} {'q/s':>7} {'bound':>7} {'x bound':>7}"
          f" {'vs pydnsbl':>10} {'same conc.':>10} {'cli us/q':>8} {'srv us/q':>8} {'srv late':>8}"
          f" {'srv saw':>7} {'listed':>6}")  # fmt: skip
    for (tool, limit), run in medians.items():
        bound = queries * delay / limit
        same = medians.get(("pydnsbl", limit))
        tag = f"{limit}{'*' if defaults.get(tool) == limit else ' '}"
        server = run.server
        print(f"{tool:<11} {tag:>9} {run.seconds:6.2f}s {queries / run.seconds:7.0f} "
              f"{bound:6.2f}s {run.seconds / bound:6.2f}x "
              f"{(f'{base.seconds / run.seconds:.2f}x' if base else '-'):>10} "
              f"{(f'{same.seconds / run.seconds:.2f}x' if same else '-'):>10} "
              f"{run.cpu / queries * 1e6:8.1f} "
              f"{server.cpu / max(server.queries, 1) * 1e6:8.1f} "
              f"{server.late_sum / max(server.answered, 1) * 1e3:6.2f}ms "
              f"{server.queries:7d} {run.listed:6d}")  # fmt: skip
    print("* the tool's default concurrency. vs pydnsbl: pydnsbl's time at its default divided by"
          " this time; same conc.: pydnsbl's at this concurrency divided by this time.\n"
          "cli us/q, srv us/q: CPU per query of the client, of the delaying server; srv late: mean"
          " time its answers left after the delay had passed (time the clients could not help)."
          " Medians of"
          f" {max(len(g) for g in groups.values())} run(s).")  # fmt: skip


def main() -> None:
    """Parse arguments, start the server, run the clients at each concurrency, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=1000)
    parser.add_argument("--zones", type=int, default=40)
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, action="append", default=[],
                        help="run every tool at this concurrency (repeatable; default: reputable's"
                        " and pydnsbl's defaults)")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=1, help="runs of each (median reported)")
    parser.add_argument("--tick", type=float, default=0.0005,
                        help="server: seconds between wake-ups while answers are pending")  # fmt: skip
    parser.add_argument("--skip", action="append", default=[], choices=["pydnsbl", "plain"])
    args = parser.parse_args()
    zones = [z for z in builtin_zones()
             if z.kind is SubjectKind.IP and not z.allow and not z.closed][: args.zones]  # fmt: skip
    ips = [IPv4Address("198.18.0.0") + i for i in range(args.addresses)]
    queries = len(ips) * len(zones)
    defaults = {"reputable": DEFAULT_CONCURRENCY}
    theirs = pydnsbl_default_concurrency()
    if theirs is not None and "pydnsbl" not in args.skip:
        defaults["pydnsbl"] = theirs
    limits = args.concurrency or sorted(set(defaults.values()))
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(child, args.delay, args.tick),
                                     daemon=True)  # fmt: skip
    server.start()
    port = parent.recv()
    print(f"{len(ips)} addresses x {len(zones)} zones = {queries} queries, server delay "
          f"{args.delay * 1000:g} ms; latency bound = queries x delay / concurrency")  # fmt: skip

    def coro(fn: Callable[..., Coroutine[Any, Any, int]], limit: int) -> Callable[[], int]:
        return lambda: asyncio.run(fn(port, ips, zones, limit))

    tools: dict[str, Callable[[int], Callable[[], int | str]]] = {
        "reputable": lambda c: coro(run_reputable, c),
        "pydnsbl": lambda c: lambda: run_pydnsbl(port, ips, zones, c),
        "plain": lambda c: coro(run_plain, c),
    }
    runs: list[Run] = []
    for _ in range(args.repeat):
        for limit in limits:
            for tool, make in tools.items():
                if tool in args.skip:
                    continue
                run = timed(tool, make(limit), limit, parent)
                if isinstance(run, str):
                    print(f"{tool}: {run}")
                    args.skip.append(tool)
                    continue
                runs.append(run)
                print(f"{tool:<11} concurrency {limit:>5}: {run.seconds:6.2f} s, "
                      f"{queries / run.seconds:6.0f} q/s, {run.seconds / (queries * args.delay / limit):.2f}x bound, "
                      f"listed={run.listed}, server saw {run.server.queries}", flush=True)  # fmt: skip
    parent.send("stop")
    server.join(5)
    print_table(runs, queries, args.delay, defaults)


if __name__ == "__main__":
    main()

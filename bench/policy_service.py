#!/usr/bin/env python3
"""Benchmark: the Postfix policy service over 1,000,000 listings, one server process.

One run fills a fresh SQLite store (default 1,000,000 single IPv4 addresses, 10,000 CIDR
ranges and 50,000 domains), builds the snapshot once, starts the policy service alone in
one process (the ``serve`` task, without DNS) on 127.0.0.1, and drives it from client
processes that speak the policy protocol as Postfix does: one request per connection at a
time, the next only after the answer. Every request carries a client address (half listed),
a HELO name and a sender domain (a tenth listed), so each decision is three lookups.

Two phases: *saturation* (every connection sends as fast as answers come: the throughput)
and *paced* (a fixed total rate, default 10,000/s: latency measured from the time each
request was due, so a stall in the server counts fully, not only the request that met it).

The clients are bench/policy_load.c, compiled with gcc at the start (a real load generator,
as wrk is for HTTP; ``--client python`` uses the selectors loop below instead), and with 2
or more cores the server is pinned to one core and the clients to the others.

    python bench/policy_service.py                           # the full run (about 2 minutes)
    python bench/policy_service.py --listings 100000 --seconds 5   # quick
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import re
import resource
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from ipaddress import IPv4Network
from pathlib import Path

from reputable.builder import publish_now
from reputable.config import load_config
from reputable.core.address import Domain
from reputable.core.cause import Cause
from reputable.listings.model import Batch, Listing
from reputable.store.sqlite import SQLiteStore
from reputable.testing import free_port, write_config

CHUNK = 50_000
SEED = 20261205


def _listable(value: int) -> bool:
    first = value >> 24
    return 1 <= first < 224 and first not in (10, 127)


def make_store(folder: Path, listings: int, ranges: int, domains: int, port: int) -> Path:
    """Write a config with [policy_service] on *port*, fill the store, build the snapshot."""
    extra = f'[policy_service]\nlisten = "127.0.0.1:{port}"\n'
    config_path = write_config(folder, dns_port=free_port(), extra=extra)
    rng = random.Random(SEED)
    store = SQLiteStore(folder / "reputable.db")
    now = datetime.now(UTC)
    rows: list[Listing] = []
    hosts: set[int] = set()

    def add(listing: Listing) -> None:
        rows.append(listing)
        if len(rows) >= CHUNK:
            store.apply(Batch(listings=tuple(rows)), actor="bench", action="import")
            rows.clear()

    while len(hosts) < listings:
        value = rng.getrandbits(32)
        if _listable(value) and value not in hosts:
            hosts.add(value)
            add(Listing(subject=IPv4Network((value, 32)), cause=Cause.SPAM, reason="spam trap hits",
                        source="bench", listed_at=now))  # fmt: skip
    for _ in range(ranges):
        value = rng.getrandbits(32)
        if _listable(value):
            plen = rng.choice((24, 25, 26, 27, 28))
            add(Listing(subject=IPv4Network((value >> (32 - plen) << (32 - plen), plen)),
                        cause=Cause.COMPROMISED, reason="botnet segment", source="bench",
                        listed_at=now))  # fmt: skip
    for i in range(domains):
        add(Listing(subject=Domain(f"spam{i}.bench.example"), cause=Cause.SPAM,
                    reason="spamvertised", source="bench", listed_at=now))  # fmt: skip
    if rows:
        store.apply(Batch(listings=tuple(rows)), actor="bench", action="import")
    store.close()
    (folder / "hosts.txt").write_text("\n".join(str(h) for h in sorted(hosts)[::97]))
    publish_now(load_config(config_path))
    return config_path


def requests(folder: Path, count: int, domains: int, seed: int) -> list[bytes]:
    """Return *count* requests: half from listed clients, a tenth with a listed sender domain."""
    rng = random.Random(seed)
    listed = [int(x) for x in (folder / "hosts.txt").read_text().split()]
    out = []
    for k in range(count):
        value = rng.choice(listed) if k % 2 == 0 else rng.getrandbits(32) | 0x01000000
        address = ".".join(str(b) for b in value.to_bytes(4, "big"))
        sender = f"spam{rng.randrange(domains)}.bench.example" if k % 10 == 0 else "example.org"
        out.append(
            (
                "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
                f"client_address={address}\nclient_name=unknown\nreverse_client_name=unknown\n"
                f"helo_name=mx{k % 1000}.example.net\nsender=user{k}@{sender}\n"
                f"recipient=rcpt{k}@example.com\nrecipient_count=0\nqueue_id=\n"
                "instance=123.456.7\nsize=0\netrn_domain=\nstress=\nsasl_method=\n"
                "ccert_subject=\nccert_issuer=\nccert_fingerprint=\nencryption_protocol=\n"
                "encryption_cipher=\nencryption_keysize=0\n\n"
            ).encode()
        )
    return out


def serve_only(config_path: str) -> None:
    """Run the policy service alone until killed (the child process of the benchmark)."""
    from reputable.policyd.server import run_policy_service

    config = load_config(Path(config_path))

    async def main() -> None:
        stop = asyncio.Event()
        await run_policy_service(config, lambda: SQLiteStore(config.store_dsn[10:]), stop)

    asyncio.run(main())


def load_process(
    args: tuple[int, list[bytes], float, int, float | None, set[int] | None],
) -> list[float]:
    """Run *connections* clients for *seconds* in this process; return their latencies.

    A plain ``selectors`` loop over non-blocking sockets, not asyncio: the load generator
    shares the machine with the server and must cost less per request than the server does.
    Each connection has at most one request outstanding, as Postfix does. Paced (*rate* not
    None): each connection's next request is due one interval after the last one was due,
    and latency counts from that due time (no coordinated omission).
    """
    port, reqs, seconds, connections, rate, pin = args
    if pin:
        os.sched_setaffinity(0, pin)
    interval = None if rate is None else connections / rate
    selector = selectors.DefaultSelector()
    socks = []
    for _ in range(connections):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        socks.append(sock)
    start = time.perf_counter()
    end = start + seconds
    due = [start + (i * interval / connections if interval else 0.0) for i in range(connections)]
    sent_at = [0.0] * connections
    pending = [b""] * connections
    nxt = list(range(connections))
    lat: list[float] = []
    waiting: set[int] = set(range(connections))  # connections ready to send

    def send(i: int, now: float) -> None:
        sock = socks[i]
        sent_at[i] = due[i] if interval else now
        sock.sendall(reqs[nxt[i] % len(reqs)])
        nxt[i] += connections
        selector.register(sock, selectors.EVENT_READ, i)

    while True:
        now = time.perf_counter()
        if now >= end:
            break
        for i in list(waiting):
            if interval is None or due[i] <= now:
                waiting.discard(i)
                send(i, now)
        timeout = None
        if interval is not None and waiting:
            timeout = max(0.0, min(due[i] for i in waiting) - time.perf_counter())
        for key, _ in selector.select(timeout if timeout is not None else 0.05):
            i = key.data
            pending[i] += key.fileobj.recv(65536)  # type: ignore[union-attr]
            if pending[i].endswith(b"\n\n"):
                done = time.perf_counter()
                if not pending[i].startswith(b"action="):
                    raise RuntimeError(f"bad answer {pending[i]!r}")
                lat.append(done - sent_at[i])
                pending[i] = b""
                selector.unregister(key.fileobj)
                if interval is not None:
                    due[i] += interval
                waiting.add(i)
    for sock in socks:
        sock.close()
    return lat


def drive(
    port: int,
    reqs: list[bytes],
    seconds: float,
    procs: int,
    conns: int,
    rate: float | None,
    pin: set[int] | None = None,
) -> tuple[float, list[float]]:
    """Return (decisions/s, latencies) of *procs* x *conns* clients (rate: total, or None)."""
    share = None if rate is None else rate / procs
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        results = pool.map(
            load_process,
            [(port, reqs[i::procs], seconds, conns, share, pin) for i in range(procs)],
        )
    lat = sorted(x for r in results for x in r)
    return len(lat) / seconds, lat


def cores() -> tuple[set[int], set[int]] | None:
    """Return (server cores, client cores) to pin to, or None with fewer than 2 usable cores.

    The server gets one core to itself and the load generators the rest: on a 2-core machine
    a client process scheduled on the server's core queues requests behind it (the p99 then
    measures the client, not the server).
    """
    usable = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(usable) < 2:
        return None
    return {usable[0]}, set(usable[1:])


def c_client(folder: Path) -> Path | None:
    """Compile bench/policy_load.c with gcc into *folder*; None when gcc is missing or fails."""
    source = Path(__file__).with_name("policy_load.c")
    binary = folder / "policy_load"
    if shutil.which("gcc") is None:
        return None
    done = subprocess.run(
        ["gcc", "-O2", "-o", str(binary), str(source)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        print(f"gcc failed, using the Python client:\n{done.stderr}", file=sys.stderr)
        return None
    return binary


def drive_c(
    binary: Path,
    port: int,
    reqs: list[bytes],
    seconds: float,
    procs: int,
    conns: int,
    rate: float | None,
    pin: set[int] | None = None,
) -> tuple[float, list[float]]:
    """As ``drive``, with *procs* processes of the compiled client (bench/policy_load.c)."""
    share = 0.0 if rate is None else rate / procs
    running = []
    for i in range(procs):
        path = binary.with_name(f"requests-{i}.txt")
        path.write_bytes(b"".join(reqs[i::procs]))
        cmd = [str(binary), str(port), str(seconds), str(conns), str(share), str(path)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
        if pin:
            os.sched_setaffinity(proc.pid, pin)
        running.append(proc)
    lat: list[float] = []
    for proc in running:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"policy_load exited {proc.returncode}")
        lat.extend(int(x) / 1e9 for x in out.split())
    lat.sort()
    return len(lat) / seconds, lat


def pct(values: list[float], p: float) -> float:
    """Return the *p*-th percentile (ms) of sorted *values*."""
    return values[min(len(values) - 1, int(len(values) * p / 100))] * 1000


def loadavg() -> str:
    """Return the 1-minute load average."""
    return Path("/proc/loadavg").read_text().split()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--listings", type=int, default=1_000_000, help="single IPv4 hosts")
    parser.add_argument("--ranges", type=int, default=10_000)
    parser.add_argument("--domains", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=10.0, help="per phase")
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--connections", type=int, default=8, help="per client process")
    parser.add_argument("--rate", type=float, default=10_000, help="paced phase, total req/s")
    parser.add_argument("--port", type=int, default=0, help="0: a free loopback port")
    parser.add_argument(
        "--folder", help="keep the store and snapshot here and reuse them in later runs"
    )
    parser.add_argument(
        "--client",
        choices=("auto", "c", "python"),
        default="auto",
        help="load generator: bench/policy_load.c compiled with gcc (auto: when gcc exists)",
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin the server and clients to separate cores"
    )
    parser.add_argument("--serve-only", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_only:
        serve_only(args.serve_only)
        return 0
    port = args.port or free_port()
    with tempfile.TemporaryDirectory(prefix="policy_bench-") as tmp:
        folder = Path(args.folder or tmp)
        started = time.perf_counter()
        if args.folder and (folder / "hosts.txt").exists():  # built by an earlier run
            config = _relisten(folder / "reputable.toml", port)
        else:
            folder.mkdir(parents=True, exist_ok=True)
            config = make_store(folder, args.listings, args.ranges, args.domains, port)
        print(
            f"store + snapshot: {time.perf_counter() - started:.1f} s for {args.listings} hosts,"
            f" {args.ranges} ranges, {args.domains} domains",
            flush=True,
        )
        reqs = requests(folder, 200_000, args.domains, SEED)
        binary = None if args.client == "python" else c_client(Path(tmp))
        if binary is None and args.client == "c":
            raise SystemExit("--client c needs gcc (Debian package gcc)")
        print(f"client: {'compiled bench/policy_load.c' if binary else 'Python (selectors)'}")

        def load(
            phase: list[bytes], seconds: float, rate: float | None
        ) -> tuple[float, list[float]]:
            if binary is not None:
                return drive_c(binary, port, phase, seconds, args.procs, args.connections, rate,
                               client_cores)  # fmt: skip
            return drive(port, phase, seconds, args.procs, args.connections, rate, client_cores)

        pinning = None if args.no_pin else cores()
        if pinning is None:
            print("cores: not pinned (server and clients share every core)")
        else:
            print(f"cores: server pinned to {sorted(pinning[0])}, clients to {sorted(pinning[1])}")
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve-only", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if pinning is not None:
            os.sched_setaffinity(server.pid, pinning[0])
        client_cores = None if pinning is None else pinning[1]
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    asyncio.run(asyncio.open_connection("127.0.0.1", port))
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("policy service did not start") from None
                    time.sleep(0.1)
            # Each phase starts at another place in the requests: no address repeats between
            # phases (the service caches domain lookups per snapshot, never addresses).
            third = len(reqs) // 3
            load(reqs, 2.0, None)  # warm up
            print(f"loadavg before: {Path('/proc/loadavg').read_text().strip()}")
            cpu0 = _cpu(server.pid)
            phase = reqs[third:] + reqs[:third]
            rate, lat = load(phase, args.seconds, None)
            cpu1 = _cpu(server.pid)
            print(
                f"saturation ({args.procs}x{args.connections} connections): {rate:,.0f}"
                f" decisions/s, p50 {pct(lat, 50):.2f} ms, p99 {pct(lat, 99):.2f} ms,"
                f" p99.9 {pct(lat, 99.9):.2f} ms; server CPU {(cpu1 - cpu0) / args.seconds:.2f}"
                f" cores = {(cpu1 - cpu0) / max(1, len(lat)) * 1e6:.1f} us/decision"
            )
            phase = reqs[2 * third :] + reqs[: 2 * third]
            cpu0 = _cpu(server.pid)
            rate, lat = load(phase, args.seconds, args.rate)
            cpu1 = _cpu(server.pid)
            print(
                f"paced at {args.rate:,.0f}/s: {rate:,.0f} decisions/s answered, p50"
                f" {pct(lat, 50):.2f} ms, p99 {pct(lat, 99):.2f} ms, p99.9 {pct(lat, 99.9):.2f} ms,"
                f" max {lat[-1] * 1000:.1f} ms ({len(lat)} requests); server CPU"
                f" {(cpu1 - cpu0) / args.seconds:.2f} cores ="
                f" {(cpu1 - cpu0) / max(1, len(lat)) * 1e6:.1f} us/decision"
            )
            print(f"loadavg after: {Path('/proc/loadavg').read_text().strip()}")
            print(f"server RSS: {_rss(server.pid):.0f} MiB; bench peak RSS"
                  f" {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")  # fmt: skip
        finally:
            server.terminate()
            server.wait(timeout=10)
    return 0


def _relisten(config: Path, port: int) -> Path:
    """Point the kept config's [policy_service] at *port*; return its path."""
    text = config.read_text()
    config.write_text(
        re.sub(r'(?m)^(\[policy_service\]\nlisten = "127\.0\.0\.1:)\d+', rf"\g<1>{port}", text)
    )
    return config


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return statistics.fmean([0.0])


if __name__ == "__main__":
    raise SystemExit(main())

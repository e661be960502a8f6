#!/usr/bin/env python3
"""Benchmark: the HTTP API of `reputable serve` with 1M listings, against the framework floor.

One run fills a fresh SQLite store with ENTRIES random single IPv4 listings (plus a few
networks), builds the snapshot, starts `reputable serve` with HTTP on a free loopback port,
and measures:

- single-subject lookups ``GET /api/v1/lookup/IP`` driven by ``wrk`` (half of the addresses
  listed), requests/s and p99 latency;
- the framework floor: a bare FastAPI app returning a constant JSON, served by uvicorn the
  same way, driven by the same wrk command in the same run (alternating with the API);
- a 1,000-subject ``POST /api/v1/lookup``: wall time per batch (p50/p99 over REPEATS);
- evidence intake: JSON-lines batches of 10,000 records, records/s.

Everything runs on 127.0.0.1. Prints `cat /proc/loadavg` before and after.

    python bench/http_api.py                         # 1,000,000 listings
    python bench/http_api.py --entries 100000 --seconds 5    # quick
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import httpx
from dns_vs_rbldnsd import cpu_seconds, tree

from reputable.core.cause import Cause
from reputable.listings.model import Batch, Listing
from reputable.store.sqlite import SQLiteStore
from reputable.testing import cli, free_port, write_config

HOST = "127.0.0.1"
CHUNK = 100_000
FLOOR_APP = textwrap.dedent(
    """
    import sys
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    app = FastAPI()
    BODY = {"subject": "198.51.100.7", "listed": False, "listings": [], "allowlisted": False,
            "allowlist": [], "score": 50, "bucket": "unknown", "serial": 1, "truncated": False}

    @app.get("/api/v1/lookup/{subject:path}")
    async def constant(subject: str) -> JSONResponse:
        return JSONResponse(BODY)

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None,
                access_log=False, server_header=False, lifespan="off")
    """
)
HTTP_ALONE = textwrap.dedent(
    """
    import asyncio, signal, sys
    from pathlib import Path
    from reputable.app import open_store
    from reputable.config import load_config
    from reputable.web.context import Context
    from reputable.web.server import run_http
    from reputable.web.settings import http_settings

    async def main(config):
        ctx = Context.create(config, http_settings(config), lambda: open_store(config))
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await run_http(ctx, stop)

    if __name__ == "__main__":
        asyncio.run(main(load_config(Path(sys.argv[1]))))
    """
)
WRK_SCRIPT = textwrap.dedent(
    """
    local paths = {}
    for line in io.lines(os.getenv("PATHS")) do paths[#paths + 1] = line end
    local i = 0
    request = function()
      i = i + 1
      if i > #paths then i = 1 end
      return wrk.format("GET", paths[i])
    end
    """
)


def server_cpu(pid: int) -> float:
    """Return the CPU seconds (user + system) *pid* and its live children have used so far."""
    return sum(cpu_seconds(tree(pid)))


def loadavg() -> str:
    """Return /proc/loadavg."""
    return Path("/proc/loadavg").read_text().strip()


def fill(store_path: Path, entries: int, seed: int) -> list[int]:
    """Store *entries* random listed IPv4 hosts (and 1,000 /24s); return the hosts."""
    rng = random.Random(seed)
    hosts: set[int] = set()
    while len(hosts) < entries:
        value = rng.randrange(0x01000000, 0xDF000000)
        if value >> 24 not in (10, 127):
            hosts.add(value)
    ordered = sorted(hosts)
    now = datetime.now(UTC)
    store = SQLiteStore(store_path)
    try:
        for start in range(0, len(ordered), CHUNK):
            rows = tuple(
                Listing(
                    subject=IPv4Network(value),
                    cause=Cause.SPAM,
                    reason="spam trap hits",
                    source="bench",
                    listed_at=now,
                )
                for value in ordered[start : start + CHUNK]
            )
            store.apply(Batch(listings=rows), actor="bench", action="import")
        nets = tuple(
            Listing(
                subject=IPv4Network((rng.randrange(0x0B000000, 0x7E000000) >> 8 << 8, 24)),
                cause=Cause.NETWORK,
                reason="segment",
                source="bench",
                listed_at=now,
            )
            for _ in range(1000)
        )
        store.apply(Batch(listings=nets), actor="bench", action="import")
    finally:
        store.close()
    return ordered


def paths_file(directory: Path, hosts: list[int], count: int, seed: int) -> Path:
    """Write *count* lookup paths, half of them listed addresses."""
    rng = random.Random(seed + 1)
    lines = []
    for k in range(count):
        value = hosts[rng.randrange(len(hosts))] if k % 2 == 0 else rng.randrange(1 << 32)
        lines.append(f"/api/v1/lookup/{IPv4Address(value)}")
    path = directory / "paths.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def wrk(port: int, paths: Path, script: Path, args: argparse.Namespace) -> tuple[float, float]:
    """Return (requests/s, p99 ms) of one wrk run."""
    out = subprocess.run(
        ["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{args.seconds}s",
         "--latency", "-s", str(script), f"http://{HOST}:{port}"],
        capture_output=True, text=True, check=True, env={**os.environ, "PATHS": str(paths)},
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99 is not None, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise RuntimeError(f"wrk saw errors:\n{out}")
    return rps, float(p99.group(1)) * scale


def wait_http(port: int, path: str, seconds: float = 120) -> None:
    """Wait until GET *path* answers 200."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://{HOST}:{port}{path}", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"nothing answers on {HOST}:{port}{path}")


def batch_latency(port: int, hosts: list[int], repeats: int) -> tuple[float, float, float]:
    """Return (p50, p99, max) ms of a 1,000-subject batch lookup, send to last byte received.

    The client is http.client on one kept-alive connection with the body encoded beforehand,
    so the time is the server's and the loopback's, not a Python client's parsing.
    """
    rng = random.Random(3)
    bodies = []
    for _ in range(repeats):
        subjects = [
            str(IPv4Address(hosts[rng.randrange(len(hosts))] if k % 2 else rng.randrange(1 << 32)))
            for k in range(1000)
        ]
        bodies.append(json.dumps({"subjects": subjects}).encode())
    times = []
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        # One untimed batch first: it faults the snapshot's pages in and fills the caches.
        for body in [bodies[0], *bodies]:
            started = time.perf_counter()
            conn.request("POST", "/api/v1/lookup", body, {"Content-Type": "application/json"})
            reply = conn.getresponse()
            data = reply.read()
            times.append((time.perf_counter() - started) * 1000)
            if reply.status != 200 or len(json.loads(data)["results"]) != 1000:
                raise RuntimeError(f"batch lookup failed: {reply.status} {data[:200]!r}")
    finally:
        conn.close()
    times = sorted(times[1:])  # the warm-up batch is not counted
    return (
        statistics.median(times),
        times[min(len(times) - 1, int(len(times) * 0.99))],
        times[-1],
    )


def intake(port: int, token: str, batches: int, size: int, clients: int, tag: str = "") -> float:
    """Return evidence records/s over *batches* JSON-lines posts of *size* records (*clients* at once)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
    bodies = []
    for b in range(batches):
        lines = [
            json.dumps(
                {"subject": f"10.{b % 256}.{(n >> 8) & 255}.{n & 255}", "cause": "spam",
                 "source": "bench", "weight": 0.1, "id": f"{tag}{b}-{n}"}
            )
            for n in range(size)
        ]  # fmt: skip
        bodies.append(("\n".join(lines) + "\n").encode())

    def send(chunk: list[bytes]) -> int:
        stored = 0
        with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=120) as client:
            for body in chunk:
                reply = client.post("/api/v1/evidence", content=body, headers=headers)
                reply.raise_for_status()
                stored += reply.json()["stored"]
        return stored

    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=120) as client:  # warm the parser
        client.post(
            "/api/v1/evidence", content=bodies[0][: 300 * 1024].rsplit(b"\n", 1)[0], headers=headers
        )
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        stored = sum(pool.map(send, [bodies[i::clients] for i in range(clients)]))
    seconds = time.perf_counter() - started
    if stored < batches * size - 10_000:  # the warm-up stored part of the first batch
        raise RuntimeError(f"stored {stored} of {batches * size} records")
    return batches * size / seconds


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2, help="alternating floor/API wrk runs")
    parser.add_argument("--repeats", type=int, default=200, help="batch lookups timed")
    parser.add_argument("--intake-batches", type=int, default=20)
    parser.add_argument("--intake-clients", type=int, default=2, help="concurrent senders")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("needs wrk (Debian package wrk)", file=sys.stderr)
        return 2
    print(f"loadavg before: {loadavg()}")
    with tempfile.TemporaryDirectory(prefix="reputable-http-bench-") as tmp:
        directory = Path(tmp)
        started = time.perf_counter()
        hosts = fill(directory / "reputable.db", args.entries, args.seed)
        print(
            f"store filled: {len(hosts):,} hosts + 1,000 /24s in {time.perf_counter() - started:.1f} s"
        )
        http_port, floor_port = free_port(), free_port()
        config = write_config(directory, dns_port=free_port(), http_port=http_port)
        built = cli(config, "snapshot", "build", timeout=600).stdout.strip()
        print(built)
        paths = paths_file(directory, hosts, 100_000, args.seed)
        script = directory / "paths.lua"
        script.write_text(WRK_SCRIPT)
        floor_src = directory / "floor.py"
        floor_src.write_text(FLOOR_APP)
        token = cli(config, "token", "add", "bench", "--scope", "evidence:write").stdout.strip()
        log = (directory / "serve.log").open("w")
        serve = subprocess.Popen(
            [sys.executable, "-m", "reputable", "--config", str(config), "serve", "--metrics", ""],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        floor = subprocess.Popen([sys.executable, str(floor_src), str(floor_port)])
        try:
            wait_http(http_port, "/healthz")
            wait_http(floor_port, "/api/v1/lookup/x")
            wrk(
                http_port, paths, script, argparse.Namespace(**{**vars(args), "seconds": 2})
            )  # warm-up
            floors, apis = [], []
            floor_cpu, api_cpu = [], []  # server CPU microseconds per request answered
            for _ in range(args.rounds):
                for port, pid, runs, cpus in (
                    (floor_port, floor.pid, floors, floor_cpu),
                    (http_port, serve.pid, apis, api_cpu),
                ):
                    before = server_cpu(pid)
                    runs.append(wrk(port, paths, script, args))
                    used = server_cpu(pid) - before
                    cpus.append(used / (runs[-1][0] * args.seconds) * 1e6)
            floor_rps = statistics.median(r for r, _ in floors)
            api_rps = statistics.median(r for r, _ in apis)
            api_p99 = max(p for _, p in apis)
            print(
                f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s, {args.rounds} rounds each"
            )
            for (fr, fp), (ar, ap), fc, ac in zip(floors, apis, floor_cpu, api_cpu, strict=True):
                print(
                    f"  floor {fr:8.0f} req/s p99 {fp:6.2f} ms {fc:5.0f} us CPU/req"
                    f" | lookup {ar:8.0f} req/s p99 {ap:6.2f} ms {ac:5.0f} us CPU/req"
                )
            ratio = statistics.median(floor_cpu) / statistics.median(api_cpu)
            print(
                f"CPU per request: the floor's is {ratio:.2f}x the lookup's (load-independent ratio)"
            )
            print(
                f"single lookup: {api_rps:.0f} req/s = {api_rps / floor_rps:.2f}x the floor"
                f" ({floor_rps:.0f} req/s); p99 {api_p99:.2f} ms"
            )
            before = server_cpu(serve.pid)
            p50, p99, worst = batch_latency(http_port, hosts, args.repeats)
            cpu_ms = (server_cpu(serve.pid) - before) / (args.repeats + 1) * 1000
            print(
                f"batch of 1,000 subjects: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms wall;"
                f" server CPU {cpu_ms:.1f} ms per batch ({args.repeats} batches)"
            )
            before = server_cpu(serve.pid)
            rate = intake(http_port, token, args.intake_batches, 10_000, args.intake_clients)
            cpu_us = (server_cpu(serve.pid) - before) / (args.intake_batches * 10_000) * 1e6
            print(
                f"evidence intake: {rate:,.0f} records/s ({args.intake_batches} x 10,000-record"
                f" JSON-lines posts, {args.intake_clients} clients); server CPU {cpu_us:.1f} us"
                " per record (policy evaluation and parser processes included)"
            )
        finally:
            for proc in (floor, serve):
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            log.close()
        # The same intake against the HTTP app alone: what intake costs without the policy
        # evaluation that `serve` runs on the new evidence in the same process.
        alone = subprocess.Popen([sys.executable, "-c", HTTP_ALONE, str(config)])
        try:
            wait_http(http_port, "/healthz")
            before = server_cpu(alone.pid)
            rate = intake(http_port, token, args.intake_batches, 10_000, args.intake_clients, "a")
            cpu_us = (server_cpu(alone.pid) - before) / (args.intake_batches * 10_000) * 1e6
            print(
                f"evidence intake, HTTP app alone (no policy loop): {rate:,.0f} records/s;"
                f" CPU {cpu_us:.1f} us per record (parser processes included)"
            )
        finally:
            alone.terminate()
            alone.wait(timeout=15)
    print(f"loadavg after: {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Benchmark: how long queries wait while `reputable serve` starts (issue 16).

Fills a small store (bench/dns_vs_rbldnsd.py's data), builds the snapshot (which records the
serve plan, so the start is an early one), then starts `reputable serve` ROUNDS times. Each
start gets three streams of UDP queries, one query at a time with a 1 s timeout, from before
it binds until its HTTP API is up: IPv4-zone names (the early C loop answers them), domain-zone
names and IPv6 names (both left to Python, so they wait for the worker). Prints, per start,
the seconds from spawn to the worker's adoption of the early start, to serve_ready and to
http_ready, the slowest answer and the lost queries per stream, and the CPU seconds (user +
system, /proc) of serve and its children at http_ready.

    python bench/serve_startup_queries.py --rounds 4
    PYTHONPATH=/path/to/other/src python bench/serve_startup_queries.py   # A/B another tree
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dns_vs_rbldnsd as base  # the data set and the store loader
from overlay_change import Stream  # one query at a time, 1 s timeout

from reputable.testing import free_port

IPV6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.reputable.test"
EVENTS = ("early_start_adopted", "serve_ready", "http_ready")


def one_start(cli: list[str], port: int, streams: dict[str, list[str]], work: Path) -> str:
    """Start serve once with the streams running; return its line of figures."""
    log = work / "serve.log"
    running = {kind: Stream(port, names) for kind, names in streams.items()}
    for stream in running.values():
        stream.start()
    spawned = time.monotonic()
    with log.open("wb") as out:
        serve = subprocess.Popen(
            [*cli, "serve", "--metrics", f"127.0.0.1:{free_port()}"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    seen: dict[str, float] = {}
    try:
        while len(seen) < len(EVENTS):
            text = log.read_text()
            for event in EVENTS:
                if event not in seen and event in text:
                    seen[event] = time.monotonic() - spawned
            if serve.poll() is not None:
                raise RuntimeError(f"serve exited:\n{text}")
            time.sleep(0.005)
        cpu = sum(base.cpu_seconds(base.tree(serve.pid)))
        time.sleep(0.5)
    finally:
        for stream in running.values():
            stream.stop.set()
            stream.join()
        serve.terminate()
        serve.wait(timeout=60)
    figures = " ".join(f"{event}={seen[event]:.2f}s" for event in EVENTS)
    streams_text = "; ".join(
        f"{kind}: slowest {s.slowest * 1000:.0f} ms, lost {len(s.lost_at)} of {s.sent}"
        for kind, s in running.items()
    )
    return f"{figures} cpu_at_http_ready={cpu:.2f}s | {streams_text}"


def main() -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="10k", help="single IPv4 hosts: 10k, 100k ...")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--streams",
        default="ipv4,domain,ipv6",
        help="which streams to run ('' for none:"
        " start-up time and CPU alone, with no query to answer)",
    )
    args = parser.parse_args()
    import reputable

    print(f"reputable from {Path(reputable.__file__).parent}; load {os.getloadavg()}", flush=True)
    entries, ranges = base.parse_size(args.size)
    work = Path(tempfile.mkdtemp(prefix="reputable-startup-"))
    data = base.make_data(entries, ranges, 1000, 20260101)
    port = free_port()
    config, _ = base.reputable_store(data, work, 1, port)
    cli = [sys.executable, "-m", "reputable", "--config", str(config)]
    subprocess.run([*cli, "snapshot", "build"], check=True, capture_output=True, timeout=600)
    streams = {
        "ipv4": [name.split()[0] for name in data.queries],
        "domain": [f"host{i}.example.com.dbl.reputable.test" for i in range(100)],
        "ipv6": [IPV6],
    }
    wanted = {kind for kind in args.streams.split(",") if kind}
    streams = {kind: names for kind, names in streams.items() if kind in wanted}
    try:
        for _ in range(args.rounds):
            print(one_start(cli, port, streams, work), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

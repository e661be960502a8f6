#!/usr/bin/env python3
"""Benchmark: how long queries wait while `reputable serve` starts (issue 16).

Fills a small store (bench/dns_vs_rbldnsd.py's data), builds the snapshot (which records the
serve plan, so the start is an early one), then starts `reputable serve` ROUNDS times. Each
start gets three streams of UDP queries, one query at a time with a 1 s timeout, from before
it binds until its HTTP API is up: IPv4-zone names (the early C loop answers them), domain-zone
names and IPv6 names (both left to Python, so they wait for the worker). Prints, per start,
the seconds from spawn to the first answer, the worker's adoption of the early start, serve_ready
and http_ready, the slowest answer and the lost queries per stream, and serve's CPU seconds
(user + system, /proc) at http_ready.

    python bench/serve_startup_queries.py --rounds 4
    PYTHONPATH=/path/to/other/src python bench/serve_startup_queries.py   # A/B another tree
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dns_vs_rbldnsd as base  # the data set and the store loader

from reputable.testing import free_port

TIMEOUT = 1.0
IPV6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.reputable.test"
EVENTS = ("early_start_adopted", "serve_ready", "http_ready")


class Stream(threading.Thread):
    """Queries one after another; records the slowest answer and the lost queries."""

    def __init__(self, port: int, names: list[str]) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.names = names
        self.answered = 0
        self.lost = 0
        self.slowest = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((base.HOST, self.port))
            sock.settimeout(TIMEOUT)
            sent = 0
            while not self.stop.is_set():
                sent += 1
                qid = sent & 0xFFFF
                began = time.monotonic()
                try:
                    sock.send(base._query(self.names[sent % len(self.names)], qid))
                    while struct.unpack_from(">H", sock.recv(4096))[0] != qid:
                        pass
                except ConnectionRefusedError:  # not bound yet: not a lost query
                    time.sleep(0.001)
                    continue
                except TimeoutError:
                    self.lost += 1
                    continue
                self.answered += 1
                self.slowest = max(self.slowest, time.monotonic() - began)


def cpu_seconds(pid: int) -> float:
    """Return the user + system CPU seconds of process *pid* so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
        cpu = cpu_seconds(serve.pid)
        time.sleep(0.5)
    finally:
        for stream in running.values():
            stream.stop.set()
            stream.join()
        serve.terminate()
        serve.wait(timeout=60)
    figures = " ".join(f"{event}={seen[event]:.2f}s" for event in EVENTS)
    streams_text = "; ".join(
        f"{kind}: slowest {s.slowest * 1000:.0f} ms, lost {s.lost} of {s.answered + s.lost}"
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
    for _ in range(args.rounds):
        print(one_start(cli, port, streams, work), flush=True)
    print(f"load after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Benchmark: a one-entry change on a big list, from `reputable list add` to the DNS answer.

Fills a fresh SQLite store with N single IPv4 hosts + ranges (bench/dns_vs_rbldnsd.py's data),
builds the snapshot once, starts `reputable serve`, then keeps a stream of UDP queries going
(each waits for its answer, 1 s timeout: a lost query is counted, never retried) while it
runs `reputable list add` and `reputable list remove` for fresh addresses CHANGES times,
polling serve meanwhile, and times each until serve answers the change (listed, then
NXDOMAIN): from the start of the command, and from its commit (the time on the audit row it
wrote). The publisher writes these into the overlay (publication/snapshot/overlay.py);
the full rebuild that folds the overlay in runs in the background a minute later, so a long
enough run also crosses that swap (``--seconds-after``).

    python bench/overlay_change.py --size 1M          # issue 16: visible within 2 s at 1M
    python bench/overlay_change.py --size 100k --changes 5
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
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

HOST = base.HOST
ZONE = base.ZONE


def _name(value: int) -> str:
    a, b, c, d = value.to_bytes(4, "big")
    return f"{d}.{c}.{b}.{a}.{ZONE}"


def _ask(sock: socket.socket, qid: int, name: str) -> tuple[int, int] | None:
    """Return (rcode, answer count) of one query, or None when no answer came in time."""
    sock.send(base._query(name, qid))
    while True:
        try:
            reply = sock.recv(4096)
        except TimeoutError:
            return None
        rid, flags, _, ancount = struct.unpack_from(">HHHH", reply)
        if rid == qid:
            return flags & 0xF, ancount


class Stream(threading.Thread):
    """Queries one after another until stopped; counts sent, answered and lost.

    A query refused before the server binds (ICMP port unreachable) is not counted: a stream
    may start before the server (bench/serve_startup_queries.py).
    """

    def __init__(self, port: int, names: list[str]) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.names = names
        self.sent = self.answered = 0
        self.lost_at: list[float] = []  # monotonic times of the queries that got no answer
        self.slowest = 0.0  # seconds, of the answered queries
        self.stop = threading.Event()

    def run(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((HOST, self.port))
            sock.settimeout(1.0)
            while not self.stop.is_set():
                name = self.names[(self.sent + 1) % len(self.names)]
                began = time.monotonic()
                try:
                    got = _ask(sock, (self.sent + 1) & 0xFFFF, name)
                except ConnectionRefusedError:  # nothing bound yet
                    time.sleep(0.001)
                    continue
                self.sent += 1
                if got is not None:
                    self.answered += 1
                    self.slowest = max(self.slowest, time.monotonic() - began)
                else:
                    self.lost_at.append(began)


def wait_for(port: int, name: str, listed: bool, timeout: float = 30.0) -> float:
    """Return the monotonic time at which *name* first answers listed (or NXDOMAIN)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((HOST, port))
        sock.settimeout(0.2)
        deadline = time.monotonic() + timeout
        qid = 0
        while time.monotonic() < deadline:
            qid = (qid + 1) & 0xFFFF
            got = _ask(sock, qid, name)
            if got is not None:
                rcode, count = got
                if (listed and rcode == 0 and count) or (not listed and rcode == 3):
                    return time.monotonic()
            time.sleep(0.005)
    raise RuntimeError(f"{name} did not answer {'listed' if listed else 'NXDOMAIN'} in time")


def change(
    port: int, argv: list[str], name: str, listed: bool, db: Path, subject: str
) -> tuple[float, float]:
    """Run the CLI *argv* while polling *name*; return seconds to the answer from the start
    of the command and from its commit (the time of the audit row it wrote for *subject*)."""
    began = time.time()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = wait_for(port, name, listed)
    seen_wall = time.time() - (time.monotonic() - seen)
    _, err = proc.communicate(timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[-3:]} failed: {err.decode(errors='replace')[-300:]}")
    with sqlite3.connect(db) as con:
        (at,) = con.execute("SELECT MAX(at) FROM audit WHERE subject = ?", (subject,)).fetchone()
    return seen_wall - began, seen_wall - float(at)


def main() -> int:
    """Run the benchmark and print one line per change and a summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1M", help="single IPv4 hosts: 100k, 1M, 10M ...")
    parser.add_argument("--changes", type=int, default=10, help="list add + remove rounds")
    parser.add_argument("--seconds-after", type=float, default=0.0, help="keep querying after")
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep the files")
    args = parser.parse_args()
    entries, ranges = base.parse_size(args.size)
    print(f"load before: {os.getloadavg()}  cores: {os.cpu_count()}", flush=True)
    work = args.keep or Path(tempfile.mkdtemp(prefix="reputable-overlay-"))
    work.mkdir(parents=True, exist_ok=True)
    data = base.make_data(entries, ranges, 1000, 20260101)
    port = free_port()
    config, imported = base.reputable_store(data, work, 1, port)
    started = time.perf_counter()
    cli = [sys.executable, "-m", "reputable", "--config", str(config)]
    subprocess.run([*cli, "snapshot", "build"], check=True, capture_output=True, timeout=1800)
    print(
        f"{entries:,} hosts + {ranges:,} ranges: import {imported:.1f} s,"
        f" snapshot build {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    log = (work / "serve.log").open("wb")
    serve = subprocess.Popen([*cli, "serve"], stdout=log, stderr=subprocess.STDOUT)
    try:
        base.wait_answering(port, serve, time.perf_counter(), base._probe(data))
        # data.queries are dnsperf lines ("NAME A"): the name alone, or every query would ask
        # for a name outside the zones ("...test A" as one label) and go to the Python path.
        stream = Stream(port, [line.split()[0] for line in data.queries])
        stream.start()
        t0 = time.monotonic()
        marks: list[float] = []
        cpu0 = base.cpu_seconds(base.tree(serve.pid))
        listed = set(data.hosts)
        fresh = [v for v in range(0x0A000001, 0x0A0F0000, 4099) if v not in listed]
        adds: list[float] = []  # from the command's start to the answer
        after: list[float] = []  # from the commit (its audit row's time) to the answer
        removes: list[float] = []
        db = work / "reputable.db"
        for value in fresh[: args.changes]:
            ip = ".".join(str(b) for b in value.to_bytes(4, "big"))
            marks.append(time.monotonic())
            add = [*cli, "list", "add", ip, "--cause", "spam", "--reason", "bench change"]
            whole, since_commit = change(port, add, _name(value), True, db, ip)
            adds.append(whole)
            after.append(since_commit)
            whole, since_commit = change(
                port, [*cli, "list", "remove", ip], _name(value), False, db, ip
            )
            removes.append(whole)
            after.append(since_commit)
            print(
                f"  {ip}: add visible {adds[-1]:.2f} s after the command started"
                f" ({after[-2]:.2f} s after its commit), remove {removes[-1]:.2f} s"
                f" ({after[-1]:.2f} s after)",
                flush=True,
            )
        time.sleep(args.seconds_after)
        stream.stop.set()
        stream.join()
        user, system = base.cpu_seconds(base.tree(serve.pid))
        print(
            f"add → listed: max {max(adds):.2f} s, mean {sum(adds) / len(adds):.2f} s;"
            f" remove → NXDOMAIN: max {max(removes):.2f} s, mean"
            f" {sum(removes) / len(removes):.2f} s (wall, including the CLI's own start);"
            f" from the commit: max {max(after):.2f} s, mean {sum(after) / len(after):.2f} s"
        )
        print(
            f"query stream: {stream.sent:,} sent, {stream.answered:,} answered,"
            f" {stream.sent - stream.answered} lost"
        )
        if stream.lost_at:
            print(
                "  lost at (s after the stream began):", [round(t - t0, 2) for t in stream.lost_at]
            )
            print("  changes at:", [round(t - t0, 2) for t in marks])
        print(f"serve CPU during the changes: {user - cpu0[0] + system - cpu0[1]:.2f} s")
        print(f"load after: {os.getloadavg()}")
    finally:
        serve.terminate()
        serve.wait(timeout=30)
        log.close()
        overlays = [
            line
            for line in (work / "serve.log").read_text(errors="replace").splitlines()
            if "overlay_written" in line or "snapshot_build" in line
        ]
        print(
            f"serve log ({len(overlays)} overlay/build lines), last 3:", *overlays[-3:], sep="\n  "
        )
        if args.keep is None:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

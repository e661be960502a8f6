#!/usr/bin/env python3
"""Benchmark: the same store operations on SQLite and on PostgreSQL, in one process.

For each back-end, against a fresh store (a temporary SQLite file; a fresh database on the
PostgreSQL server of ``--pg``, dropped afterwards):

1. ``add_evidence`` of N evidence records in one transaction (bulk ingest);
2. W single-listing ``apply`` calls, one transaction each (operator/API writes: latency);
3. ``listing_rows`` read of every active listing after a bulk ``apply`` of N listings
   (what the snapshot build reads);
4. R ``listings_where(subjects=...)`` point reads (explain / API-style reads).

Wall time and this process's CPU time (user+sys) are printed per step; PostgreSQL's own
server CPU is not included (it runs in other processes). Loopback only.

    python bench/store_backends.py                    # N=50,000, W=500, R=2,000
    python bench/store_backends.py --n 200000 --pg postgresql://postgres@127.0.0.1:5432/test

``--scale N`` measures the big commands on PostgreSQL instead: a fresh database gets N evidence
records (COPY; one spam-trap hit over the listing threshold per IPv4 address, so N listings
follow), then ``reputable policy run`` (a full evaluation: every evidence row read, N listings,
periods and audit rows written) and ``reputable export rbldnsd`` of the N listings run as
subprocesses; each one's CPU seconds (user+sys) and peak RSS come from ``os.wait4``:

    python bench/store_backends.py --scale 1000000
    python bench/store_backends.py --scale 1000000 --scale-sqlite     # the same on SQLite
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from ipaddress import IPv4Address
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from policy_scale import ServerCpu  # bench/ (the script's folder is on sys.path)

from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.evidence.model import Evidence
from reputable.listings.model import Batch, Listing
from reputable.store.dsn import open_dsn
from reputable.store.sqlite import SQLStore

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def timed(label: str, work: Callable[[], object]) -> None:
    """Run *work* and print its wall and CPU seconds."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    work()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    print(f"  {label:<40} wall {wall:7.3f} s   cpu {cpu:7.3f} s", flush=True)


def run(store: SQLStore, n: int, writes: int, reads: int) -> None:
    """The four steps on *store*."""
    base = int(IPv4Address("10.0.0.0"))
    evidence = [
        Evidence(subject=IPv4Address(base + i), cause=Cause.SPAM, source="bench", observed_at=NOW)
        for i in range(n)
    ]
    timed(f"add_evidence {n:,} (one transaction)", lambda: store.add_evidence(evidence))

    def single_writes() -> None:
        for i in range(writes):
            listing = Listing(subject=parse_subject(str(IPv4Address(base + i))), cause=Cause.SPAM,
                              reason="r", source="op", listed_at=NOW)  # fmt: skip
            store.apply(Batch(listings=(listing,)), actor="b", action="list")

    timed(f"apply x{writes:,} (one listing each)", single_writes)
    bulk = tuple(
        Listing(
            subject=parse_subject(str(IPv4Address(base + n + i))),
            cause=Cause.SPAM,
            reason="r",
            source="bulk",
            listed_at=NOW,
        )
        for i in range(n)
    )
    timed(f"apply {n:,} listings (one transaction)", lambda: store.apply(
        Batch(listings=bulk), actor="b", action="import"))  # fmt: skip
    timed("listing_rows (all active)", lambda: sum(1 for _ in store.listing_rows(active_at=NOW)))

    def point_reads() -> None:
        for i in range(reads):
            store.listings_where(subjects=[str(IPv4Address(base + n + i))])

    timed(f"listings_where x{reads:,} (point reads)", point_reads)


def _child(label: str, argv: list[str], server: ServerCpu | None = None) -> None:
    """Run *argv*, print its wall, CPU (user+sys) and peak RSS; fail loudly if it fails.

    With *server*, also the CPU of the PostgreSQL server's processes for the database meanwhile.
    """
    if server is not None:
        server.take()
    wall0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - wall0
    out, err = proc.communicate()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{out}\n{err}")
    cpu = usage.ru_utime + usage.ru_stime
    on_server = "" if server is None else f"   server cpu {server.take():7.2f} s"
    print(f"  {label:<40} wall {wall:7.2f} s   cpu {cpu:7.2f} s{on_server}   peak RSS"
          f" {usage.ru_maxrss / 1024:7.1f} MB", flush=True)  # fmt: skip


def scale(dsn: str, n: int) -> None:
    """The big commands on *dsn* (an empty PostgreSQL database or SQLite file), *n* listings."""
    store = open_dsn(dsn)  # the tables
    base = int(IPv4Address("10.0.0.0"))
    at = time.time() - 3600
    ips = ((i, str(IPv4Address(base + i))) for i in range(n))
    rows = ((f"b{i}", ip, ip, "spam", "traps", at, 3.0, "{}") for i, ip in ips)
    columns = "key, subject, target, cause, source, observed_at, weight, detail"
    if not dsn.startswith("postgresql://"):
        with store._db:  # type: ignore[attr-defined]  # the sqlite3 connection
            store._db.executemany(
                f"INSERT INTO evidence ({columns}) VALUES (?,?,?,?,?,?,?,?)", rows
            )
    store.close()
    if dsn.startswith("postgresql://"):
        with (
            psycopg.connect(dsn) as conn,
            conn.cursor() as cur,
            cur.copy(f"COPY evidence ({columns}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
    server = ServerCpu(dsn) if dsn.startswith("postgresql://") else None
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "reputable.toml"
        config.write_text(f'data_dir = "."\n[store]\ndsn = "{dsn}"\n', encoding="utf-8")
        command = [sys.executable, "-m", "reputable", "--config", str(config)]
        _child(f"policy run ({n:,} evidence)", [*command, "policy", "run"], server)
        counted = open_dsn(dsn)
        (listed,) = counted._db.execute("SELECT count(*) FROM listings").fetchone()
        counted.close()
        print(f"  ({listed:,} listings)")
        out = str(Path(folder) / "zone")
        _child(f"export rbldnsd ({listed:,} listings)",
               [*command, "export", "rbldnsd", "-z", "bl.reputable.test", "-o", out],
               server)  # fmt: skip
    if server is not None:
        server.close()


def main() -> None:
    """Parse the options and run both back-ends."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--writes", type=int, default=500)
    parser.add_argument("--reads", type=int, default=2_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--prefix", default="rep_bench_", help="name prefix of the database")
    parser.add_argument("--scale", type=int, default=0, help="N: policy run + export at N (PG)")
    parser.add_argument("--scale-sqlite", action="store_true", help="--scale on SQLite instead")
    args = parser.parse_args()
    if args.scale and args.scale_sqlite:
        print(f"load {os.getloadavg()[0]:.2f}; SQLite, {args.scale:,} listings")
        with tempfile.TemporaryDirectory() as folder:
            scale(f"sqlite:///{Path(folder) / 'b.db'}", args.scale)
        print(f"load {os.getloadavg()[0]:.2f}")
        return
    if args.scale:
        name = f"{args.prefix}{secrets.token_hex(4)}"
        print(f"load {os.getloadavg()[0]:.2f}; PostgreSQL, {args.scale:,} listings")
        with psycopg.connect(args.pg, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
            try:
                scale(urlunsplit(urlsplit(args.pg)._replace(path="/" + name)), args.scale)
            finally:
                admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        print(f"load {os.getloadavg()[0]:.2f}")
        return
    print(f"load {os.getloadavg()[0]:.2f}; N={args.n:,} W={args.writes:,} R={args.reads:,}")
    with tempfile.TemporaryDirectory() as folder:
        print("sqlite")
        store = open_dsn(f"sqlite:///{Path(folder) / 'b.db'}")
        try:
            run(store, args.n, args.writes, args.reads)
        finally:
            store.close()
    name = f"{args.prefix}{secrets.token_hex(4)}"
    with psycopg.connect(args.pg, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            print("postgresql")
            store = open_dsn(urlunsplit(urlsplit(args.pg)._replace(path="/" + name)))
            try:
                run(store, args.n, args.writes, args.reads)
            finally:
                store.close()
        finally:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

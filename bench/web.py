#!/usr/bin/env python3
"""Benchmark: the web pages of `reputable serve` with 1M listings.

One run fills a fresh SQLite store with ENTRIES random IPv4 listings (bench/http_api.py's
``fill``), builds the snapshot, starts `reputable serve`, posts evidence about some listed
hosts through the API (so their pages show what was seen), logs in to the dashboard, and
times, one request at a time over loopback (wall time of the whole HTTP exchange):

- ``GET /lookup/IP`` for listed addresses with evidence (zones, explain, advice, form): p50/p95;
- ``GET /admin`` (the overview): the first view (which folds in all evidence so far), then
  repeated views with fresh evidence posted between them (the incremental path): p50/p95.

Prints `cat /proc/loadavg` before and after.

    python bench/web.py                          # 1,000,000 listings
    python bench/web.py --entries 100000         # quick
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from ipaddress import IPv4Address
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_api import fill, loadavg, wait_http  # the sibling bench's store filler

from reputable.testing import cli, free_port, write_config  # after the path insert


def percentile(values: list[float], q: float) -> float:
    """Return the *q* quantile (nearest rank) of *values*."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def post_evidence(
    client: httpx.Client, token: str, subjects: list[str], per: int, tag: str
) -> None:
    """Post *per* spam-trap hits about each of *subjects*."""
    lines = [
        json.dumps(
            {"subject": s, "cause": "spam", "source": f"traps-{k % 3}", "weight": 1.0,
             "id": f"{tag}-{s}-{k}", "detail": {"trap": f"t{k}@example.net"}}
        )
        for s in subjects
        for k in range(per)
    ]  # fmt: skip
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
    for start in range(0, len(lines), 10_000):
        body = "\n".join(lines[start : start + 10_000]) + "\n"
        client.post("/api/v1/evidence", content=body, headers=headers).raise_for_status()


def settle(client: httpx.Client, quiet: float = 3.0, limit: float = 300.0) -> float:
    """Wait until the store serial and the snapshot serial stop moving for *quiet* seconds."""
    started = last_change = time.monotonic()
    seen = None
    while time.monotonic() - started < limit:
        health = client.get("/healthz").json()
        now = (health.get("store_serial"), health.get("snapshot_serial"))
        if now != seen:
            seen, last_change = now, time.monotonic()
        elif time.monotonic() - last_change >= quiet:
            return time.monotonic() - started
        time.sleep(0.2)
    raise RuntimeError(f"store/snapshot still moving after {limit} s: {seen}")


def timed(client: httpx.Client, path: str) -> float:
    """Return the milliseconds one GET of *path* takes (it must answer 200)."""
    started = time.perf_counter()
    reply = client.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    if reply.status_code != 200:
        raise RuntimeError(f"GET {path}: {reply.status_code} {reply.text[:300]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=400, help="lookup pages timed")
    parser.add_argument("--overviews", type=int, default=30, help="overview views timed")
    parser.add_argument(
        "--with-evidence", type=int, default=2000, help="listed hosts given evidence"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"loadavg before: {loadavg()}")
    with tempfile.TemporaryDirectory(prefix="reputable-web-bench-") as tmp:
        directory = Path(tmp)
        started = time.perf_counter()
        hosts = fill(directory / "reputable.db", args.entries, args.seed)
        print(
            f"store filled: {len(hosts):,} hosts + 1,000 /24s in {time.perf_counter() - started:.1f} s"
        )
        http_port = free_port()
        config = write_config(directory, dns_port=free_port(), http_port=http_port)
        print(cli(config, "snapshot", "build", timeout=900).stdout.strip())
        ingest = cli(config, "token", "add", "ingest", "--scope", "evidence:write").stdout.strip()
        admin = cli(config, "token", "add", "ops", "--scope", "admin").stdout.strip()
        log = (directory / "serve.log").open("w")
        serve = subprocess.Popen(
            [sys.executable, "-m", "reputable", "--config", str(config), "serve", "--metrics", ""],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_http(http_port, "/healthz", 300)
            rng = random.Random(args.seed)
            chosen = [
                str(IPv4Address(hosts[rng.randrange(len(hosts))]))
                for _ in range(args.with_evidence)
            ]
            with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=60) as client:
                post_evidence(client, ingest, chosen, 5, "seed")
                settled = settle(client)
                print(f"policy and snapshot settled after the seed evidence in {settled:.1f} s")
                for subject in chosen[:20]:  # warm-up
                    timed(client, f"/lookup/{subject}")
                lookups = [
                    timed(client, f"/lookup/{rng.choice(chosen)}") for _ in range(args.lookups)
                ]
                print(
                    f"lookup page (listed IP with evidence, {args.lookups} requests):"
                    f" p50 {statistics.median(lookups):.1f} ms, p95 {percentile(lookups, 0.95):.1f} ms,"
                    f" max {max(lookups):.1f} ms"
                )
                form = client.get("/admin/login").text
                csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
                reply = client.post("/admin/login", data={"csrf": csrf, "token": admin})
                if reply.status_code != 303:
                    raise RuntimeError(f"login failed: {reply.status_code}")
                first = timed(client, "/admin")
                views = []
                for n in range(args.overviews):
                    post_evidence(client, ingest, chosen[n * 10 : n * 10 + 10], 10, f"more{n}")
                    views.append(timed(client, "/admin"))
                print(
                    f"overview: first view {first:.1f} ms (folds in all evidence so far);"
                    f" then {args.overviews} views with 100 new records before each:"
                    f" p50 {statistics.median(views):.1f} ms, p95 {percentile(views, 0.95):.1f} ms"
                )
        finally:
            serve.terminate()
            try:
                serve.wait(timeout=15)
            except subprocess.TimeoutExpired:
                serve.kill()
            log.close()
    print(f"loadavg after: {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Two `reputable serve` nodes on one store: change-to-DNS latency and policy takeover time.

    python bench/several_nodes.py --dsn postgresql://postgres@127.0.0.1:5432/rep_pgnodes_bench
    python bench/several_nodes.py --dsn sqlite:///tmp/shared.db

Starts two serve nodes on the store DSN (each its own data_dir, snapshot, DNS and metrics
ports from --port-base on), then times:

1. change -> DNS on the *other* node: a listing written in this process (the commit is the
   clock start) until the follower node answers it, ROUNDS times (NOTIFY on PostgreSQL,
   1 s serial polling on SQLite);
2. takeover: SIGKILL of the policy leader until the other node reports
   ``reputable_policy_leader 1`` on /metrics;
3. the issue's scenario: evidence posted (CLI) right after the kill until the survivor
   answers the listing the policy made of it.

Prints the load average before and after and the CPU time of both nodes (the machine may be
shared).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.several_nodes import a_codes, children, node_config, post_spam, sigkill

from reputable.app import open_store  # after the path set-up above
from reputable.config import load_config
from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.listings.model import Batch, Listing
from reputable.testing import RunningServer

ROUNDS = 10


def leader_gauge(metrics_port: int) -> int:
    """Return the node's reputable_policy_leader gauge (0 when it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("reputable_policy_leader "):
            return int(line.split()[1])
    return 0


def build_seconds(metrics_port: int) -> float:
    """Return the node's last snapshot build time (reputable_snapshot_build_seconds)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("reputable_snapshot_build_seconds "):
                return float(line.split()[1])
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """Return user+sys CPU seconds of *pid*, its ended children and its live ones."""
    total = 0.0
    for p in [pid, *children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime, stime, cutime, cstime (clock ticks): the waited-for children count too
        total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


def notify_latencies(dsn: str, rounds: int = 20) -> list[float]:
    """PostgreSQL: seconds from a serial bump's COMMIT until a listening feed wakes."""
    import psycopg

    from reputable.store.coordination import PostgresFeed

    async def run() -> list[float]:
        feed = PostgresFeed(dsn)
        out = []
        try:
            await feed.wait(0.01)  # connect, install the triggers, LISTEN
            with psycopg.connect(dsn, autocommit=True) as conn:
                for _ in range(rounds):
                    waiter = asyncio.create_task(feed.wait(10))
                    await asyncio.sleep(0.05)
                    conn.execute(
                        "UPDATE meta SET value = (CAST(value AS BIGINT) + 1)::text"
                        " WHERE key = 'serial'"
                    )
                    committed = time.monotonic()
                    assert await waiter
                    out.append(time.monotonic() - committed)
        finally:
            await feed.close()
        return out

    return asyncio.run(run())


HOLDER = """
import sys, time
from reputable.store.coordination import leader_lock
lock = leader_lock(sys.argv[1])
while not lock.try_acquire():
    time.sleep(0.01)
print("held", flush=True)
time.sleep(600)
"""


def lock_takeovers(dsn: str, rounds: int = 5) -> list[float]:
    """Seconds from SIGKILL of a lock holder (another process) until our try_acquire wins."""
    from reputable.store.coordination import leader_lock

    out = []
    for _ in range(rounds):
        lock = leader_lock(dsn)
        with subprocess.Popen(
            [sys.executable, "-c", HOLDER, dsn], stdout=subprocess.PIPE, text=True
        ) as holder:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            assert not lock.try_acquire()
            holder.send_signal(signal.SIGKILL)
            holder.wait()
            killed = time.monotonic()
            while not lock.try_acquire():
                time.sleep(0.001)
            out.append(time.monotonic() - killed)
        lock.release()
    return out


def until(predicate: object, timeout: float = 30.0) -> float:
    """Poll every 5 ms; return seconds until *predicate* held."""
    assert callable(predicate)
    began = time.monotonic()
    while not predicate():
        if time.monotonic() - began > timeout:
            raise SystemExit(f"not within {timeout} s")
        time.sleep(0.005)
    return time.monotonic() - began


def main() -> int:
    """Run the benchmark and print one line per figure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--port-base", type=int, default=21150)
    args = parser.parse_args()
    print("loadavg before:", Path("/proc/loadavg").read_text().strip())
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        nodes = [node_config(base / name, args.dsn) for name in ("a", "b")]
        for i, (config, _) in enumerate(nodes):  # fixed ports from our range
            port = args.port_base + 10 * i
            config.write_text(config.read_text().replace(f":{nodes[i][1]}", f":{port}"))
            nodes[i] = (config, port)
        store = open_store(load_config(nodes[0][0]))
        takeovers = lock_takeovers(args.dsn)
        print(
            f"leader lock: SIGKILL of its holder -> taken by another process ({len(takeovers)}"
            f" rounds): median {statistics.median(takeovers) * 1000:.1f} ms,"
            f" max {max(takeovers) * 1000:.1f} ms"
        )
        if args.dsn.startswith("postgresql://"):
            waits = notify_latencies(args.dsn)
            print(
                f"serial bump COMMIT -> listening feed woken ({len(waits)} rounds): median"
                f" {statistics.median(waits) * 1000:.1f} ms, max {max(waits) * 1000:.1f} ms"
            )
        servers = [RunningServer(config, metrics_port=port + 1) for config, port in nodes]
        for server in servers:
            server.__enter__()
        try:
            until(lambda: sum(leader_gauge(s.metrics_port) for s in servers) == 1)
            leader = 0 if leader_gauge(servers[0].metrics_port) else 1
            follower = 1 - leader
            port = nodes[follower][1]
            cpu0 = [cpu_seconds(s.proc.pid) for s in servers if s.proc]
            latencies = []
            builds = []
            for i in range(ROUNDS):
                name = f"{i + 1}.2.0.192.bl.reputable.test"
                store.apply(
                    Batch(
                        listings=[
                            Listing(
                                subject=parse_subject(f"192.0.2.{i + 1}"),
                                cause=Cause.MANUAL,
                                reason="bench",
                                source="bench",
                                listed_at=datetime.now(UTC),
                            )
                        ]
                    ),
                    actor="bench",
                    action="list",
                )
                latencies.append(until(lambda n=name: a_codes(port, n) == {"127.0.0.10"}))
                builds.append(build_seconds(servers[follower].metrics_port))
                time.sleep(0.3)
            cpu1 = [cpu_seconds(s.proc.pid) for s in servers if s.proc]
            print(
                "of which the follower's snapshot build (child process, wall): median"
                f" {statistics.median(builds):.3f} s"
            )
            print(
                f"change -> DNS on the other node ({ROUNDS} rounds): median"
                f" {statistics.median(latencies):.3f} s, max {max(latencies):.3f} s"
            )
            print(
                "CPU of the nodes during those rounds (user+sys, with children):",
                ", ".join(f"{b - a:.2f} s" for a, b in zip(cpu0, cpu1, strict=True)),
            )
            sigkill(servers[leader])
            killed = time.monotonic()
            poster = threading.Thread(target=post_spam, args=(nodes[follower][0],))
            poster.start()  # while we watch the takeover
            took = until(lambda: leader_gauge(servers[follower].metrics_port) == 1)
            poster.join()
            print(f"takeover after SIGKILL of the leader: {took:.3f} s")
            listed = until(lambda: a_codes(port, "7.100.51.198.bl.reputable.test") != set())
            print(
                f"evidence posted after the kill -> listed in DNS by the survivor:"
                f" {time.monotonic() - killed:.3f} s after the kill ({listed:.3f} s after the"
                " posts)"
            )
        finally:
            for server in servers:
                server.__exit__(None, None, None)
            store.close()
    print("loadavg after:", Path("/proc/loadavg").read_text().strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

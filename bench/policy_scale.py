#!/usr/bin/env python3
"""Benchmark: evidence import, full policy evaluation and incremental re-evaluation at scale.

One run generates a deterministic data set (default 1,000,000 evidence records over 200,000
IPv4 and 20,000 IPv6 subjects, plus a shared-hosting map), writes it as JSON lines to a
temporary folder, and then, against a fresh SQLite store there:

1. ``reputable hosting import`` the hosting map (subprocess; not part of the import rate);
2. ``reputable evidence import FILE`` (subprocess, end to end through the CLI: interpreter
   start, JSON parsing, idempotency keys, SQLite inserts) -> records/s;
3. ``reputable policy run`` (subprocess: a full evaluation of every target) -> wall time,
   the engine's own time as the command prints it, and the peak RSS of that process;
4. 10,000 new records through ``reputable evidence import`` (subprocess), then the
   incremental evaluation ``evaluate_new`` called in-process on an open store, the way the
   ``serve`` loop calls it -> seconds; then, as a check, a dry full evaluation at the same
   time, which should find nothing left to change.

Peak memory comes from ``os.wait4`` (the child's own ``ru_maxrss``). Nothing touches the
network. The data set is a realistic mix: most subjects have 1-5 records that stay below the
listing threshold; some spammers and infected hosts are over it; a few hundred dense /24s
and some IPv6 /48s escalate; clean senders (some inside the dirty /24s, which must be carved
out); IPv6 hosts spread over /64s; domains on shared-hosting IPs.

    python bench/policy_scale.py                         # the full run (a few minutes)
    python bench/policy_scale.py --records 100000 --v4 20000 --v6 2000 --new 1000   # quick
    python bench/policy_scale.py --keep DIR              # keep the data and database in DIR
    python bench/policy_scale.py --pg postgresql://postgres@127.0.0.1:5432/postgres
        # the same on PostgreSQL: a fresh database on that server, dropped afterwards
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=10)  # when the 10,000 new records arrive
DAY = 86400.0

TARGET_IMPORT = 100_000.0  # records/s
TARGET_FULL = 10.0  # seconds
TARGET_INCREMENTAL = 0.5  # seconds

_SOURCES = {
    "spam": ("traps", "fbl", "maillog:/var/log/mail.log"),
    "harvest": ("maillog:/var/log/mail.log",),
    "compromised": ("sshd:/var/log/auth.log", "sinkhole", "fw:/var/log/nft.log"),
    "rdns": ("rdns-probe",),
    "open_relay": ("relay-probe",),
    "malware_host": ("urlfeed",),
    "clean": ("maillog:/var/log/mail.log", "fbl-verified"),
}


@dataclass
class World:
    """The generated subjects, so the new records can touch the same ones."""

    v4_background: list[str]
    v4_spammers: list[str]
    v4_clean: list[str]
    v4_dense_nets: list[str]  # "10.a.b" prefixes of dense /24s
    v6_hosts: list[str]
    hosting_ips: list[str]
    domains: list[str]


class Writer:
    """Writes JSON lines and counts them."""

    def __init__(self, path: Path, rng: random.Random) -> None:
        self.out = path.open("w", encoding="utf-8")
        self.rng = rng
        self.count = 0
        self.serial = 0

    def record(
        self,
        subject: str,
        cause: str,
        at: datetime,
        *,
        weight: float | None = None,
        domain: str | None = None,
    ) -> None:
        """Write one evidence line; about 40 % carry a producer id (idempotency key)."""
        rng = self.rng
        self.serial += 1
        source = rng.choice(_SOURCES[cause])
        fields: dict[str, Any] = {
            "subject": subject,
            "cause": cause,
            "source": source,
            "at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if weight is not None:
            fields["weight"] = weight
        if domain is not None:
            fields["domain"] = domain
        if cause == "spam":
            fields["detail"] = {"trap": f"t{rng.randrange(500)}@example.net"}
        elif cause == "compromised":
            fields["detail"] = {
                "port": rng.choice((22, 23, 445, 3389)),
                "count": rng.randrange(1, 900),
            }
        elif cause == "malware_host":
            fields["detail"] = {"url": f"http://{domain or subject}/p/{self.serial}"}
        elif cause == "clean":
            fields["detail"] = {"accepted": rng.randrange(1, 5000)}
        if rng.random() < 0.4:
            fields["id"] = f"{source}-{self.serial}"
        self.out.write(json.dumps(fields, separators=(",", ":")) + "\n")
        self.count += 1

    def close(self) -> None:
        """Flush and close the file."""
        self.out.close()


def _ago(rng: random.Random, lo_days: float, hi_days: float, now: datetime = NOW) -> datetime:
    return now - timedelta(seconds=round(rng.uniform(lo_days, hi_days) * DAY))


def generate(folder: Path, records: int, n_v4: int, n_v6: int, seed: int) -> tuple[World, int]:
    """Write evidence.jsonl and hosting.csv into *folder*; return the world and the line count."""
    rng = random.Random(seed)
    scale = n_v4 / 200_000
    # IPv4: subjects spread over distinct /24s of 10.0.0.0/8 (~8 per /24 on average).
    nets = rng.sample(range(1 << 16), min(1 << 16, max(64, n_v4 // 8)))
    prefixes = [f"10.{n >> 8}.{n & 255}" for n in nets]
    n_dense = max(4, round(300 * scale))
    dense, sparse = prefixes[:n_dense], prefixes[n_dense:]
    used: set[str] = set()

    def fresh(prefix: str) -> str:
        while True:
            ip = f"{prefix}.{rng.randrange(1, 255)}"
            if ip not in used:
                used.add(ip)
                return ip

    w = Writer(folder / "evidence.jsonl", rng)
    spammers: list[str] = []
    clean: list[str] = []
    dense_nets: list[str] = []
    # Dense /24s: 80 % escalate (10-25 listed hosts), 20 % stay just under K (5-7 hosts);
    # each holds 1-3 clean mail servers that must be carved out.
    for i, prefix in enumerate(dense):
        dense_nets.append(prefix)
        bad = rng.randrange(10, 26) if i % 5 else rng.randrange(5, 8)
        for _ in range(bad):
            ip = fresh(prefix)
            cause = rng.choice(("spam", "compromised"))
            for _ in range(rng.randrange(4, 9)):
                w.record(ip, cause, _ago(rng, 0, 1))
            spammers.append(ip)
        for _ in range(rng.randrange(1, 4)):
            ip = fresh(prefix)
            for _ in range(rng.randrange(8, 20)):
                w.record(ip, "clean", _ago(rng, 0, 7))
            clean.append(ip)
    # Scattered spammers and infected hosts over the threshold; a few open relays.
    for _ in range(round(8000 * scale)):
        ip = fresh(rng.choice(sparse))
        cause = rng.choice(("spam", "spam", "compromised", "harvest"))
        for _ in range(rng.randrange(4, 13)):
            w.record(ip, cause, _ago(rng, 0, 1.5))
        if rng.random() < 0.05:
            w.record(ip, "open_relay", _ago(rng, 0, 2))
        spammers.append(ip)
    # Clean senders: positive evidence only.
    for _ in range(round(20000 * scale)):
        ip = fresh(rng.choice(sparse))
        for _ in range(rng.randrange(1, 11)):
            w.record(ip, "clean", _ago(rng, 0, 14))
        clean.append(ip)
    # Shared hosting: IPs with 3-10 domains each; some domains have malware/phishing evidence.
    hosting_ips: list[str] = []
    domains: list[str] = []
    with (folder / "hosting.csv").open("w", encoding="utf-8") as csv:
        for h in range(round(2000 * scale)):
            ip = fresh(rng.choice(sparse))
            hosting_ips.append(ip)
            mine = [f"site{h}-{k}.example" for k in range(rng.randrange(3, 11))]
            for d in mine:
                csv.write(f"{ip},{d}\n")
            domains.extend(mine)
            bad_domains = rng.sample(mine, rng.choice((0, 0, 1, 1, 2, 3)))
            for d in bad_domains:
                for _ in range(rng.randrange(1, 6)):
                    w.record(ip, "malware_host", _ago(rng, 0, 2), domain=d)
            if not bad_domains:
                w.record(ip, "clean", _ago(rng, 0, 7))
    # IPv6: hosts over /64s in /48s of 2001:db8::/32; some /48s are dense with infected /64s.
    v6_hosts: list[str] = []
    n_48 = max(8, round(n_v6 / 40))
    for k in range(n_48):
        net48 = f"2001:db8:{k:x}"
        hosts = n_v6 // n_48
        infected = rng.randrange(9, 16) if k % 20 == 0 else 0
        subnets = rng.sample(range(1 << 16), hosts)
        for j, sub in enumerate(subnets):
            ip = f"{net48}:{sub:x}::{rng.randrange(1, 1 << 16):x}"
            v6_hosts.append(ip)
            if j < infected:
                for _ in range(rng.randrange(4, 8)):
                    w.record(ip, "compromised", _ago(rng, 0, 1))
            else:
                for _ in range(rng.randrange(1, 6)):
                    w.record(ip, rng.choice(("spam", "compromised", "clean")), _ago(rng, 3, 30))
    # Background: the rest of the IPv4 subjects, 1-5 old records each, below the threshold;
    # the remaining record budget is spread over them.
    background: list[str] = []
    while len(used) < n_v4:
        background.append(fresh(rng.choice(sparse)))
    budget = records - w.count
    counts = [1] * len(background)
    for _ in range(max(0, budget - len(background))):
        counts[rng.randrange(len(background))] += 1
    for ip, n in zip(background, counts, strict=True):
        for _ in range(n):
            cause = rng.choice(("spam", "spam", "compromised", "harvest", "rdns"))
            weight = 0.2 if cause == "rdns" else None
            w.record(ip, cause, _ago(rng, 4, 30), weight=weight)
    w.close()
    world = World(background, spammers, clean, dense_nets, v6_hosts, hosting_ips, domains)
    return world, w.count


def generate_new(folder: Path, world: World, n: int, seed: int) -> int:
    """Write new.jsonl: *n* records arriving at LATER, on old and new subjects."""
    rng = random.Random(seed + 1)
    w = Writer(folder / "new.jsonl", rng)
    w.serial = 10_000_000
    at = LATER
    while w.count < n:
        roll = rng.random()
        if roll < 0.3:
            ip, cause = rng.choice(world.v4_spammers), rng.choice(("spam", "compromised"))
            w.record(ip, cause, _ago(rng, 0, 0.005, at))
        elif roll < 0.55:
            w.record(rng.choice(world.v4_background), "spam", _ago(rng, 0, 0.005, at))
        elif roll < 0.65:
            prefix = rng.choice(world.v4_dense_nets)
            ip = f"{prefix}.{rng.randrange(1, 255)}"
            for _ in range(min(3, n - w.count)):
                w.record(ip, "compromised", _ago(rng, 0, 0.005, at))
        elif roll < 0.8:
            w.record(rng.choice(world.v4_clean), "clean", _ago(rng, 0, 0.005, at))
        elif roll < 0.9:
            ip = rng.choice(world.v6_hosts)
            w.record(ip, "compromised", _ago(rng, 0, 0.005, at))
        else:
            k = rng.randrange(len(world.hosting_ips))
            ip = world.hosting_ips[k]
            w.record(ip, "malware_host", _ago(rng, 0, 0.005, at), domain=f"site{k}-0.example")
    w.close()
    return w.count


class StepTimeout(Exception):
    """A step ran longer than --timeout and was stopped."""


def run_cli(config: Path, *args: str, timeout: float = 0) -> tuple[float, int, str, float]:
    """Run ``python -m reputable --config CONFIG ARGS``.

    Return (seconds, peak RSS KiB, output, CPU seconds): the CPU time (user + system) is the
    child's own and its parser processes', so it says what the step cost on a shared machine.
    """
    cmd = [sys.executable, "-m", "reputable", "--config", str(config), *args]
    log = config.parent / "step.log"
    started = time.perf_counter()
    with log.open("w+", encoding="utf-8") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, text=True)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if timeout and time.perf_counter() - started > timeout:
                proc.kill()
                os.wait4(proc.pid, 0)
                raise StepTimeout(f"{' '.join(args[:2])}: stopped after {timeout:.0f} s")
            time.sleep(0.01)
        seconds = time.perf_counter() - started
        sink.seek(0)
        out = sink.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out}")
    cpu = usage.ru_utime + usage.ru_stime
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # includes the parsers it waited for
    cpu = max(cpu, kids.ru_utime + kids.ru_stime - _CHILD_CPU[0])
    _CHILD_CPU[0] = kids.ru_utime + kids.ru_stime
    return seconds, usage.ru_maxrss, out.strip(), cpu


#: The PostgreSQL server's CPU seconds during the last :func:`incremental`.
INCREMENTAL_SERVER_CPU = [0.0]
#: RUSAGE_CHILDREN (user + system) seen after the previous step.
_CHILD_CPU = [0.0]


def incremental(
    config_path: Path, server: ServerCpu | None = None
) -> tuple[float, int, int, float, int, float]:
    """Run evaluate_new in-process; return (s, targets, decisions, check s, check changes, CPU s).

    With *server*, its CPU during evaluate_new is left in ``INCREMENTAL_SERVER_CPU[0]``.
    """
    from reputable.app import open_store
    from reputable.config import load_config
    from reputable.listings.engine import evaluate, evaluate_new

    config = load_config(config_path)
    store = open_store(config)
    try:
        at = LATER + timedelta(minutes=1)
        if server is not None:
            server.take()
        started, cpu_started = time.perf_counter(), time.process_time()
        outcome = evaluate_new(store, config.policy, config.reputation, at)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        if server is not None:
            INCREMENTAL_SERVER_CPU[0] = server.take()
        started = time.perf_counter()
        check = evaluate(store, config.policy, config.reputation, at, apply=False)
        check_s = time.perf_counter() - started
        left = check.changes.count()
    finally:
        store.close()
    return seconds, outcome.targets, len(outcome.decisions), check_s, left, cpu


def _load() -> str:
    with open("/proc/loadavg", encoding="ascii") as f:
        return " ".join(f.read().split()[:3])


def verdict(ok: bool) -> str:
    """Return a mark for a target met or missed."""
    return "meets target" if ok else "MISSES target"


class ServerCpu:
    """CPU seconds (user+sys) of the PostgreSQL server processes serving one database.

    A thread lists the database's backends (and parallel workers) in ``pg_stat_activity``
    every 0.1 s and reads each one's ``/proc/PID/stat``; :meth:`take` returns the CPU added
    since the last call. The server must run on this machine (loopback); a parallel worker's
    last 0.1 s may be missed.
    """

    def __init__(self, dsn: str) -> None:
        import psycopg

        self._conn = psycopg.connect(dsn, autocommit=True)
        self._name = self._conn.info.dbname
        self._seen: dict[tuple[int, int], float] = {}  # (pid, start time) -> CPU s
        self._taken = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        me = self._conn.info.backend_pid
        pids = [
            pid
            for (pid,) in self._conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self._name,)
            )
            if pid != me
        ]
        tick = os.sysconf("SC_CLK_TCK")
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            key = (pid, int(fields[19]))
            self._seen[key] = (int(fields[11]) + int(fields[12])) / tick

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self._sample()

    def take(self) -> float:
        """Return the server CPU seconds since the previous call (or since the start)."""
        self._sample()
        total = sum(self._seen.values())
        added, self._taken = total - self._taken, total
        return added

    def close(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join()
        self._conn.close()


@contextmanager
def _database(server: str | None) -> Iterator[str]:
    """Yield the store DSN: SQLite in the folder, or a fresh database on *server* (dropped after)."""
    if server is None:
        yield "sqlite:///bench.db"
        return
    import psycopg

    name = f"rep_policy_scale_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield urlunsplit(urlsplit(server)._replace(path="/" + name))
        finally:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def main() -> None:
    """Generate, import, evaluate, re-evaluate; print the figures beside the targets."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--v4", type=int, default=200_000, help="IPv4 subjects")
    ap.add_argument("--v6", type=int, default=20_000, help="IPv6 subjects")
    ap.add_argument("--new", type=int, default=10_000, help="records for the incremental run")
    ap.add_argument("--seed", type=int, default=20261129)
    ap.add_argument("--keep", type=Path, help="folder to keep the data set and database in")
    ap.add_argument("--timeout", type=float, default=0, help="stop a CLI step after this many s")
    ap.add_argument(
        "--pg", metavar="DSN", help="run on a fresh database of this PostgreSQL server instead"
    )
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="policy_scale-") as tmp, _database(args.pg) as dsn:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "reputable.toml"
        config.write_text(f'data_dir = "."\n[store]\ndsn = "{dsn}"\n', encoding="utf-8")
        for leftover in folder.glob("bench.db*"):
            leftover.unlink()
        print(f"load average before: {_load()}", flush=True)
        started = time.perf_counter()
        world, lines = generate(folder, args.records, args.v4, args.v6, args.seed)
        new_lines = generate_new(folder, world, args.new, args.seed)
        print(
            f"generated {lines:,} records ({len(world.v4_background) + len(world.v4_spammers) + len(world.v4_clean) + len(world.hosting_ips):,}"
            f" IPv4 + {len(world.v6_hosts):,} IPv6 subjects, {len(world.domains):,} hosted domains)"
            f" and {new_lines:,} new ones in {time.perf_counter() - started:.1f} s; folder {folder}",
            flush=True,
        )

        s, _, out, _ = run_cli(config, "hosting", "import", str(folder / "hosting.csv"))
        print(f"hosting import: {s:.1f} s ({out})", flush=True)

        server = ServerCpu(dsn) if args.pg else None

        def on_server() -> str:
            """The server's CPU since the last call, for PostgreSQL runs."""
            return "" if server is None else f", server CPU {server.take():.2f} s"

        now = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
        on_server()
        s_import, rss_import, out, cpu_import = run_cli(
            config, "evidence", "import", str(folder / "evidence.jsonl"), "--now", now
        )
        rate = lines / s_import
        print(
            f"evidence import: {s_import:.2f} s wall, {cpu_import:.2f} s CPU (with its parsers)"
            f"{on_server()}, peak RSS {rss_import / 1024:.0f} MiB ({out})",
            flush=True,
        )

        try:
            s_full, rss_full, out, cpu_full = run_cli(
                config, "policy", "run", "--now", now, timeout=args.timeout
            )
        except StepTimeout as exc:
            raise SystemExit(f"policy run: {exc}") from None
        engine = re.search(r"in ([0-9.]+) s", out)
        engine_s = float(engine.group(1)) if engine else float("nan")
        print(
            f"policy run: {s_full:.2f} s wall, {cpu_full:.2f} s CPU{on_server()}, peak RSS {rss_full / 1024:.0f} MiB ({out})",
            flush=True,
        )

        later = LATER.strftime("%Y-%m-%dT%H:%M:%SZ")
        s_new, _, out, _ = run_cli(
            config, "evidence", "import", str(folder / "new.jsonl"), "--now", later
        )
        print(f"new evidence import: {s_new:.2f} s ({out}{on_server()})", flush=True)
        s_inc, targets, decisions, check_s, left, cpu_inc = incremental(config, server)
        server_inc = INCREMENTAL_SERVER_CPU[0]
        if server is not None:
            server.close()
        print(
            f"incremental evaluate_new (in-process): {s_inc:.3f} s wall, {cpu_inc:.3f} s CPU"
            f"{'' if server is None else f', server CPU {server_inc:.3f} s'}"
            f" for {targets:,} touched targets,"
            f" {decisions:,} listed; check: a dry full evaluation {check_s:.2f} s finds {left} changes left",
            flush=True,
        )
        if args.pg:
            import psycopg

            with psycopg.connect(dsn) as conn:
                row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
            db_mb = (row[0] if row else 0) / 1e6
        else:
            db_mb = sum(p.stat().st_size for p in folder.glob("bench.db*")) / 1e6
        print(f"load average after: {_load()}; database {db_mb:.0f} MB")

        print()
        print(f"{'figure':<44} {'measured':>14} {'target':>14}")
        print(
            f"{'import rate (records/s, CLI subprocess)':<44} {rate:>14,.0f} {'>= 100,000':>14}  {verdict(rate >= TARGET_IMPORT)}"
        )
        print(
            f"{'full evaluation (s, policy run wall)':<44} {s_full:>14.2f} {'<= 10':>14}  {verdict(s_full <= TARGET_FULL)}"
        )
        print(
            f"{'full evaluation (s, engine as printed)':<44} {engine_s:>14.2f} {'<= 10':>14}  {verdict(engine_s <= TARGET_FULL)}"
        )
        print(f"{'full evaluation (CPU s, policy run process)':<44} {cpu_full:>14.2f} {'-':>14}")
        print(f"{'full evaluation peak RSS (MiB)':<44} {rss_full / 1024:>14.0f} {'-':>14}")
        print(
            f"{'incremental re-evaluation (s, in-process)':<44} {s_inc:>14.3f} {'<= 0.5':>14}  {verdict(s_inc <= TARGET_INCREMENTAL)}"
        )
        print(f"{'incremental re-evaluation (CPU s)':<44} {cpu_inc:>14.3f} {'-':>14}")


if __name__ == "__main__":
    main()

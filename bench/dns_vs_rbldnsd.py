#!/usr/bin/env python3
"""Benchmark: `reputable serve` against rbldnsd on one data set, both driven by dnsperf.

One run builds a data set (default 1,000,000 single IPv4 addresses + 50,000 CIDR ranges),
loads it into rbldnsd (Debian package) and into `reputable serve` (a fresh SQLite store in
a temporary folder, snapshot built once), then for each server in turn: starts it, times
how long until it answers, drives it with ``dnsperf -c CLIENTS -l SECONDS`` over a query file
in which half the queries hit, reads the resident memory of all its processes, stops it.
Everything runs on 127.0.0.1 only, one server at a time. Prints a side-by-side table.

    python bench/dns_vs_rbldnsd.py                      # the full run (about 2 minutes)
    python bench/dns_vs_rbldnsd.py --entries 100000 --ranges 5000 --seconds 5   # quick
    python bench/dns_vs_rbldnsd.py --python             # also the pure-Python UDP loop
    python bench/dns_vs_rbldnsd.py --size 10M           # 10M hosts + 100k ranges (issue 16)
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import re
import resource
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from reputable.store.bulk import load_listings
from reputable.store.sqlite import SQLiteStore
from reputable.testing import free_port, write_config

HOST = "127.0.0.1"  # loopback only, for every server and client
ZONE = "bl.reputable.test"
START_TIMEOUT = 300.0  # seconds a server may take to answer its first query
CHUNK = 100_000


@dataclass
class Data:
    """Hosts, ranges and the query names of one run."""

    hosts: array[int]
    ranges: list[tuple[int, int]]  # (network address, prefix length)
    queries: list[str]
    hits: int


@dataclass
class Result:
    """What one server did."""

    name: str
    load: float = 0.0
    rss_mb: float = 0.0
    pss_mb: float = 0.0
    processes: int = 0
    qps: float = 0.0
    latency_ms: float = 0.0
    lost: int = 0
    sent: int = 0
    server_cpu: float = 0.0  # % of one core during the dnsperf run
    server_sys: float = 0.0  # of it in the kernel
    client_cpu: float = 0.0

    @property
    def cpu_per_query(self) -> float:
        """Server CPU microseconds per answered query."""
        return self.server_cpu / 100 / self.qps * 1e6 if self.qps else 0.0

    detail: list[str] = field(default_factory=list)


def _ip(value: int) -> str:
    return socket.inet_ntoa(value.to_bytes(4, "big"))


def _listable(value: int) -> bool:
    first = value >> 24
    return 1 <= first < 224 and first not in (10, 127)


def make_data(entries: int, ranges: int, queries: int, seed: int) -> Data:
    """Return *entries* random hosts, *ranges* random CIDRs and queries (half of them hit)."""
    rng = random.Random(seed)
    chosen: set[int] = set()
    while len(chosen) < entries:
        value = rng.getrandbits(32)
        if _listable(value):
            chosen.add(value)
    hosts = array("I", sorted(chosen))
    nets: set[tuple[int, int]] = set()
    while len(nets) < ranges:
        plen = rng.choice((22, 23, 24, 24, 25, 26, 27, 28))
        value = rng.getrandbits(32)
        if _listable(value):
            nets.add((value >> (32 - plen) << (32 - plen), plen))
    net_list = sorted(nets)
    starts = [n for n, _ in net_list]
    ends = [n + (1 << (32 - p)) - 1 for n, p in net_list]
    reach = []  # running maximum of range ends, for "is this address in any range"
    top = -1
    for end in ends:
        top = max(top, end)
        reach.append(top)

    def listed(value: int) -> bool:
        i = bisect_right(starts, value) - 1
        in_range = i >= 0 and reach[i] >= value
        j = bisect_right(hosts, value) - 1
        return in_range or (j >= 0 and hosts[j] == value)

    names: list[str] = []
    hits = 0
    for k in range(queries):
        if k % 2 == 0:
            if k % 10 == 0:  # a fifth of the hits fall inside a range
                net, plen = net_list[rng.randrange(len(net_list))]
                value = net + rng.randrange(1 << (32 - plen))
            else:
                value = hosts[rng.randrange(len(hosts))]
        else:
            value = rng.getrandbits(32)
            while listed(value) or (value >> 24) == 127:
                value = rng.getrandbits(32)
        hits += listed(value)
        a, b, c, d = value.to_bytes(4, "big")
        names.append(f"{d}.{c}.{b}.{a}.{ZONE} A")
    rng.shuffle(names)
    return Data(hosts, net_list, names, hits)


# -- measuring ---------------------------------------------------------------------------------
def _query(name: str, qid: int) -> bytes:
    wire = b"".join(bytes([len(x)]) + x for x in name.encode().split(b"."))
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + wire + b"\0\0\1\0\1"


def wait_answering(port: int, proc: subprocess.Popen[bytes], started: float, probe: str) -> float:
    """Return seconds from *started* until the server on *port* answers *probe* as listed.

    A listed name, not just any reply: rbldnsd answers NXDOMAIN for everything while it
    is still loading its data, which would make it look ready too early.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.01)
        deadline = time.monotonic() + START_TIMEOUT
        qid = 0
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode} before answering")
            qid = (qid + 1) & 0xFFFF
            try:
                sock.sendto(_query(probe, qid), (HOST, port))
                # Replies to queries queued while the server was loading arrive first:
                # read until ours (or a timeout), so the probe never lags behind them.
                for _ in range(1000):
                    reply = sock.recv(4096)
                    rid, flags, _, ancount = struct.unpack_from(">HHHH", reply)
                    if rid == qid:
                        if flags & 0xF == 0 and ancount > 0:
                            return time.perf_counter() - started
                        break
            except (TimeoutError, ConnectionRefusedError):
                continue
    raise RuntimeError(f"no answer on {HOST}:{port} within {START_TIMEOUT} s")


def tree(pid: int) -> list[int]:
    """Return *pid* and all its descendants."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found.extend(tree(int(child)))
    return found


def mapped_under(pid: int, root: Path) -> int:
    """Return the resident kB of *pid*'s mappings of files under *root* (our snapshot)."""
    total = 0
    inside = False
    prefix = str(root.resolve())
    with open(f"/proc/{pid}/smaps") as fh:
        for line in fh:
            head = line.split(maxsplit=5)
            if head and "-" in head[0] and len(head) >= 5:  # a mapping's first line
                inside = len(head) == 6 and head[5].strip().startswith(prefix)
            elif inside and line.startswith("Rss:"):
                total += int(line.split()[1])
    return total


def memory(pid: int, root: Path) -> tuple[float, float, list[str]]:
    """Return (sum of RSS MB, sum of PSS MB, one line per process) of *pid* and descendants.

    Each line also gives the resident pages of files under *root* (the work folder): for
    reputable, the mapped snapshot pages the queries (and the engine's checks) touched.
    """
    rss = pss = 0
    lines = []
    for p in tree(pid):
        one = {}
        try:
            with open(f"/proc/{p}/smaps_rollup") as fh:
                for line in fh:
                    key, _, rest = line.partition(":")
                    if key in ("Rss", "Pss", "Shared_Clean", "Private_Dirty"):
                        one[key] = int(rest.split()[0])
            command = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            files = mapped_under(p, root)
        except (FileNotFoundError, ProcessLookupError):  # exited meanwhile (a build child)
            continue
        if "Rss" not in one:
            continue
        rss += one["Rss"]
        pss += one["Pss"]
        lines.append(
            f"{one['Rss'] / 1024:6.1f} MB RSS ({one['Private_Dirty'] / 1024:.1f} private"
            f" dirty, {one['Shared_Clean'] / 1024:.1f} shared clean, {files / 1024:.1f}"
            f" mapped data files)  {command[-70:]}"
        )
    return rss / 1024, pss / 1024, lines


def cpu_seconds(pids: list[int]) -> tuple[float, float]:
    """Return the (user, system) CPU seconds the processes *pids* have used so far."""
    user = system = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # a short-lived child (snapshot build, policy run) has exited
            continue
        user += int(fields[11])
        system += int(fields[12])
    tick = os.sysconf("SC_CLK_TCK")
    return user / tick, system / tick


def dnsperf(
    port: int, queries: Path, clients: int, seconds: float, outstanding: int | None
) -> dict[str, float]:
    """Run dnsperf against 127.0.0.1:*port*; return its summary figures."""
    cmd = [
        "dnsperf",
        "-s",
        HOST,
        "-p",
        str(port),
        "-d",
        str(queries),
        "-c",
        str(clients),
        "-l",
        str(seconds),
    ]
    if outstanding:
        cmd += ["-q", str(outstanding)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures: dict[str, float] = {
        "client_cpu": (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    }
    for key, pattern in {
        "sent": r"Queries sent:\s+(\d+)",
        "completed": r"Queries completed:\s+(\d+)",
        "lost": r"Queries lost:\s+(\d+)",
        "qps": r"Queries per second:\s+([\d.]+)",
        "latency": r"Average Latency \(s\):\s+([\d.]+)",
    }.items():
        match = re.search(pattern, out.stdout)
        if match is None:
            raise RuntimeError(f"cannot read {key!r} from dnsperf output:\n{out.stdout}")
        figures[key] = float(match[1])
    return figures


def measure(
    name: str,
    argv: list[str],
    port: int,
    args: argparse.Namespace,
    queries: Path,
    env: dict[str, str] | None = None,
) -> Result:
    """Start one server, time its load, drive it with dnsperf, read its memory, stop it.

    The load time is the median of ``--load-repeats`` cold starts (the machine is shared, so
    one start can be noisy); the last start is the one driven by dnsperf.
    """
    result = Result(name)
    log = queries.parent / f"{name.replace(' ', '_')}.log"
    loads = []
    for _ in range(max(args.load_repeats - 1, 0)):
        with log.open("wb") as out:
            started = time.perf_counter()
            trial = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
            )
        try:
            loads.append(wait_answering(port, trial, started, args.probe))
        finally:
            trial.terminate()
            trial.wait(timeout=15)
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    try:
        try:
            loads.append(wait_answering(port, proc, started, args.probe))
            result.load = statistics.median(loads)
        except RuntimeError as exc:
            raise RuntimeError(f"{name}: {exc}; its log:\n{log.read_text()[-3000:]}") from exc
        time.sleep(args.settle)  # serve's own start-up work (HTTP app, policy) ends first
        pids = tree(proc.pid)
        cpu = cpu_seconds(pids)
        perf = dnsperf(port, queries, args.clients, args.seconds, args.outstanding)
        user, system = cpu_seconds(pids)
        result.server_cpu = (user + system - sum(cpu)) / args.seconds * 100
        result.server_sys = (system - cpu[1]) / args.seconds * 100
        result.client_cpu = perf["client_cpu"] / args.seconds * 100
        result.rss_mb, result.pss_mb, result.detail = memory(proc.pid, queries.parent)
        result.processes = len(result.detail)
        result.qps = perf["qps"]
        result.latency_ms = perf["latency"] * 1000
        result.lost = int(perf["lost"])
        result.sent = int(perf["sent"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    print(  # at once: a later failure must not lose this server's figures
        f"{name}: {result.qps:,.0f} q/s, RSS {result.rss_mb:.1f} MB, PSS {result.pss_mb:.1f} MB,"
        f" server CPU {result.server_cpu:.0f}%, load {result.load:.2f} s, lost {result.lost}",
        *result.detail,
        sep="\n  ",
        flush=True,
    )
    return result


# -- the two servers ---------------------------------------------------------------------------
def rbldnsd_files(data: Data, root: Path) -> list[str]:
    """Write one ip4set per cause and return rbldnsd's zone arguments."""
    root.mkdir(mode=0o755, exist_ok=True)
    os.chmod(root, 0o755)  # rbldnsd reads the files after dropping root
    hosts = root / "hosts.ip4set"
    with hosts.open("w") as fh:
        fh.write(":127.0.0.2:spam trap hits http://127.0.0.1:8080/lookup/$\n")
        fh.writelines(f"{_ip(v)}\n" for v in data.hosts)
    nets = root / "nets.ip4set"
    with nets.open("w") as fh:
        fh.write(":127.0.0.4:botnet segment http://127.0.0.1:8080/lookup/$\n")
        fh.writelines(f"{_ip(n)}/{p}\n" for n, p in data.ranges)
    for path in (hosts, nets):
        os.chmod(path, 0o644)
    return [f"{ZONE}:ip4set:hosts.ip4set", f"{ZONE}:ip4set:nets.ip4set"]


def reputable_store(data: Data, directory: Path, workers: int, port: int) -> tuple[Path, float]:
    """Write a config and fill a fresh SQLite store; return (config path, import seconds)."""
    config = write_config(directory, dns_port=port, workers=str(workers))
    started = time.perf_counter()
    store = SQLiteStore(directory / "reputable.db")
    now = datetime.now(UTC).timestamp()
    # The bulk path of `import rbldnsd` (store/bulk.py): plain rows, one transaction, no
    # object per listing, so a 10M run fills the store in flat memory.
    hosts = (
        (str(IPv4Address(value)), 4, "spam", "spam trap hits", "bench", now, None)
        for value in data.hosts
    )
    nets = (
        (str(IPv4Network((net, plen))), 4, "compromised", "botnet segment", "bench", now, None)
        for net, plen in data.ranges
    )
    load_listings(
        store,
        itertools.chain(hosts, nets),
        actor="bench",
        action="import",
        expected=len(data.hosts) + len(data.ranges),
    )
    store.close()
    return config, time.perf_counter() - started


def _probe(data: Data) -> str:
    a, b, c, d = data.hosts[len(data.hosts) // 2].to_bytes(4, "big")
    return f"{d}.{c}.{b}.{a}.{ZONE}"


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x" if theirs else "-"


def table(results: list[Result]) -> str:
    """Return the side-by-side table, with reputable/rbldnsd ratios."""
    base = results[0]
    rows = [
        ("load time (s)", "load", "{:.2f}"),
        ("resident memory, sum of RSS (MB)", "rss_mb", "{:.1f}"),
        ("  of it PSS (MB)", "pss_mb", "{:.1f}"),
        ("processes", "processes", "{:d}"),
        ("queries/s", "qps", "{:,.0f}"),
        ("average latency (ms)", "latency_ms", "{:.3f}"),
        ("lost queries", "lost", "{:d}"),
        ("queries sent", "sent", "{:,d}"),
        ("server CPU during the run (% of a core)", "server_cpu", "{:.0f}"),
        ("  of it in the kernel (% of a core)", "server_sys", "{:.0f}"),
        ("server CPU per query (µs)", "cpu_per_query", "{:.1f}"),
        ("dnsperf CPU during the run (% of a core)", "client_cpu", "{:.0f}"),
    ]
    header = ["", *(r.name for r in results)]
    header += [f"{r.name} / {base.name}" for r in results[1:]]
    lines = [header]
    for label, attr, fmt in rows:
        values = [getattr(r, attr) for r in results]
        line = [label, *(fmt.format(v) for v in values)]
        if attr in ("load", "rss_mb", "qps", "latency_ms", "cpu_per_query"):
            line += [_ratio(v, values[0]) for v in values[1:]]
        else:
            line += ["" for _ in values[1:]]
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def parse_size(text: str) -> tuple[int, int]:
    """Return (hosts, ranges) for a size like ``100k``, ``1M``, ``10M`` or ``250000``.

    1M gives 50,000 ranges and 10M 100,000 (issue 16's data sets); other sizes one range per
    twenty hosts, at most 100,000.
    """
    raw = text.strip().lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(raw[-1:], 1)
    try:
        hosts = int(float(raw[:-1] if scale != 1 else raw) * scale)
    except ValueError:
        raise SystemExit(f"error: --size {text!r}: give a count like 100k, 1M or 10M") from None
    if hosts < 1:
        raise SystemExit(f"error: --size {text!r}: need at least one host")
    ranges = {1_000_000: 50_000, 10_000_000: 100_000}.get(hosts, min(100_000, max(1, hosts // 20)))
    return hosts, ranges


def main() -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="single IPv4 hosts")
    parser.add_argument("--ranges", type=int, default=50_000, help="IPv4 CIDR ranges")
    parser.add_argument("--queries", type=int, default=200_000, help="lines in the query file")
    parser.add_argument("--seconds", type=float, default=15, help="dnsperf -l")
    parser.add_argument("--clients", type=int, default=4, help="dnsperf -c")
    parser.add_argument(
        "--outstanding",
        type=int,
        default=None,
        help="dnsperf -q (queries in flight; dnsperf's default is 100)",
    )
    parser.add_argument("--workers", type=int, default=1, help="reputable DNS worker processes")
    parser.add_argument(
        "--settle",
        type=float,
        default=0.0,
        help="seconds to wait after a server first answers before the measured run (serve"
        " imports its HTTP app and runs the start-up policy evaluation in those seconds, and"
        " that CPU would count against the queries)",
    )
    parser.add_argument(
        "--python",
        action="store_true",
        help="also measure reputable with the compiled loop disabled",
    )
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--load-repeats", type=int, default=5, help="cold starts timed (median)")
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep the files")
    parser.add_argument(
        "--size",
        default=None,
        help="hosts like 100k, 1M, 10M (1M: + 50k ranges; 10M: + 100k ranges, issue 16;"
        " others: one range per 20 hosts); overrides --entries and --ranges",
    )
    args = parser.parse_args()
    if args.size is not None:
        args.entries, args.ranges = parse_size(args.size)
    for tool in ("dnsperf", "rbldnsd"):
        if shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin") is None:
            print(f"error: {tool} not found (Debian package {tool})", file=sys.stderr)
            return 2
    print(f"load before: {os.getloadavg()}  cores: {os.cpu_count()}", flush=True)
    work = args.keep or Path(tempfile.mkdtemp(prefix="reputable-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        data = make_data(args.entries, args.ranges, args.queries, args.seed)
        args.probe = _probe(data)
        queries = work / "queries.txt"
        queries.write_text("\n".join(data.queries) + "\n")
        print(
            f"data: {len(data.hosts):,} hosts, {len(data.ranges):,} ranges,"
            f" {len(data.queries):,} queries ({data.hits / len(data.queries):.0%} hit)"
            f" in {time.perf_counter() - started:.1f} s",
            flush=True,
        )

        rbl_port = free_port()
        specs = rbldnsd_files(data, work / "rbl")
        rbldnsd = [
            "rbldnsd",
            "-n",
            "-u",
            "rbldns",
            "-r",
            str(work / "rbl"),
            "-w",
            "/",
            "-b",
            f"{HOST}/{rbl_port}",
            *specs,
        ]
        results = [measure("rbldnsd", rbldnsd, rbl_port, args, queries)]

        our_port = free_port()
        directory = work / "reputable"
        directory.mkdir(exist_ok=True)
        config, imported = reputable_store(data, directory, args.workers, our_port)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "reputable", "--config", str(config), "snapshot", "build"],
            check=True,
            capture_output=True,
            timeout=1800,
        )
        built = time.perf_counter() - started
        snapshot_mb = sum(p.stat().st_size for p in directory.glob("*.snap*")) / 2**20
        print(
            f"reputable: import into SQLite {imported:.1f} s, snapshot build {built:.1f} s"
            f" (once, before serve starts), snapshot files {snapshot_mb:.1f} MB",
            flush=True,
        )
        serve = [sys.executable, "-m", "reputable", "--config", str(config), "serve"]
        results.append(measure("reputable", serve, our_port, args, queries))
        if args.python:
            results.append(
                measure(
                    "reputable (pure Python)",
                    serve,
                    our_port,
                    args,
                    queries,
                    env={"REPUTABLE_NO_FASTPATH": "1"},
                )
            )
        print(f"load after: {os.getloadavg()}")
        outstanding = f" -q {args.outstanding}" if args.outstanding else ""
        print(
            f"dnsperf -c {args.clients} -l {args.seconds:g}{outstanding};"
            f" reputable workers: {args.workers}"
        )
        print(table(results))
        for result in results:
            print(f"{result.name}:", *result.detail, sep="\n  ")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

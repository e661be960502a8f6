#!/usr/bin/env python3
"""Benchmark: change-to-mirror propagation to three NSD secondaries in network namespaces.

Builds the topology of tests/e2e/mirrors.py (serve in ``xfr-pri``, NSD in ``xfr-s1..3``,
one veth link each, optional netem delay), a store of random listings (v4, v6, domains,
ranges, allowlist), then CHANGES times: ``reputable list add`` of a fresh address, and the
time until each mirror answers it (pollers inside the namespaces, CLOCK_MONOTONIC is shared),
with the bytes that crossed each link (``ip -s link``, both directions) and the IXFR record
counts serve logged. ``--hosts N`` adds N random IPv4 hosts under ``:127.0.0.2:spam source $``
(bench/bulk_pipeline.py's file, imported with ``reputable import rbldnsd``): the 1M-host
zone of docs/scale.md. serve's CPU (user + sys of its process tree, from /proc) is printed
for the start, the first transfers and the changes. ``--mirrors N`` runs N NSDs instead of
three (one at 10M: a second and third would only share the same rendering), and
``--hosts-file`` takes an rbldnsd file already written (bench/bulk_pipeline.py's, whose
10M file takes minutes to make). Needs root, iproute2 and nsd.

    python bench/transfer_mirrors.py --listings 20000 --changes 20
    python bench/transfer_mirrors.py --listings 3000 --hosts 1000000 --changes 10
    python bench/transfer_mirrors.py --listings 3000 --mirrors 1 --changes 0 \
        --hosts-file /tmp/x10m/10000000.ip4set
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bulk_pipeline import make_file  # the 1M-host file of the bulk benchmark
from dns_vs_rbldnsd import cpu_seconds, tree  # /proc reads of a process tree
from tests.e2e.mirrors import NSD_PORT, PRIMARY, nsexec
from tests.e2e.test_transfer_mirrors import start_mirrors
from tests.publication.test_lookup import qname


def link_bytes(n: int) -> int:
    """Return the bytes sent plus received so far on the primary's end of link *n*."""
    out = subprocess.run(
        ["ip", "-n", PRIMARY, "-s", "-j", "link", "show", f"xfrp{n}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    stats = json.loads(out)[0]["stats64"]
    return int(stats["rx"]["bytes"]) + int(stats["tx"]["bytes"])


def waiter(host: str, ns: str, name: str, timeout: int) -> subprocess.Popen[str]:
    """Start a poller in namespace *ns* printing when *host* first answers *name* listed."""
    return subprocess.Popen(
        nsexec(
            ns,
            [
                *(sys.executable, "-m", "tests.e2e.mirrors", "wait", host, str(NSD_PORT)),
                *(name, "listed", str(timeout)),
            ],
        ),
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )


def first_host(path: Path) -> str:
    """Return the first host line of the rbldnsd file *path* (the probe the mirrors must answer)."""
    with path.open() as lines:
        for line in lines:
            text = line.strip()
            if text and text[0].isdigit():
                return text.split()[0]
    raise SystemExit(f"error: {path} holds no IPv4 host line; give an rbldnsd ip4set")


def main() -> int:
    """Run the benchmark and print one line per change and a summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listings", type=int, default=20_000)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--delay-ms", type=int, default=0, help="netem round trip per link")
    parser.add_argument("--hosts", type=int, default=0, help="random IPv4 hosts added (rbldnsd)")
    parser.add_argument(
        "--hosts-file", type=Path, help="an rbldnsd ip4set to import instead of --hosts"
    )
    parser.add_argument("--mirrors", type=int, default=3, help="NSD secondaries (1-3)")
    args = parser.parse_args()
    if not 1 <= args.mirrors <= 3:
        print("error: --mirrors takes 1, 2 or 3", file=sys.stderr)
        return 2
    links = range(1, args.mirrors + 1)
    if os.geteuid() != 0:
        print("error: needs root (network namespaces)", file=sys.stderr)
        return 2
    print("loadavg before:", Path("/proc/loadavg").read_text().strip(), flush=True)
    folder = Path(tempfile.mkdtemp(prefix="reputable-mirrors-"))
    hosts, probe = None, ""
    if args.hosts_file is not None:
        hosts = args.hosts_file.resolve()
        probe = first_host(hosts)
    elif args.hosts:
        hosts = folder / "hosts.ip4set"
        probe = make_file(hosts, args.hosts)
    began = time.monotonic()
    mirrors = start_mirrors(folder, args.mirrors, args.listings, args.delay_ms, hosts)
    m = next(mirrors)
    print(f"store, snapshot, serve and NSD started in {time.monotonic() - began:.1f} s", flush=True)

    def serve_cpu() -> float:
        return sum(cpu_seconds(tree(m.serve.pid))) if m.serve is not None else float("nan")

    try:
        deadline = time.monotonic() + 180
        while True:  # serve's start takes seconds at this machine's load: ask until it answers
            try:
                serial = m.serial(PRIMARY, "127.0.0.1", 21300, m.zones[0])
                break
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        started, cpu = time.monotonic(), serve_cpu()
        print(f"serve answered; its CPU so far {cpu:.1f} s", flush=True)
        m.wait_serials(serial, 1200)
        if probe:  # NSD may answer the SOA before a big zone is loaded: ask for a host of it
            name = qname(probe, m.config.ip_zone.name)
            waiters = [
                waiter(m.topology.secondary_address(n), ns, name, 1200)
                for n, ns in enumerate(m.topology.secondaries, 1)
            ]
            ats = [float(w.communicate(timeout=1230)[0].strip()) for w in waiters]
            at = [round(a - started, 1) for a in ats]
            print(f"  a host of the file answered by the mirrors at {at} s after serve answered")
        print(
            f"{args.listings:,} listings + {args.hosts:,} hosts: first transfer (AXFR) of 3 zones"
            f" to {args.mirrors} mirror(s) {time.monotonic() - started:.1f} s after serve"
            f" answered; serve's CPU meanwhile {serve_cpu() - cpu:.1f} s; link bytes"
            f" {[link_bytes(n) for n in links]}",
            flush=True,
        )
        if not args.changes:
            print(f"folder {folder}")
            print("loadavg after:", Path("/proc/loadavg").read_text().strip())
            return 0
        cpu = serve_cpu()
        spans: list[float] = []
        per_change_bytes: list[int] = []
        for i in range(args.changes):
            address = f"10.77.{i // 250}.{i % 250 + 1}"
            name = qname(address, m.config.ip_zone.name)
            before = [link_bytes(n) for n in links]
            began = time.monotonic()
            waiters = [
                waiter(m.topology.secondary_address(n), ns, name, 300)
                for n, ns in enumerate(m.topology.secondaries, 1)
            ]
            m.cli("list", "add", address, "--cause", "spam", "--reason", "mirror bench")
            cli_done = time.monotonic() - began
            ats = [float(w.communicate(timeout=330)[0].strip()) for w in waiters]
            span = max(ats) - began
            spans.append(span)
            time.sleep(0.5)  # the transfer's last messages and NSD's answers settle
            moved = sum(link_bytes(n) for n in links) - sum(before)
            per_change_bytes.append(moved)
            print(
                f"  change {i + 1}: list add returned {cli_done:.2f} s, mirrors answered at"
                f" {', '.join(f'{a - began:.2f}' for a in ats)} s; {moved:,} bytes on the {args.mirrors} link(s)",
                flush=True,
            )
        log = (folder / "serve.log").read_text(errors="replace")
        ixfr = [
            (int(a), int(b))
            for a, b in re.findall(r"ixfr zone=bl\S* serial=\d+ deleted=(\d+) added=(\d+)", log)
        ]
        builds = re.findall(r"snapshot_build\S*", log)
        print(
            f"propagation list add -> all {args.mirrors} mirror(s): median {statistics.median(spans):.2f} s,"
            f" max {max(spans):.2f} s over {len(spans)} changes"
        )
        print(
            f"bytes per change on the {args.mirrors} link(s) (NOTIFY, SOA, IXFR, TSIG): median"
            f" {statistics.median(per_change_bytes):,.0f}"
        )
        if ixfr:
            print(f"IXFR of the IP zone: (deleted, added) records, last 5: {ixfr[-5:]}")
        print(f"serve's CPU over the changes: {serve_cpu() - cpu:.1f} s")
        axfrs = re.findall(r"\baxfr zone=bl\S* serial=\d+ client=\S+ records=\d+", log)
        print(
            f"serve log: {len(builds)} snapshot build lines; IP-zone AXFRs: {len(axfrs)}; folder {folder}"
        )
        print("loadavg after:", Path("/proc/loadavg").read_text().strip())
    finally:
        mirrors.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

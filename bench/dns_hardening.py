"""Measure reflection safety of `reputable serve` on loopback: amplification and RRL.

Run: python bench/dns_hardening.py [--port 6353] [--rate 10] [--qps 50000] [--seconds 5]

1. Amplification: every query shape (listed host with nine 1,000-byte reasons, listed range,
   unlisted address, apex, empty non-terminal, domain zone, outside every zone) x every type
   (A, TXT, ANY, SOA, NS, MX) x EDNS (none, 512, 4096), sent with dnspython over UDP. Prints
   the largest reply/query ratio for clients offering <= 512 bytes and the largest reply
   with EDNS 4096, and the audit's two cases (EDNS 4096 ANY for a long reason; apex ANY).
2. RRL: dnsperf (Debian package dnsperf) sends one query from 127.0.0.1 at --qps for
   --seconds, with loopback not exempt and the rate set to --rate; dnsperf counts the
   replies, the server's /metrics the dropped and slipped (TC) ones. Run with slip 2 and 0.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import dns.flags
import dns.message
import dns.query

from reputable.testing import RunningServer, cli, write_config

HOST = "77.2.0.192.bl.reputable.test"


def _setup(folder: Path, port: int) -> Path:
    config = write_config(folder, dns_port=port)
    for i, cause in enumerate(
        ["spam", "harvest", "compromised", "open_relay", "open_proxy", "malware_host", "rdns",
         "network", "manual"]
    ):  # fmt: skip
        cli(config, "list", "add", "192.0.2.77", "--cause", cause, "--reason", f"{i}" + "R" * 999)
    cli(config, "list", "add", "198.51.100.0/24", "--cause", "compromised", "--reason", "botnet")
    cli(config, "list", "add", "evil.example", "--cause", "malware_host", "--reason", "P" * 1000)
    return config


def amplification(port: int) -> None:
    """Print the largest reply/query ratios over every query shape."""
    names = [HOST, "7.100.51.198.bl.reputable.test", "1.1.1.10.bl.reputable.test",
             "bl.reputable.test", "2.bl.reputable.test", "evil.example.dbl.reputable.test",
             "dbl.reputable.test", "x.example"]  # fmt: skip
    worst_small = (0.0, "")
    worst_big = (0, "")
    for name in names:
        for rdtype in ("A", "TXT", "ANY", "SOA", "NS", "MX"):
            for edns, payload in ((False, 0), (0, 512), (0, 4096)):
                query = dns.message.make_query(name, rdtype, use_edns=edns, payload=payload)
                wire = query.to_wire()
                reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=3)
                size = len(reply.to_wire())
                what = f"{name} {rdtype} edns={payload or 'none'}: {len(wire)} -> {size} bytes"
                if payload <= 512 and size / len(wire) > worst_small[0]:
                    worst_small = (size / len(wire), what)
                if size > worst_big[0]:
                    worst_big = (size, what + (" TC" if reply.flags & dns.flags.TC else ""))
    print(f"largest ratio, client offering <= 512 bytes: {worst_small[0]:.2f}x ({worst_small[1]})")
    print(f"largest UDP reply: {worst_big[0]} bytes ({worst_big[1]})")
    for name, rdtype, edns, payload in (
        (HOST, "ANY", 0, 4096),
        ("bl.reputable.test", "ANY", False, 0),
    ):
        query = dns.message.make_query(name, rdtype, use_edns=edns, payload=payload)
        reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=3)
        q, r = len(query.to_wire()), len(reply.to_wire())
        print(
            f"audit case {name} {rdtype} edns={payload or 'none'}: {q} -> {r} bytes ({r / q:.2f}x)"
        )


def rrl(folder: Path, port: int, rate: int, slip: int, qps: int, seconds: int) -> None:
    """Flood one name from 127.0.0.1 with dnsperf and print what came back."""
    config = folder / "reputable.toml"
    text = config.read_text()
    text = re.sub(r"^exempt = .*$", "exempt = []", text, flags=re.M)
    text = re.sub(
        r"^responses_per_second = .*$", f"responses_per_second = {rate}", text, flags=re.M
    )
    text = re.sub(r"^slip = .*$", f"slip = {slip}", text, flags=re.M)
    config.write_text(text)
    data = folder / "queries.txt"
    data.write_text(f"{HOST} A\n")
    metrics_port = port + 1
    with RunningServer(config, metrics_port=metrics_port):
        out = subprocess.run(
            ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(data), "-Q", str(qps),
             "-l", str(seconds), "-q", "60000", "-t", "1", "-c", "4", "-T", "2"],
            capture_output=True, text=True, timeout=seconds + 30, check=False,
        ).stdout  # fmt: skip
        time.sleep(1.2)  # the worker flushes its counters every reload interval
        metrics = (
            urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
            .read()
            .decode()
        )  # loopback
    sent = re.search(r"Queries sent:\s+(\d+)", out)
    done = re.search(r"Queries completed:\s+(\d+)", out)
    dropped = re.search(r'action="dropped"\} (\d+)', metrics)
    slipped = re.search(r'action="slipped"\} (\d+)', metrics)
    if not (sent and done and dropped and slipped):
        print(out, metrics, sep="\n")
        return
    hits = re.search(r'zone="bl.reputable.test",result="hit"\} (\d+)', metrics)
    n_sent, n_done = int(sent.group(1)), int(done.group(1))
    n_slip, n_drop = int(slipped.group(1)), int(dropped.group(1))
    full = int(hits.group(1)) - n_slip - n_drop if hits else -1
    print(
        f"RRL rate={rate}/s slip={slip}: dnsperf sent {n_sent} in {seconds} s"
        f" ({n_sent / seconds:,.0f} q/s) and got {n_done} replies; the server answered {full}"
        f" in full ({full / seconds:.1f}/s over {seconds} s, i.e. at most {rate} per clock"
        f" second: the run spans {seconds + 1}), slipped {n_slip} as TC, dropped {n_drop}"
    )


def main() -> int:
    """Run both measurements."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=6353)
    parser.add_argument("--rate", type=int, default=10)
    parser.add_argument("--qps", type=int, default=50000)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    with open("/proc/loadavg") as f:
        print(f"loadavg {f.read().strip()}")
    folder = Path(tempfile.mkdtemp(prefix="reputable-hardening-"))
    try:
        _setup(folder, args.port)
        with RunningServer(folder / "reputable.toml", metrics_port=args.port + 1):
            amplification(args.port)
        if shutil.which("dnsperf") is None:
            print("dnsperf not installed (Debian package dnsperf): RRL flood skipped")
            return 0
        for slip in (2, 0):
            rrl(folder, args.port, args.rate, slip, args.qps, args.seconds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    with open("/proc/loadavg") as f:
        print(f"loadavg {f.read().strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Measure reflection safety of `reputable serve` on loopback: amplification and RRL.

Run: python bench/dns_hardening.py [--port 6353] [--rate 10] [--qps 50000] [--seconds 5]
     python bench/dns_hardening.py --overhead 3 [--seconds 10]   (RRL's cost: off vs on)

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


def _set_rrl(config: Path, rate: int, slip: int = 2) -> None:
    """Rewrite [rrl] in *config*: *rate* responses/s (0: off), *slip*, loopback not exempt."""
    text = config.read_text()
    text = re.sub(r"^exempt = .*$", "exempt = []", text, flags=re.M)
    text = re.sub(
        r"^responses_per_second = .*$", f"responses_per_second = {rate}", text, flags=re.M
    )
    text = re.sub(r"^slip = .*$", f"slip = {slip}", text, flags=re.M)
    config.write_text(text)


def _flood_one(args: tuple[int, list[str], float, int]) -> tuple[int, int]:
    """One client process: keep *window* queries outstanding for *seconds*; (sent, answered)."""
    import select
    import socket

    port, names, seconds, window = args
    wires = [dns.message.make_query(n.split()[0], n.split()[1]).to_wire() for n in names]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    sent = answered = outstanding = i = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        while outstanding < window:
            sock.send(wires[i % len(wires)])
            i += 1
            sent += 1
            outstanding += 1
        ready, _, _ = select.select([sock], [], [], 0.2)
        if not ready:
            outstanding = 0  # lost: send a fresh window
            continue
        while True:
            try:
                sock.recv(4096)
            except BlockingIOError:
                break
            answered += 1
            outstanding -= 1
    sock.close()
    return sent, answered


def _flood(port: int, names: list[str], seconds: float, procs: int = 2, window: int = 64) -> str:
    """Send queries from *procs* processes; return a dnsperf-like summary to parse."""
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(procs) as pool:
        found = pool.map(_flood_one, [(port, names, seconds, window)] * procs)
    sent = sum(s for s, _ in found)
    done = sum(a for _, a in found)
    return (
        f"Queries sent: {sent}\nQueries completed: {done}\nQueries lost: {sent - done}\n"
        f"Queries per second: {done / seconds:.1f}\n"
    )


def overhead(folder: Path, port: int, seconds: int, rounds: int) -> None:
    """Print q/s and server CPU per query with RRL off and on (a limit nothing reaches).

    Two client processes (dnsperf when installed, else :func:`_flood`) send as fast as answers
    come a mix of 1,000 names (the listed host, the listed range's addresses, unlisted
    addresses): every reply is a full answer in both phases, so the difference is the
    limiter's own accounting per response. Phases alternate.
    """
    from dns_vs_rbldnsd import cpu_seconds, tree

    config = folder / "reputable.toml"
    data = folder / "mix.txt"
    names = [f"{HOST} A"] + [f"{i}.100.51.198.bl.reputable.test A" for i in range(1, 255)]
    names += [f"{i % 250 + 1}.{i // 250}.0.10.bl.reputable.test A" for i in range(745)]
    data.write_text("\n".join(names) + "\n")
    results: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
    for _ in range(rounds):
        for phase, rate in (("off", 0), ("on", 1_000_000)):
            _set_rrl(config, rate)
            with RunningServer(config, metrics_port=port + 1) as server:
                assert server.proc is not None
                if shutil.which("dnsperf"):
                    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(data),
                           "-q", "200", "-t", "2", "-c", "4", "-T", "1"]  # fmt: skip
                    subprocess.run([*cmd, "-l", "1"], capture_output=True, timeout=40, check=False)
                    before = sum(cpu_seconds(tree(server.proc.pid)))
                    out = subprocess.run(
                        [*cmd, "-l", str(seconds)], capture_output=True, text=True,
                        timeout=seconds + 40, check=False,
                    ).stdout  # fmt: skip
                else:
                    _flood(port, names, 1)
                    before = sum(cpu_seconds(tree(server.proc.pid)))
                    out = _flood(port, names, seconds)
                used = sum(cpu_seconds(tree(server.proc.pid))) - before
            qps = re.search(r"Queries per second:\s+([\d.]+)", out)
            done = re.search(r"Queries completed:\s+(\d+)", out)
            lost = re.search(r"Queries lost:\s+(\d+)", out)
            if not (qps and done and lost):
                print(out)
                return
            results[phase].append((float(qps.group(1)), used / max(1, int(done.group(1))) * 1e6))
            print(
                f"RRL {phase:3} (responses_per_second={rate}): {float(qps.group(1)):,.0f} q/s,"
                f" {int(lost.group(1))} lost, server CPU {results[phase][-1][1]:.1f} us/query",
                flush=True,
            )
    off_cpu = sorted(c for _, c in results["off"])[len(results["off"]) // 2]
    on_cpu = sorted(c for _, c in results["on"])[len(results["on"]) // 2]
    print(
        f"RRL overhead: median server CPU {on_cpu:.1f} vs {off_cpu:.1f} us/query"
        f" ({(on_cpu / off_cpu - 1) * 100:+.1f}%)"
    )


def main() -> int:
    """Run both measurements."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=6353)
    parser.add_argument("--rate", type=int, default=10)
    parser.add_argument("--qps", type=int, default=50000)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument(
        "--overhead", type=int, metavar="ROUNDS", default=0,
        help="instead: RRL off vs on (unreached limit), q/s and CPU/query, ROUNDS each",
    )  # fmt: skip
    args = parser.parse_args()
    with open("/proc/loadavg") as f:
        print(f"loadavg {f.read().strip()}")
    folder = Path(tempfile.mkdtemp(prefix="reputable-hardening-"))
    try:
        _setup(folder, args.port)
        if args.overhead:
            overhead(folder, args.port, args.seconds, args.overhead)
            return 0
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

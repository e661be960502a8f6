"""Benchmark: the bulk pipeline at 1M (or 10M) entries, each step as users run it.

Run: nice -n 5 python bench/bulk_pipeline.py [--size 1000000] [--work /tmp/bulk-bench]

Writes an rbldnsd ip4set of SIZE random distinct IPv4 hosts under a ``:127.0.0.2:spam
source $`` default, makes a fresh store (`reputable.testing.write_config`, SQLite), and runs
every step through the ``reputable`` CLI under ``/usr/bin/time``: import rbldnsd, snapshot
build, export rbldnsd / nftables / ipset / rpz / zone, ``list show --json``. Each line gives
wall seconds, CPU seconds (user + sys) and peak RSS; the machine is shared, so compare CPU.
Then the first DNS answer after an import: a second fresh store gets the same import, then
``reputable serve`` is started and the time from exec to the first correct A answer for a
listed address is taken (it builds its snapshot first); and rbldnsd's own load of the same
file (time from exec to its first correct answer) for comparison. Everything on 127.0.0.1,
on the ports given by --port (DNS) and --port + 1 (rbldnsd).
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dns_vs_rbldnsd import cpu_seconds, tree, wait_answering  # the same probe and /proc reads

from reputable.testing import write_config

ZONE = "bl.reputable.test"


def make_file(path: Path, size: int, seed: int = 16) -> str:
    """Write *size* random distinct public IPv4 hosts; return one of them (the probe)."""
    rnd = random.Random(seed)
    seen: set[int] = set()
    while len(seen) < size:
        value = rnd.getrandbits(32)
        if value >> 24 not in (0, 10, 127) and value >> 24 < 224:
            seen.add(value)
    probe = ""
    with path.open("w") as out:
        out.write(":127.0.0.2:spam source $\n")
        batch: list[str] = []
        for value in seen:
            text = socket.inet_ntoa(value.to_bytes(4, "big"))
            probe = probe or text
            batch.append(text)
            if len(batch) >= 100_000:
                out.write("\n".join(batch) + "\n")
                batch.clear()
        out.write("\n".join(batch) + "\n" if batch else "")
    return probe


def timed(label: str, argv: list[str], cwd: Path, stdout: Path | None = None) -> None:
    """Run *argv* under /usr/bin/time in *cwd* and print wall, CPU and peak RSS."""
    fmt = "%e %U %S %M"
    with open(stdout or os.devnull, "wb") as out:
        done = subprocess.run(
            ["/usr/bin/time", "-f", fmt, *argv],
            cwd=cwd,
            stdout=out,
            stderr=subprocess.PIPE,
            check=False,
        )
    last = done.stderr.decode().strip().splitlines()[-1]
    if done.returncode != 0:
        raise RuntimeError(f"{label} failed ({done.returncode}): {done.stderr.decode()[-800:]}")
    wall, user, system, rss = last.split()
    cpu = float(user) + float(system)
    print(
        f"| {label} | {float(wall):.2f} s | **{cpu:.2f} s** ({user} + {system}) |"
        f" {int(rss) / 1024:.0f} MB |",
        flush=True,
    )


def first_answer(config: Path, port: int, probe: str) -> tuple[float, float]:
    """Start `reputable serve`; return (seconds until it answers *probe* as listed, its CPU).

    The CPU is user + sys of serve's process tree at that moment (children that exited
    before it, such as a snapshot build in a subprocess, are not counted)."""
    name = ".".join(reversed(probe.split("."))) + "." + ZONE
    log = config.parent / "serve.log"
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            ["reputable", "--config", str(config), "serve"], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        seconds = wait_answering(port, proc, started, name)  # type: ignore[arg-type]
        return seconds, sum(cpu_seconds(tree(proc.pid)))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def rbldnsd_load(data: Path, port: int, probe: str) -> float:
    """Return rbldnsd's seconds from exec to its first listed answer for *probe*."""
    name = ".".join(reversed(probe.split("."))) + "." + ZONE
    argv = ["rbldnsd", "-n", "-r", str(data.parent), "-w", "/", "-b", f"127.0.0.1/{port}"]
    if os.geteuid() == 0:
        argv[1:1] = ["-u", "rbldns"]
    argv.append(f"{ZONE}:ip4set:{data.name}")
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return wait_answering(port, proc, started, name)  # type: ignore[arg-type]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def loadavg() -> str:
    """Return the 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    """Make the data, run every step, print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bulk-bench"))
    parser.add_argument("--port", type=int, default=21250)
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated steps to run, by label ('import rbldnsd', 'snapshot build', ...,"
        " 'first', 'rbldnsd'); all by default",
    )
    args = parser.parse_args()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    data = work / f"{args.size}.ip4set"
    started = time.perf_counter()
    probe = make_file(data, args.size)
    print(f"data: {args.size:,} lines in {time.perf_counter() - started:.1f} s; load"
          f" {loadavg()}", flush=True)  # fmt: skip
    only = set(filter(None, args.only.split(",")))
    store = work / "store"
    subprocess.run(["rm", "-rf", str(store), str(work / "serve")], check=True)
    store.mkdir()
    config = write_config(store, dns_port=args.port)
    cli = ["reputable", "--config", str(config)]
    (store / "out").mkdir()
    steps = [
        ("import rbldnsd", [*cli, "import", "rbldnsd", str(data), "--zone", ZONE], None),
        ("snapshot build", [*cli, "snapshot", "build"], None),
        ("export rbldnsd", [*cli, "export", "rbldnsd", "--zone", ZONE, "-o", "out/bl"], None),
        ("list show --json", [*cli, "list", "show", "--json"], store / "out" / "show.json"),
        ("export nftables", [*cli, "export", "nftables", "-o", "out/bl.nft"], None),
        ("export ipset", [*cli, "export", "ipset", "-o", "out/bl.ipset"], None),
        ("export rpz", [*cli, "export", "rpz", "-o", "out/bl.rpz"], None),
        ("export zone", [*cli, "export", "zone", "--zone", ZONE, "-o", "out/bl.zone"], None),
    ]
    print("| step | wall | CPU user+sys | peak RSS |\n|---|---:|---:|---:|")
    for label, argv, stdout in steps:
        if not only or label in only:
            timed(label, argv, store, stdout)
    if not only or "first" in only:
        serve = work / "serve"
        serve.mkdir()
        config2 = write_config(serve, dns_port=args.port)
        subprocess.run(
            ["reputable", "--config", str(config2), "import", "rbldnsd", str(data), "--zone", ZONE],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        seconds, cpu = first_answer(config2, args.port, probe)
        print(f"| first answer after import (`serve`, exec to answer) | {seconds:.2f} s |"
              f" **{cpu:.2f} s** (serve's tree) | |", flush=True)  # fmt: skip
    if not only or "rbldnsd" in only:
        print(f"| rbldnsd load of the same file (exec to answer) |"
              f" {rbldnsd_load(data, args.port + 1, probe):.2f} s | | |")  # fmt: skip
    print(f"load after: {loadavg()}")


if __name__ == "__main__":
    main()

"""A/B of serve's first answer after an import: exec to the first listed answer, trees alternated.

Run (after `python bench/bulk_pipeline.py --size 1000000 --work W --only first`, which leaves
W/serve with the imported store and W/1000000.ip4set):

    python bench/first_answer_ab.py --work W --rounds 5 old=/tmp/old/src new=src

Each tree is a ``src`` folder put first on PYTHONPATH (give it the built C extensions). Per
run the snapshot files are deleted, so serve builds its first snapshot, and it prints: exec to
answer (wall), the build child's own ``snapshot_built ms``, serve's CPU at the answer (its own
threads, not the child's), the child's last sampled CPU, the 1-minute load and how idle the
whole machine was during the run (/proc/stat): on a machine others use, compare the runs
of one round, and the idle column says whether there was a core to spare.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dns_vs_rbldnsd import wait_answering  # the same probe as bulk_pipeline's "first"

TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _idle() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return fields[3] + fields[4], sum(fields)


def _probe(work: Path) -> str:
    files = sorted(work.glob("*.ip4set"))
    with files[0].open() as data:
        data.readline()  # the ":127.0.0.2:..." default line
        address = data.readline().strip()
    return ".".join(reversed(address.split("."))) + ".bl.reputable.test"


def _port(config: Path) -> int:
    found = re.search(r'^listen = \["127\.0\.0\.1:(\d+)"\]', config.read_text(), re.MULTILINE)
    if found is None:
        raise SystemExit(f"{config}: no [dns] listen on 127.0.0.1")
    return int(found.group(1))


def one(serve: Path, src: str, probe: str, port: int) -> dict[str, float]:
    """Start serve from tree *src* with no snapshot; return its figures at the first answer."""
    for old in serve.glob("reputable.snapshot*"):
        old.unlink()
    log = serve / "serve-ab.log"
    child_cpu: dict[int, float] = {}
    done = threading.Event()
    idle_before = _idle()
    load = float(Path("/proc/loadavg").read_text().split()[0])
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "reputable", "--config", str(serve / "reputable.toml"), "serve"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": src},
            cwd=serve,
        )

    def sample() -> None:  # the build child exits soon after the answer: sample it as it runs
        while not done.is_set():
            for child in _children(proc.pid):
                if (seconds := _cpu(child)) is not None:
                    child_cpu[child] = seconds
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        wall = wait_answering(port, proc, started, probe)  # type: ignore[arg-type]
        serve_cpu = _cpu(proc.pid) or 0.0
    finally:
        done.set()
        sampler.join()
        idle_after = _idle()
        proc.terminate()
        proc.wait(timeout=30)
    built = re.search(r"snapshot_built .*? ms=([\d.]+)", log.read_text())
    idle = (idle_after[0] - idle_before[0]) / max(1, idle_after[1] - idle_before[1])
    return {
        "wall": wall,
        "build": float(built.group(1)) / 1000 if built else float("nan"),
        "serve_cpu": serve_cpu,
        "child_cpu": max(child_cpu.values(), default=0.0),
        "load": load,
        "idle": 100 * idle,
    }


def main() -> None:
    """Alternate the trees *rounds* times; print each run, then the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/bulk-bench"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("trees", nargs="+", help="NAME=PATH of a src folder")
    args = parser.parse_args()
    serve = args.work / "serve"
    probe, port = _probe(args.work), _port(serve / "reputable.toml")
    trees = dict(tree.split("=", 1) for tree in args.trees)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, src in trees.items():
            run = one(serve, str(Path(src).resolve()), probe, port)
            results[name].append(run)
            print(
                f"{time.strftime('%H:%M:%S', time.gmtime())} {name}: exec->answer"
                f" {run['wall']:.3f} s, build {run['build']:.3f} s, serve CPU"
                f" {run['serve_cpu']:.2f} s, child CPU {run['child_cpu']:.2f} s,"
                f" load {run['load']:.2f}, idle {run['idle']:.0f} %",
                flush=True,
            )
            time.sleep(1)
    for name, runs in results.items():
        walls = sorted(r["wall"] for r in runs)
        print(
            f"{name}: exec->answer median {statistics.median(walls):.3f} s"
            f" ({walls[0]:.3f}-{walls[-1]:.3f}), build median"
            f" {statistics.median(r['build'] for r in runs):.3f} s,"
            f" under 2 s {sum(w < 2 for w in walls)}/{len(walls)}"
        )


if __name__ == "__main__":
    main()

"""Send SIGTERM or SIGINT to `reputable serve` at random moments of its first 0.2 s.

Run: python bench/stop_at_startup.py N SIGTERM|SIGINT [--gate]

Counts tracebacks, stops slower than 2 s, process groups with a survivor, and exit codes.
``--gate`` waits, if need be, until the process handles SIGTERM (reputable's first line ran;
CPython installs no SIGTERM handler of its own) before signalling: before that moment CPython
is still starting (site, runpy) and answers SIGINT with its own KeyboardInterrupt traceback.
DNS on 127.0.0.1:6360, files in a temporary folder.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reputable.testing import cli, write_config


def _ours(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return bool(int(status.split("SigCgt:")[1].split()[0], 16) & (1 << (signal.SIGTERM - 1)))


def main() -> int:
    """Run the trials and print the counts."""
    n, sig_name = int(sys.argv[1]), sys.argv[2]
    sig, gate = getattr(signal, sig_name), "--gate" in sys.argv
    folder = Path(tempfile.mkdtemp(prefix="reputable-stop-"))
    config = write_config(folder, dns_port=6360)
    cli(config, "list", "add", "198.51.100.7", "--cause", "spam")
    cli(config, "snapshot", "build")
    rng = random.Random(226)
    tracebacks = slow = survivors = 0
    codes: dict[int, int] = {}
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")
    for _ in range(n):
        cmd = [sys.executable, "-m", "reputable", "--config", str(config), "serve", "--metrics", ""]
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        time.sleep(rng.uniform(0, 0.2))
        while gate and not _ours(proc.pid):
            time.sleep(0.001)
        sent = time.monotonic()
        proc.send_signal(sig)
        try:
            out, _ = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        slow += time.monotonic() - sent > 2
        tracebacks += b"Traceback" in out
        codes[proc.returncode] = codes.get(proc.returncode, 0) + 1
        try:
            os.killpg(proc.pid, 0)
            survivors += 1
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    print(
        f"{n} {sig_name} trials (gate={gate}) in the first 0.2 s: tracebacks {tracebacks},"
        f" over 2 s {slow}, groups with survivors {survivors}, exit codes {codes}"
    )
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

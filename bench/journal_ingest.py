"""journald benchmark: `reputable ingest journal` over a real journal file, and journalctl alone.

    python bench/journal_ingest.py [--entries 500000] [--workdir /tmp/journal-bench]

Writes a journal file with systemd-journal-remote from generated export-format entries (sshd
brute force and logins, Postfix connects/rejects/deliveries, Dovecot logins, CRON noise), then
times, one after the other:

1. ``journalctl --directory D --output=export --output-fields=...`` to /dev/null (the reader
   alone, as `ingest journal` runs it), then the same with ``--output=json`` for comparison;
2. ``reputable ingest journal --directory D --dry-run`` (journalctl + routing + parsers +
   detectors), its own reported entries/s, the wall time of the whole command and the CPU time
   of its Python process (start-up included) and of its journalctl apart: on 2 idle cores
   the wall is about the larger, as journalctl runs beside the reader (``--repeat`` times);
3. the Python side alone, in this process: journalctl's export output saved to a file, then
   read in 64 KiB chunks through ``export_batches``, ``JournalRun.add_entries`` and ``flush``
   every 20,000 entries, as ``ingest journal`` runs them (CPU time of this process; ``--repeat``
   times, for A/B runs against another checkout on ``PYTHONPATH``).

Prints the load average: the machine is shared, read the figures with it.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.evidence.journal_gen import REMOTE, entry, export  # noqa: E402

from reputable.evidence.sources.journal import BATCH, FIELDS  # noqa: E402

T0 = 1_764_900_000


def _load() -> str:
    return Path("/proc/loadavg").read_text(encoding="ascii").strip()


def entries(n: int, seed: int) -> list[dict[str, str]]:
    """Return *n* generated journal entries."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        at = T0 + i // 20
        roll = rng.random()
        if roll < 0.4:
            ip = f"203.0.113.{rng.randint(1, 250)}"
            out.append(entry(at, "sshd", f"Failed password for invalid user u{i % 97} from {ip} port {i % 60000} ssh2", pid=i % 32768, unit="ssh.service"))  # fmt: skip
        elif roll < 0.5:
            out.append(entry(at, "sshd", f"Accepted publickey for alice from 192.0.2.{i % 200} port {i % 60000} ssh2: ED25519 SHA256:x", pid=i % 32768, unit="ssh.service"))  # fmt: skip
        elif roll < 0.65:
            out.append(entry(at, "postfix/smtpd", f"connect from mail{i % 300}.example[198.51.100.{i % 250}]", pid=900 + i % 50, unit="postfix@-.service"))  # fmt: skip
        elif roll < 0.75:
            out.append(entry(at, "postfix/smtpd", f"NOQUEUE: reject: RCPT from unknown[198.51.100.{i % 250}]: 550 5.1.1 <u{i}@example.org>: Recipient address rejected: User unknown in local recipient table; from=<a@b.example> to=<u{i}@example.org> proto=ESMTP helo=<b.example>", pid=900 + i % 50, unit="postfix@-.service"))  # fmt: skip
        elif roll < 0.85:
            out.append(entry(at, "postfix/smtp", f"4B{i:08X}: to=<r{i}@remote.example>, relay=mx.remote.example[192.0.2.{i % 250}]:25, delay=0.5, delays=0.1/0/0.2/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok)", pid=950, unit="postfix@-.service"))  # fmt: skip
        elif roll < 0.93:
            out.append(entry(at, "dovecot", f"imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<u{i % 50}>, method=PLAIN, rip=203.0.113.{i % 250}, lip=192.0.2.10, session=<s{i}>", unit="dovecot.service"))  # fmt: skip
        else:
            out.append(entry(at, "CRON", "pam_unix(cron:session): session closed for user root", pid=i % 32768, unit="cron.service"))  # fmt: skip
    return out


def main() -> None:
    """Generate, time, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=500_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/journal-bench"))
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of the command and of the Python side alone"
    )
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    for old in args.workdir.glob("*.journal"):
        old.unlink()
    journal = args.workdir / "bench.journal"  # systemd-journal-remote rotates: read the folder
    data = export(entries(args.entries, 7))
    subprocess.run([str(REMOTE), f"--output={journal}", "-"], input=data, check=True, capture_output=True)  # fmt: skip
    size = sum(p.stat().st_size for p in args.workdir.glob("*.journal"))
    print(f"journal: {args.entries:,} entries, {size / 1e6:.0f} MB; load average {_load()}")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for output in ("export", "json"):
        started = time.perf_counter()
        subprocess.run(
            ["journalctl", f"--directory={args.workdir}", f"--output={output}", f"--output-fields={FIELDS}", "--no-pager"],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        alone = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        print(f"journalctl --output={output} alone: {alone:.2f} s = {args.entries / alone:,.0f} entries/s (CPU {cpu:.2f} s = {args.entries / cpu:,.0f} entries/s)")  # fmt: skip
        before = after
    config = args.workdir / "reputable.toml"
    config.write_text('data_dir = "."\n', encoding="utf-8")
    for _ in range(args.repeat):
        whole_command(args, config)
    saved = args.workdir / "export.bin"
    with saved.open("wb") as out:
        subprocess.run(
            ["journalctl", f"--directory={args.workdir}", "--output=export", f"--output-fields={FIELDS}", "--no-pager"],
            check=True, stdout=out,
        )  # fmt: skip
    for _ in range(args.repeat):
        python_side(saved)
    saved.unlink()
    print(f"load average at the end: {_load()}")


#: Runs `reputable` (as ``python -m reputable``) and prints on stderr, last, the CPU seconds of
#: its Python process (start-up included) and of its children (journalctl).
_RUSAGE = """
import atexit, resource, runpy, sys
def report():
    me, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    print(f"cpu {me.ru_utime + me.ru_stime:.3f} {kids.ru_utime + kids.ru_stime:.3f}", file=sys.stderr)
atexit.register(report)
sys.argv = ["reputable", *sys.argv[1:]]
runpy.run_module("reputable", run_name="__main__")
"""


def whole_command(args: argparse.Namespace, config: Path) -> None:
    """Time `reputable ingest journal --dry-run`: wall, its Python CPU and journalctl's apart."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _RUSAGE, "--config", str(config), "ingest", "journal",
         "--directory", str(args.workdir), "--dry-run", "--now", "2025-12-06T00:00:00Z"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - started
    python, journalctl = (float(x) for x in done.stderr.strip().splitlines()[-1].split()[1:])
    print(f"reputable ingest journal --dry-run: {wall:.2f} s wall = {args.entries / wall:,.0f} entries/s (start-up included); CPU: Python {python:.2f} s = {args.entries / python:,.0f} entries/s, journalctl {journalctl:.2f} s (load {_load().split()[0]})")  # fmt: skip
    print("  reported: " + done.stdout.strip().replace("\n", "\n  "))


def python_side(saved: Path) -> None:
    """Time the Python side of `ingest journal` alone over journalctl's saved export output."""
    from reputable.evidence.detectors.mail_config import mail_params
    from reputable.evidence.detectors.netconfig import net_settings
    from reputable.evidence.sources import journal

    def chunks() -> Iterator[bytes]:
        with saved.open("rb") as f:
            while data := f.read(journal._READ):
                yield data

    started = time.process_time()
    run = journal.JournalRun(mail_params({}, ()), net_settings({}), datetime(2025, 12, 6, tzinfo=UTC))  # fmt: skip
    found = since = 0
    for chunk in journal.export_batches(chunks()):
        read = chunk or []
        while read:
            room = BATCH - since
            part, read = (read[:room], read[room:]) if len(read) > room else (read, [])
            run.add_entries(part)
            since += len(part)
            if since >= BATCH:
                found += len(run.flush())
                since = 0
    found += len(run.flush(final=True))
    cpu = time.process_time() - started
    state = hashlib.sha256(run.state().encode()).hexdigest()[:12]
    print(f"Python side alone: {run.entries:,} entries, {found} evidence, CPU {cpu:.2f} s = {run.entries / cpu:,.0f} entries/s (state {state}; load {_load().split()[0]})")  # fmt: skip


if __name__ == "__main__":
    main()

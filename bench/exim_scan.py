"""Exim main-log benchmark: the single-pass scan, parse + detection, as `ingest maillog` runs it.

    python bench/exim_scan.py [--lines 1000000] [--seed 3]

Generates an Exim 4.9x main log (a busy MX: SMTP connections, accepted messages and their
deliveries and ``Completed`` lines, RCPT rejects for unknown users and relaying, RBL rejects,
authenticator failures, synchronization errors, lost connections, queue runs), then times in
this process, each over the same 4 MB pieces ``ingest maillog`` reads:

1. ``exim.scan`` alone with every event counted (what a batch ingest's summary needs);
2. parse + detection (``MailRun.detect``, as ``ingest maillog``; evidence kept in memory).

Prints lines/s and the load average (the machine is shared: read the figures with it).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from reputable.evidence.detectors.mail_config import MailParams  # noqa: E402
from reputable.evidence.parsers import exim  # noqa: E402
from reputable.evidence.parsers.mailevent import ALL_EVENTS  # noqa: E402
from reputable.evidence.parsers.syslog_time import TimeParser  # noqa: E402
from reputable.evidence.sources.maillog import MailRun  # noqa: E402

NOW = datetime(2026, 3, 10, tzinfo=UTC)
CHUNK = 4 << 20
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _msgid(rng: random.Random) -> str:
    pick = rng.choices
    return f"{''.join(pick(_B62, k=6))}-{''.join(pick(_B62, k=6))}-{''.join(pick(_B62, k=2))}"


def generate(lines: int, seed: int) -> str:
    """Return an Exim main log of about *lines* lines."""
    rng = random.Random(seed)
    start = datetime(2026, 3, 2, tzinfo=UTC)
    out: list[str] = []
    senders = [f"198.51.100.{i}" for i in range(1, 200)]
    bots = [f"203.0.113.{i}" for i in range(1, 120)]
    n = 0
    while len(out) < lines:
        n += 1
        at = start + timedelta(seconds=n * 0.2)
        ts = at.strftime("%Y-%m-%d %H:%M:%S")
        roll = rng.random()
        if roll < 0.55:  # one accepted message: connection, <=, =>, Completed
            ip = rng.choice(senders)
            mid = _msgid(rng)
            out += [
                f"{ts} SMTP connection from (mail{ip[-2:]}.example) [{ip}]:4{n % 10000:04d} I=[192.0.2.25]:25 (TCP/IP connection count = 3)",
                f"{ts} {mid} <= news{n % 50}@list.example H=mail.list.example (mail{ip[-2:]}.example) [{ip}]:4{n % 10000:04d} I=[192.0.2.25]:25 P=esmtps X=TLS1.3:ECDHE_X25519__RSA_PSS_RSAE_SHA256__AES_256_GCM:256 CV=no S={rng.randint(900, 90000)} id={n}@list.example",
                f"{ts} {mid} => user{n % 900}@example.org R=local_user T=mail_spool",
                f"{ts} {mid} Completed",
            ]
        elif roll < 0.75:  # a bot: unknown users, relay attempts, an RBL hit
            ip = rng.choice(bots)
            reason = rng.choice(
                [
                    "Unknown user",
                    "relay not permitted",
                    f"{ip} is listed at zen.spamhaus.org (127.0.0.2)",
                    "Sender verify failed",
                ]
            )
            out.append(
                f"{ts} H=(bot{ip[-2:]}.example) [{ip}]:5{n % 10000:04d} I=[192.0.2.25]:25 F=<x{n}@bot.example> rejected RCPT <u{n % 3000}@example.org>: {reason}"
            )
        elif roll < 0.85:
            ip = rng.choice(bots)
            out.append(
                f"{ts} dovecot_login authenticator failed for H=(User) [{ip}]:6{n % 10000:04d} I=[192.0.2.25]:587: 535 Incorrect authentication data (set_id=u{n % 40}@example.org)"
            )
        elif roll < 0.9:
            ip = rng.choice(bots)
            out.append(
                f'{ts} SMTP protocol synchronization error (input sent without waiting for greeting): rejected connection from H=[{ip}]:7{n % 10000:04d} I=[192.0.2.25]:25 input="EHLO x\\r\\n"'
            )
        elif roll < 0.95:
            ip = rng.choice(senders + bots)
            out.append(f"{ts} SMTP connection from (h.example) [{ip}]:8{n % 10000:04d} I=[192.0.2.25]:25 lost D=12s")  # fmt: skip
        else:
            out.append(f"{ts} Start queue run: pid={n}")
            out.append(f"{ts} End queue run: pid={n}")
    return "\n".join(out[:lines]) + "\n"


def _load() -> str:
    return Path("/proc/loadavg").read_text(encoding="ascii").strip()


def pieces(text: str) -> list[str]:
    """Cut *text* into CHUNK-sized pieces at line ends."""
    out = []
    i = 0
    while i < len(text):
        j = text.find("\n", i + CHUNK)
        j = len(text) if j < 0 else j + 1
        out.append(text[i:j])
        i = j
    return out


def main() -> None:
    """Generate, time, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    text = generate(args.lines, args.seed)
    chunks = pieces(text)
    lines = text.count("\n")
    print(f"generated {lines:,} Exim lines ({len(text) / 1e6:.0f} MB); load average {_load()}")  # fmt: skip
    counts: Counter[object] = Counter()
    cpu = time.process_time()
    started = time.perf_counter()
    times = TimeParser(NOW)
    line = 1
    for chunk in chunks:
        for _ in exim.scan(chunk, first_line=line, times=times, wanted=ALL_EVENTS, counts=counts):
            pass
        line += chunk.count("\n")
    scan_s = time.perf_counter() - started
    scan_cpu = time.process_time() - cpu
    print(f"exim.scan, every event parsed and counted: {scan_s:.2f} s = {lines / scan_s:,.0f} lines/s (CPU {scan_cpu:.2f} s = {lines / scan_cpu:,.0f} lines/s); {sum(counts.values()):,} events")  # fmt: skip
    run = MailRun(MailParams(), TimeParser(NOW), fmt="exim")
    cpu = time.process_time()
    started = time.perf_counter()
    evidence = 0
    line = 1
    for chunk in chunks:
        evidence += len(run.detect(chunk, "bench", line, "exim"))
        line += chunk.count("\n")
    evidence += len(run.finish())
    run_s = time.perf_counter() - started
    run_cpu = time.process_time() - cpu
    print(f"parse + detect (MailRun, as ingest maillog): {run_s:.2f} s = {lines / run_s:,.0f} lines/s (CPU {run_cpu:.2f} s = {lines / run_cpu:,.0f} lines/s); {evidence} evidence; {run.tally.understood:,} understood")  # fmt: skip
    print(f"load average at the end: {_load()}")


if __name__ == "__main__":
    main()

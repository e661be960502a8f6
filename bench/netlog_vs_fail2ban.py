#!/usr/bin/env python3
"""Benchmark: `reputable ingest netlog --format sshd` against `fail2ban-regex` (sshd filter).

One run generates an sshd auth log (default 2,000,000 lines over three days) with a known
ground truth: fast brute-forcers, low-and-slow attackers (one guess every 8-30 minutes with
a new user name each time), legitimate users who sometimes mistype their password or user
name a few times (0-4 wrong passwords, 5% also a wrong user name, 4-15 s apart) before
logging in, banner/kex scanners, CRON and logind noise. Then, in
the same run, one after the other:

- ``reputable ingest netlog LOG --format sshd`` into a fresh SQLite store (wall time of the
  whole command, its own reported ingest time, peak RSS from wait4); the attackers found are
  the subjects of the stored ``compromised`` evidence;
- ``fail2ban-regex --print-no-missed --print-no-ignored LOG sshd.conf`` (Debian package
  fail2ban, the distribution's sshd filter), timed the same way; its detections are computed
  from a second ``-o row`` run with fail2ban's default jail (maxretry 5 within findtime 10m);
- the same reputable command on the first tenth of the log, to show memory is flat.

    python bench/netlog_vs_fail2ban.py                   # the full run (a few minutes)
    python bench/netlog_vs_fail2ban.py --lines 200000    # quick
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

START = datetime(2026, 11, 26, tzinfo=UTC).timestamp()
SPAN = 3 * 86400
NOW = "2026-11-29T12:00:00Z"
FILTER = Path("/etc/fail2ban/filter.d/sshd.conf")
USERS = [
    "root",
    "admin",
    "test",
    "user",
    "oracle",
    "postgres",
    "ubuntu",
    "git",
    "ftp",
    "guest",
    "pi",
    "support",
    "mysql",
    "www",
    "deploy",
]


@dataclass
class Truth:
    """Who attacked, and who did not."""

    fast: set[str]
    slow: set[str]
    legit: set[str]
    scanners: set[str]

    @property
    def attackers(self) -> set[str]:
        """Every address that guessed passwords."""
        return self.fast | self.slow


class Writer:
    """Builds the log as (time, seq, lines) sessions and writes them in time order."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.sessions: list[tuple[float, int, str]] = []
        self.lines = 0
        self.pid = 3000

    def stamp(self, ts: float) -> str:
        at = datetime.fromtimestamp(ts, UTC)
        return f"{at:%b} {at.day:2d} {at:%H:%M:%S}"  # syslog pads the day with a space

    def add(self, ts: float, messages: list[str], program: str = "sshd") -> None:
        self.pid = self.pid + 1 if self.pid < 4_000_000 else 3000
        head = f"{self.stamp(ts)} bastion {program}[{self.pid}]: "
        text = "".join(head + m + "\n" for m in messages)
        self.sessions.append((ts, len(self.sessions), text))
        self.lines += len(messages)

    def attempt(self, ts: float, ip: str, user: str) -> None:
        port = self.rng.randint(1024, 65535)
        if user == "root":
            msgs = [
                "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh"
                f" ruser= rhost={ip}  user=root",
                f"Failed password for root from {ip} port {port} ssh2",
                f"Received disconnect from {ip} port {port}:11: Bye Bye [preauth]",
                f"Disconnected from authenticating user root {ip} port {port} [preauth]",
            ]
        else:
            msgs = [
                f"Invalid user {user} from {ip} port {port}",
                "pam_unix(sshd:auth): check pass; user unknown",
                "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh"
                f" ruser= rhost={ip}",
                f"Failed password for invalid user {user} from {ip} port {port} ssh2",
                f"Received disconnect from {ip} port {port}:11: Bye Bye [preauth]",
                f"Disconnected from invalid user {user} {ip} port {port} [preauth]",
            ]
        self.add(ts, msgs)

    def login(self, ts: float, ip: str, user: str, mistakes: int, wrong_name: bool) -> None:
        port = self.rng.randint(1024, 65535)
        if wrong_name:
            typo = user[::-1]
            self.add(
                ts,
                [
                    f"Invalid user {typo} from {ip} port {port}",
                    f"Failed password for invalid user {typo} from {ip} port {port} ssh2",
                ],
            )
            ts += self.rng.uniform(4, 15)  # a person needs seconds to type a password again
            port = self.rng.randint(1024, 65535)
        for _ in range(mistakes):
            self.add(ts, [f"Failed password for {user} from {ip} port {port} ssh2"])
            ts += self.rng.uniform(4, 15)
        self.add(
            ts,
            [
                f"Accepted password for {user} from {ip} port {port} ssh2",
                f"pam_unix(sshd:session): session opened for user {user}(uid=1000) by (uid=0)",
            ],
        )
        end = ts + self.rng.uniform(60, 3600)
        self.add(end, [f"Disconnected from user {user} {ip} port {port}"])
        self.add(end, [f"New session {self.pid} of user {user}."], "systemd-logind")

    def write(self, path: Path) -> None:
        self.sessions.sort()
        with path.open("w", encoding="utf-8") as out:
            for _, _, text in self.sessions:
                out.write(text)


def addresses(rng: random.Random, first: int, count: int) -> list[str]:
    """Return *count* distinct addresses in first.0.0.0/8."""
    seen: set[str] = set()
    while len(seen) < count:
        seen.add(f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}")
    return sorted(seen)


def generate(path: Path, lines: int, seed: int) -> Truth:
    """Write an auth log of about *lines* lines to *path*; return its ground truth."""
    rng = random.Random(seed)
    w = Writer(rng)
    scale = lines / 2_000_000
    legit = addresses(rng, 81, max(20, int(500 * scale)))
    for n, ip in enumerate(legit):
        user = f"staff{n}"
        ts = START + rng.uniform(0, 7200)
        while ts < START + SPAN:
            mistakes = rng.choice((0, 0, 0, 0, 1, 2, 3, 4))
            w.login(ts, ip, user, mistakes, wrong_name=rng.random() < 0.05)
            ts += rng.uniform(3600, 4 * 3600)
    scanners = addresses(rng, 61, max(20, int(2000 * scale)))
    for ip in scanners:
        for _ in range(rng.randint(1, 4)):
            ts = START + rng.uniform(0, SPAN)
            port = rng.randint(1024, 65535)
            w.add(
                ts,
                [
                    rng.choice(
                        (
                            f"Did not receive identification string from {ip} port {port}",
                            f"banner exchange: Connection from {ip} port {port}: invalid format",
                            f"Unable to negotiate with {ip} port {port}: no matching key exchange method found."
                            " Their offer: diffie-hellman-group1-sha1 [preauth]",
                            f"Connection closed by {ip} port {port} [preauth]",
                        )
                    )
                ],
            )
    for ts in range(int(START), int(START + SPAN), 600):
        w.add(
            ts,
            [
                "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
                "pam_unix(cron:session): session closed for user root",
            ],
            "CRON",
        )
    slow = addresses(rng, 185, max(5, int(60 * scale)))
    for ip in slow:
        ts = START + rng.uniform(0, 3600)
        names = iter(rng.sample([f"{u}{i}" for u in USERS for i in range(40)], 600))
        while ts < START + SPAN:
            w.attempt(ts, ip, next(names))
            ts += rng.uniform(8 * 60, 30 * 60)
    fast: list[str] = []
    pool = addresses(rng, 45, max(50, int(900 * scale)))
    bursts = 0
    while w.lines < lines:
        ip = pool[bursts % len(pool)]
        bursts += 1
        if ip not in fast:
            fast.append(ip)
        ts = START + rng.uniform(0, SPAN - 3600)
        for _ in range(rng.randint(10, 400)):
            w.attempt(ts, ip, rng.choice(USERS))
            ts += rng.uniform(0.5, 6)
            if w.lines >= lines:
                break
    w.write(path)
    return Truth(fast=set(fast), slow=set(slow), legit=set(legit), scanners=set(scanners))


@dataclass
class Run:
    """One timed command."""

    seconds: float
    peak_mb: float
    stdout: str
    stderr: str
    cpu: float


def reputable_run(log: Path, work: Path, name: str) -> tuple[Run, set[str]]:
    """Ingest *log* into a fresh store; return the run and the addresses given evidence."""
    folder = work / name
    folder.mkdir()
    (folder / "reputable.toml").write_text('data_dir = "."\n', encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "reputable",
        "--config",
        str(folder / "reputable.toml"),
        "ingest",
        "netlog",
        str(log),
        "--format",
        "sshd",
        "--now",
        NOW,
    ]
    run = _isolated(command, folder)
    db = next(folder.rglob("*.db"))
    with sqlite3.connect(db) as conn:
        found = {row[0] for row in conn.execute("SELECT DISTINCT subject FROM evidence")}
    return run, found


def _isolated(command: list[str], cwd: Path) -> Run:
    """Run *command* in a child of a fresh helper so RUSAGE_CHILDREN is its own peak."""
    helper = [
        sys.executable,
        "-c",
        (
            "import resource,subprocess,sys,time;t=time.perf_counter();"
            "p=subprocess.run(sys.argv[1:],capture_output=True,text=True);"
            "s=time.perf_counter()-t;"
            "u=resource.getrusage(resource.RUSAGE_CHILDREN);"
            "sys.stdout.write(f'{s} {u.ru_maxrss} {p.returncode} {u.ru_utime+u.ru_stime}\\n'+p.stdout);"
            "sys.stderr.write(p.stderr)"
        ),
        *command,
    ]
    proc = subprocess.run(helper, cwd=cwd, capture_output=True, text=True, check=False)
    head, _, rest = proc.stdout.partition("\n")
    seconds, peak, code, cpu = head.split()
    if int(code):
        raise SystemExit(f"{' '.join(command[:6])} exited {code}: {proc.stderr[-2000:]}")
    return Run(float(seconds), int(peak) / 1024, rest, proc.stderr, float(cpu))


def fail2ban_detected(rows: Path) -> set[str]:
    """Return the addresses fail2ban's default jail bans: 5 failures within 10 minutes."""
    windows: dict[str, deque[float]] = defaultdict(deque)
    banned: set[str] = set()
    with rows.open(encoding="utf-8", errors="replace") as stream:
        for line in stream:
            if not line.startswith("['"):
                continue
            ip, _, rest = line[2:].partition("'")
            ts = float(rest.split(",", 2)[1])
            window = windows[ip]
            window.append(ts)
            while window and window[0] < ts - 600:
                window.popleft()
            if len(window) >= 5:
                banned.add(ip)
    return banned


def score(found: set[str], truth: Truth) -> tuple[float, float, int, int]:
    """Return recall, precision, false positives and misses of *found*."""
    hits = found & truth.attackers
    recall = len(hits) / len(truth.attackers)
    precision = len(hits) / len(found) if found else 1.0
    return recall, precision, len(found - truth.attackers), len(truth.attackers - found)


def main() -> None:
    """Generate, run both tools, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--skip-fail2ban", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="netlog-bench-") as tmp:
        work = Path(tmp)
        log = work / "auth.log"
        t = time.perf_counter()
        truth = generate(log, args.lines, args.seed)
        with log.open("rb") as stream:
            total = sum(block.count(b"\n") for block in iter(lambda: stream.read(1 << 24), b""))
        print(
            f"generated {total:,} lines ({log.stat().st_size / 1e6:.0f} MB) in"
            f" {time.perf_counter() - t:.1f} s: {len(truth.fast)} fast attackers,"
            f" {len(truth.slow)} low-and-slow, {len(truth.legit)} legitimate users,"
            f" {len(truth.scanners)} scanners"
        )
        print(
            f"python {sys.version.split()[0]} ({sys.implementation.name}); cores {os.cpu_count()};"
            f" load average {os.getloadavg()[0]:.2f}"
        )
        run, found = reputable_run(log, work, "full")
        inner = next((ln for ln in run.stdout.splitlines() if "lines/s" in ln), "")
        r_recall, r_precision, r_fp, r_miss = score(found, truth)
        small_log = work / "auth-tenth.log"
        with log.open("rb") as src, small_log.open("wb") as dst:
            for n, line in enumerate(src):
                if n >= total // 10:
                    break
                dst.write(line)
        small, _ = reputable_run(small_log, work, "tenth")
        print(
            f"reputable: {total / run.seconds:,.0f} lines/s wall ({run.seconds:.2f} s incl."
            f" start-up; CPU {run.cpu:.2f} s = {total / run.cpu:,.0f} lines/s), peak RSS"
            f" {run.peak_mb:.0f} MB (first tenth: {small.peak_mb:.0f} MB)"
        )
        print(f"  reported by the command: {inner.split('): ', 1)[-1].split(';')[0]}")
        print(
            f"  detection: recall {r_recall:.4f}, precision {r_precision:.4f}"
            f" ({len(found)} flagged, {r_fp} false positives, {r_miss} missed)"
        )
        if args.skip_fail2ban:
            return
        f2b = _isolated(
            ["fail2ban-regex", "--print-no-missed", "--print-no-ignored", str(log), str(FILTER)],
            work,
        )
        f2b_rows = work / "f2b-rows.txt"
        with f2b_rows.open("w") as rows:
            subprocess.run(
                ["fail2ban-regex", "-o", "row", str(log), str(FILTER)],
                cwd=work,
                stdout=rows,
                stderr=subprocess.DEVNULL,
                check=True,
            )
        banned = fail2ban_detected(f2b_rows)
        f_recall, f_precision, f_fp, f_miss = score(banned, truth)
        print(
            f"fail2ban-regex: {total / f2b.seconds:,.0f} lines/s wall ({f2b.seconds:.1f} s;"
            f" CPU {f2b.cpu:.1f} s = {total / f2b.cpu:,.0f} lines/s), peak RSS {f2b.peak_mb:.0f} MB"
        )
        print(
            f"  detection (default jail 5 in 10m): recall {f_recall:.4f}, precision"
            f" {f_precision:.4f} ({len(banned)} banned, {f_fp} false positives, {f_miss} missed,"
            f" {len(banned & truth.slow)}/{len(truth.slow)} low-and-slow)"
        )
        print(
            f"ratio: reputable is {f2b.seconds / run.seconds:.1f}x fail2ban-regex by wall time,"
            f" {f2b.cpu / run.cpu:.1f}x by CPU time"
        )
        print(f"load average during the run: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

"""Mail-log benchmark: `reputable` parse + detection vs fail2ban-regex with both postfix jails.

    python bench/maillog_vs_fail2ban.py [--lines 2000000] [--workdir /tmp/maillog-bench]

Generates one Postfix log with a ground truth (tests/evidence/maillog_gen.py: harvesters and
brute-forcers, plus list servers with 5-30% unknown recipients, carrier-grade NAT addresses
and users who mistype a password up to three times), then runs in child processes:

1. reputable's parse + detection (sources/maillog.py ``ingest_files``, evidence kept in memory);
2. ``reputable ingest maillog`` end to end into a fresh SQLite store;
3. ``fail2ban-regex`` with ``postfix[mode=more]`` (jail "postfix") and ``postfix[mode=auth]``
   (jail "postfix-sasl"), timed without output, then again with ``-o row`` for the matches,
   banned with the jail defaults (maxretry 5 within findtime 10m).

An address counts as found by reputable when its decayed harvest or compromised score reached
the policy's listing threshold at the time of one of its evidence (what `serve` would list).
Needs Debian's fail2ban (``apt-get install fail2ban``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict, deque
from datetime import UTC, datetime
from ipaddress import ip_address
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FILTER = "/etc/fail2ban/filter.d/postfix.conf"
NOW = "2026-03-05T00:00:00Z"


#: CPU seconds (user + system) of the last child _child ran: on a shared machine the fairer ratio.
LAST_CPU = [0.0]


def _child(cmd: list[str], stdout: int | None = subprocess.DEVNULL) -> tuple[float, float, bytes]:
    """Run *cmd*; return (wall seconds, peak RSS MB of that child, stdout); its CPU in LAST_CPU."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.DEVNULL)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:3]} exited {proc.returncode}")
    LAST_CPU[0] = usage.ru_utime + usage.ru_stime
    return time.perf_counter() - started, usage.ru_maxrss / 1024, out


def ours(log: Path, account: bool = True) -> None:
    """Child mode: parse + detect *log*, print seconds and the addresses that reach a listing.

    With *account* (what `ingest maillog` does for its summary) every line's event is counted,
    not only the detectors' ones; following (`serve`, ``--follow``) does not count them.
    """
    from reputable.core.clock import parse_instant
    from reputable.evidence.detectors.mail_config import MailParams
    from reputable.evidence.parsers.syslog_time import TimeParser
    from reputable.evidence.sources.maillog import MailRun, ingest_files

    kept = []
    started = time.perf_counter()
    cpu = time.process_time()
    run = MailRun(MailParams(), TimeParser(parse_instant(NOW)), account=account)
    ingest_files(run, [log], lambda items: kept.extend(items) or 0)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": cpu,
                "lines": run.tally.read,
                "flagged": sorted(listed(kept)),
            }
        )
    )


def listed(evidence: list) -> set[str]:  # type: ignore[type-arg]  # bench script
    """Return targets whose harvest/compromised score reached the listing threshold at some point."""
    from reputable.listings.policy import DEFAULT_RULES
    from reputable.reputation.scoring import ReputationParams, accumulate

    by_target = defaultdict(dict)
    for e in evidence:
        if e.cause.value in ("harvest", "compromised"):
            by_target[e.target][e.key] = e
    out = set()
    for target, items in by_target.items():
        rows = [
            (target, e.cause.value, e.observed_at.timestamp(), e.weight) for e in items.values()
        ]
        for _, _, at, _ in rows:
            scores = accumulate(rows, ReputationParams(), at)[target]
            if any(s.value >= DEFAULT_RULES[c].list_at for c, s in scores.items()):
                out.add(target)
                break
    return out


def banned(rows: bytes, maxretry: int = 5, findtime: float = 600) -> set[str]:
    """Return the IPs fail2ban bans from ``-o row`` output (maxretry matches within findtime)."""
    recent: dict[str, deque[float]] = defaultdict(deque)
    out = set()
    for line in rows.decode().splitlines():
        if not line.startswith("['"):
            continue
        ip, at = line[2:].split("',", 1)
        t = float(at.split(",", 1)[0])
        q = recent[ip]
        q.append(t)
        while q[0] < t - findtime:
            q.popleft()
        if len(q) >= maxretry:
            out.add(ip)
    return out


def score(found: set[str], bad: set[str]) -> tuple[float, float]:
    """Return (recall, precision)."""
    hits = len(found & bad)
    return hits / len(bad), hits / len(found) if found else 0.0


def main() -> None:
    """Generate, run both tools, print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/maillog-bench"))
    parser.add_argument("--ours", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--no-account", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--skip-fail2ban", action="store_true")
    args = parser.parse_args()
    if args.ours:
        ours(args.ours, account=not args.no_account)
        return
    from tests.evidence.maillog_gen import generate

    from reputable.evidence.model import scoring_target

    args.workdir.mkdir(parents=True, exist_ok=True)
    log = args.workdir / "mail.log"
    with log.open("w", encoding="utf-8") as f:
        truth = generate(f, args.lines, seed=1)
    (args.workdir / "truth.json").write_text(json.dumps(truth.to_json(), indent=1))
    lines = sum(1 for _ in log.open("rb"))
    os.sync()  # the 306 MB just written back to disk now, not during the first timed run
    bad_ips = truth.bad()
    bad = {scoring_target(ip_address(a), None) for a in bad_ips}
    print(
        f"python {sys.version.split()[0]} ({sys.executable}); log {log}: {lines:,} lines,"
        f" {log.stat().st_size / 1e6:.0f} MB; {len(truth.harvest)} harvesters,"
        f" {len(truth.compromised)} brute-forcers, {len(truth.list_servers)} list servers,"
        f" {len(truth.cgnat)} CGNAT, {len(truth.typo_users)} typo users"
    )
    _, mem, out = _child([sys.executable, __file__, "--ours", str(log)], subprocess.PIPE)
    result = json.loads(out)
    r, p = score(set(result["flagged"]), bad)
    ours_rate = lines / result["seconds"]
    print(
        f"reputable parse+detect : {result['seconds']:7.2f} s {ours_rate:>11,.0f} lines/s"
        f"  peak {mem:6.0f} MB  recall {r:.3f} precision {p:.3f}  (every event counted, as ingest;"
        f" CPU {result['cpu']:.2f} s = {lines / result['cpu']:,.0f} lines/s)"
    )
    _, fmem, fout = _child(
        [sys.executable, __file__, "--ours", str(log), "--no-account"], subprocess.PIPE
    )
    fast = json.loads(fout)
    print(
        f"reputable parse+detect : {fast['seconds']:7.2f} s {lines / fast['seconds']:>11,.0f} lines/s"
        f"  peak {fmem:6.0f} MB  (detectors' events only, as --follow and serve)"
    )
    db = args.workdir / "bench.db"
    db.unlink(missing_ok=True)
    cfg = args.workdir / "reputable.toml"
    cfg.write_text(f'data_dir = "{args.workdir}"\n[store]\ndsn = "sqlite:///{db}"\n')
    e2e, e2e_mem, _ = _child(
        [
            sys.executable,
            "-m",
            "reputable",
            "--config",
            str(cfg),
            "ingest",
            "maillog",
            str(log),
            "--now",
            NOW,
        ]
    )
    e2e_cpu = LAST_CPU[0]
    print(
        f"reputable ingest (CLI) : {e2e:7.2f} s {lines / e2e:>11,.0f} lines/s  peak {e2e_mem:6.0f} MB  (process start, SQLite store; CPU {e2e_cpu:.2f} s)"
    )
    if args.skip_fail2ban:
        return
    f2b_secs = 0.0
    f2b_cpu = 0.0
    f2b_mem = 0.0
    found: set[str] = set()
    for mode in ("more", "auth"):
        spec = f"{FILTER}[mode={mode}]"
        s, m, _ = _child(["fail2ban-regex", str(log), spec])
        f2b_secs += s
        f2b_cpu += LAST_CPU[0]
        f2b_mem = max(f2b_mem, m)
        _, _, rows = _child(["fail2ban-regex", "-o", "row", str(log), spec], subprocess.PIPE)
        found |= {scoring_target(ip_address(ip), None) for ip in banned(rows)}
        print(
            f"fail2ban-regex {mode:<5}   : {s:7.2f} s {lines / s:>11,.0f} lines/s  peak {m:6.0f} MB"
        )
    r2, p2 = score(found, bad)
    print(
        f"fail2ban both jails    : {f2b_secs:7.2f} s {lines / f2b_secs:>11,.0f} lines/s  peak {f2b_mem:6.0f} MB"
        f"  recall {r2:.3f} precision {p2:.3f}"
    )
    print(
        f"ratio (reputable parse+detect vs fail2ban both jails): {f2b_secs / result['seconds']:.1f}x;"
        f" CLI end to end: {f2b_secs / e2e:.1f}x"
    )
    print(
        f"by CPU time (fairer on a shared machine): fail2ban both jails {f2b_cpu:.2f} s;"
        f" parse+detect {f2b_cpu / result['cpu']:.1f}x, CLI end to end {f2b_cpu / e2e_cpu:.1f}x"
    )
    print(f"fail2ban false positives: {len(found - bad)} ({sorted(found - bad)[:5]} ...)")
    print(f"measured {datetime.now(UTC):%Y-%m-%d %H:%M}Z")


if __name__ == "__main__":
    main()

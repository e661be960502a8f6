"""Prometheus text exposition of the DNS workers' counters (format 0.0.4)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS = ("hit", "miss", "refused", "error")


def read_worker_files(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Return the counter records of the workers whose files exist and parse."""
    records: list[dict[str, Any]] = []
    for path in paths:
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return records


def _tcp(records: list[dict[str, Any]], index: int) -> int:
    return sum(int(r.get("tcp", [0, 0, 0])[index]) for r in records)


@dataclass
class Activity:
    """Counters the supervisor keeps in memory (reset when serve restarts)."""

    policy_runs: int = 0
    policy_seconds_total: float = 0.0
    policy_last_seconds: float = 0.0
    policy_written: int = 0
    policy_delisted: int = 0
    snapshot_build_seconds: float | None = None
    #: rebuilds by success: {True: n, False: n}
    snapshot_builds: dict[bool, int] = field(default_factory=lambda: {True: 0, False: 0})
    #: re-probe results by outcome
    probes: dict[str, int] = field(default_factory=dict)


def render_activity(activity: Activity) -> str:
    """Return the Prometheus text of the supervisor's own counters."""
    lines = [
        "# HELP reputable_policy_evaluations_total Incremental policy evaluations run by serve.",
        "# TYPE reputable_policy_evaluations_total counter",
        f"reputable_policy_evaluations_total {activity.policy_runs}",
        "# HELP reputable_policy_evaluation_seconds_total Time spent in policy evaluations.",
        "# TYPE reputable_policy_evaluation_seconds_total counter",
        f"reputable_policy_evaluation_seconds_total {activity.policy_seconds_total:.6f}",
        "# HELP reputable_policy_last_evaluation_seconds Duration of the last evaluation.",
        "# TYPE reputable_policy_last_evaluation_seconds gauge",
        f"reputable_policy_last_evaluation_seconds {activity.policy_last_seconds:.6f}",
        "# HELP reputable_policy_changes_total Listings the policy wrote or ended.",
        "# TYPE reputable_policy_changes_total counter",
        f'reputable_policy_changes_total{{change="written"}} {activity.policy_written}',
        f'reputable_policy_changes_total{{change="ended"}} {activity.policy_delisted}',
        "# HELP reputable_snapshot_builds_total Snapshot rebuilds by serve, by result.",
        "# TYPE reputable_snapshot_builds_total counter",
        f'reputable_snapshot_builds_total{{result="ok"}} {activity.snapshot_builds[True]}',
        f'reputable_snapshot_builds_total{{result="failed"}} {activity.snapshot_builds[False]}',
        "# HELP reputable_snapshot_build_seconds Wall time of the last rebuild (child process).",
        "# TYPE reputable_snapshot_build_seconds gauge",
    ]
    if activity.snapshot_build_seconds is not None:
        lines.append(f"reputable_snapshot_build_seconds {activity.snapshot_build_seconds:.6f}")
    lines += [
        "# HELP reputable_probe_results_total Re-probes of probe-made listings, by result.",
        "# TYPE reputable_probe_results_total counter",
    ]
    for result, count in sorted(activity.probes.items()):
        lines.append(f'reputable_probe_results_total{{result="{_label(result)}"}} {count}')
    return "\n".join(lines) + "\n"


def render_server(
    *,
    version: str,
    python: str,
    started: float,
    now: float,
    snapshot_mtime: float | None,
    listings: dict[tuple[str, str], int],
    evidence: dict[str, int] | None = None,
    feeds: dict[str, tuple[float | None, str | None]] | None = None,
    followers: dict[str, tuple[int, float]] | None = None,
) -> str:
    """Return the supervisor's own gauges: build info, uptime, snapshot age, listings."""
    lines = [
        "# HELP reputable_build_info The running reputable's version (value always 1).",
        "# TYPE reputable_build_info gauge",
        f'reputable_build_info{{version="{version}",python="{python}"}} 1',
        "# HELP reputable_start_time_seconds When serve started, seconds since the epoch.",
        "# TYPE reputable_start_time_seconds gauge",
        f"reputable_start_time_seconds {started:.3f}",
    ]
    if snapshot_mtime is not None:
        lines += [
            "# HELP reputable_snapshot_age_seconds Seconds since the snapshot file was written.",
            "# TYPE reputable_snapshot_age_seconds gauge",
            f"reputable_snapshot_age_seconds {max(0.0, now - snapshot_mtime):.3f}",
        ]
    lines += [
        "# HELP reputable_listings Active listings in the store, by zone and cause.",
        "# TYPE reputable_listings gauge",
    ]
    for (zone, cause), count in sorted(listings.items()):
        lines.append(f'reputable_listings{{zone="{zone}",cause="{cause}"}} {count}')
    lines += [
        "# HELP reputable_evidence Evidence rows kept in the store, by source.",
        "# TYPE reputable_evidence gauge",
    ]
    for source, count in sorted((evidence or {}).items()):
        lines.append(f'reputable_evidence{{source="{_label(source)}"}} {count}')
    lines += [
        "# HELP reputable_feed_up 1 if the feed's last sync succeeded, 0 if it failed.",
        "# TYPE reputable_feed_up gauge",
    ]
    ages: list[str] = []
    for name, (success, error) in sorted((feeds or {}).items()):
        lines.append(f'reputable_feed_up{{feed="{_label(name)}"}} {0 if error else 1}')
        if success is not None:
            ages.append(f'reputable_feed_age_seconds{{feed="{_label(name)}"}} {now - success:.3f}')
    lines += [
        "# HELP reputable_feed_age_seconds Seconds since the feed's last good sync.",
        "# TYPE reputable_feed_age_seconds gauge",
        *ages,
        "# HELP reputable_follower_lag_bytes Bytes of a followed log file not read yet.",
        "# TYPE reputable_follower_lag_bytes gauge",
    ]
    seconds: list[str] = []
    for name, (behind, waited) in sorted((followers or {}).items()):
        lines.append(f'reputable_follower_lag_bytes{{source="{_label(name)}"}} {behind}')
        seconds.append(f'reputable_follower_lag_seconds{{source="{_label(name)}"}} {waited:.3f}')
    lines += [
        "# HELP reputable_follower_lag_seconds How long the unread bytes have waited.",
        "# TYPE reputable_follower_lag_seconds gauge",
        *seconds,
    ]
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    """Return *value* escaped for a Prometheus label value."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(records: list[dict[str, Any]], *, serial: int | None = None) -> str:
    """Return Prometheus text for the summed counters of *records*."""
    totals: dict[tuple[str, str], int] = {}
    for record in records:
        zones = record["zones"]
        counters = record["counters"]
        for zi, zone in enumerate(zones):
            for ri, result in enumerate(RESULTS):
                key = (zone, result)
                totals[key] = totals.get(key, 0) + int(counters[zi * len(RESULTS) + ri])
    lines = [
        "# HELP reputable_dns_queries_total DNS queries answered, by zone and result.",
        "# TYPE reputable_dns_queries_total counter",
    ]
    for (zone, result), value in sorted(totals.items()):
        lines.append(f'reputable_dns_queries_total{{zone="{zone}",result="{result}"}} {value}')
    lines += [
        "# HELP reputable_dns_workers DNS worker processes reporting.",
        "# TYPE reputable_dns_workers gauge",
        f"reputable_dns_workers {len(records)}",
        "# HELP reputable_dns_snapshot_reloads_total Snapshot swaps done by the workers.",
        "# TYPE reputable_dns_snapshot_reloads_total counter",
        f"reputable_dns_snapshot_reloads_total {sum(int(r.get('reloads', 0)) for r in records)}",
    ]
    dropped = sum(int(r.get("rrl", [0, 0])[0]) for r in records)
    slipped = sum(int(r.get("rrl", [0, 0])[1]) for r in records)
    lines += [
        "# HELP reputable_dns_rrl_total UDP answers held back by response rate limiting.",
        "# TYPE reputable_dns_rrl_total counter",
        f'reputable_dns_rrl_total{{action="dropped"}} {dropped}',
        f'reputable_dns_rrl_total{{action="slipped"}} {slipped}',
        "# HELP reputable_dns_tcp_connections Open DNS-over-TCP connections.",
        "# TYPE reputable_dns_tcp_connections gauge",
        f"reputable_dns_tcp_connections {sum(int(r.get('tcp', [0])[0]) for r in records)}",
        "# HELP reputable_dns_tcp_closed_total TCP connections closed by the limits (docs/dns.md).",
        "# TYPE reputable_dns_tcp_closed_total counter",
        f'reputable_dns_tcp_closed_total{{why="evicted"}} {_tcp(records, 1)}',
        f'reputable_dns_tcp_closed_total{{why="refused"}} {_tcp(records, 2)}',
    ]
    if serial is not None:
        lines += [
            "# HELP reputable_listings_serial Change serial of the store.",
            "# TYPE reputable_listings_serial gauge",
            f"reputable_listings_serial {serial}",
        ]
    lines += [
        "# HELP reputable_dns_snapshot_serial Serial of the snapshot each worker answers from.",
        "# TYPE reputable_dns_snapshot_serial gauge",
    ]
    for record in records:
        worker, serial = record["worker"], record.get("serial", 0)
        lines.append(f'reputable_dns_snapshot_serial{{worker="{worker}"}} {serial}')
    return "\n".join(lines) + "\n"

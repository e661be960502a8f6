"""Prometheus text exposition of the DNS workers' counters (format 0.0.4)."""

from __future__ import annotations

import json
from collections.abc import Iterable
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

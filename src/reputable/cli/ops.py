"""`reputable status` and `reputable reload`: look at and drive a running `reputable serve`."""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request
from typing import Annotated, Any

import typer

from reputable.app import pid_path
from reputable.cli.common import (
    Format,
    JsonOpt,
    PlainOpt,
    action_format,
    console,
    show_result,
    show_summary,
    state,
)
from reputable.core.errors import ReputableError

MetricsOpt = Annotated[
    str,
    typer.Option("--metrics", help="HOST:PORT of serve's --metrics listener."),
]


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h{minutes:02d}m" if days else f"{hours}h{minutes:02d}m{secs:02d}s"


def fetch_status(listen: str) -> dict[str, Any]:
    """Return the JSON of GET /status on serve's metrics listener *listen* (HOST:PORT)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ReputableError(f"--metrics {listen!r}: use HOST:PORT, e.g. 127.0.0.1:9153")
    host = host.strip("[]")
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}/status"
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            data: dict[str, Any] = json.loads(reply.read())
            return data
    except (OSError, ValueError) as exc:
        raise ReputableError(
            f"no reputable serve answers on {url} ({exc}); is serve running, and is --metrics"
            " the address given to serve --metrics?"
        ) from exc


def status(
    metrics: MetricsOpt = "127.0.0.1:9153",
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Show the running server: uptime, snapshot serial and age, listings, queries/s, sources.

    --plain prints one ``key<TAB>value`` line per field (``snapshot.age_seconds``, ...).
    """
    fmt = action_format(as_json, plain)
    data = fetch_status(metrics)
    if fmt is not Format.TABLE:
        show_summary(fmt, data)
        return
    snap = data["snapshot"]
    age = snap.get("age_seconds")
    lines = [
        f"reputable {data['version']} pid {data['pid']}, up {_duration(data['uptime_seconds'])},"
        f" {data['reloads']} reloads"
        + ("; policy leader" if data.get("policy_leader") else "; policy follower"),
        f"store serial {data['serial']}; snapshot serial {snap.get('serial', '-')}, "
        + (f"{age:.0f} s old" if age is not None else "missing"),
        f"listings {data['listings']}; DNS workers {data['dns_workers']};"
        f" {data['queries_per_second']:.1f} queries/s ({data['queries_total']} total)",
    ]
    for feed in data["feeds"]:
        state_text = "ok" if feed["ok"] else f"failing: {feed['error']}"
        lines.append(f"feed {feed['name']}: {state_text}")
    for follower in data["followers"]:
        lines.append(
            f"source {follower['name']}: {follower['lag_bytes']} bytes behind"
            f" ({follower['lag_seconds']:.0f} s)"
        )
    for text in lines:
        console.print(text, highlight=False, markup=False)


def reload(ctx: typer.Context, as_json: JsonOpt = False, plain: PlainOpt = False) -> None:
    """Make serve re-read its config (same as SIGHUP); DNS keeps answering throughout."""
    fmt = action_format(as_json, plain)
    config = state(ctx).config
    path = pid_path(config)
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise ReputableError(
            f"cannot read serve's pid from {path} ({exc}): is serve running with this --config?"
        ) from exc
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise ReputableError(
            f"serve (pid {pid} in {path}) is not running; remove the stale file"
        ) from None
    record = {"pid": pid, "config": str(config.path) if config.path else None}
    show_result(fmt, record, f"asked serve (pid {pid}) to reload {config.path}")


def register(app: typer.Typer) -> None:
    """Add `status` and `reload` to *app*."""
    app.command("status")(status)
    app.command("reload")(reload)

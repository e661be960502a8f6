"""Operating a running server: readiness, JSON logs, health, metrics, backups, --version."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from reputable.store.dsn import open_dsn
from reputable.store.sqlite_tx import transaction
from reputable.testing import RunningServer, cli, free_port, wait_for, write_config
from tests.conftest import sqlite_only, use_store


@pytest.fixture
def running(tmp_path: Path, store_dsn: str) -> Iterator[tuple[Path, RunningServer, socket.socket]]:
    """A server with JSON logs and two listings, started with $NOTIFY_SOCKET set."""
    extra = '[log]\nformat = "json"\n'
    config = use_store(write_config(tmp_path, dns_port=free_port(), extra=extra), store_dsn)
    cli(config, "list", "add", "198.51.100.7", "--cause", "spam")
    cli(config, "list", "add", "evil.example", "--cause", "malware_host")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(10)
    try:
        with RunningServer(config, env={"NOTIFY_SOCKET": str(tmp_path / "notify")}) as server:
            yield config, server, notify
    finally:
        notify.close()


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@sqlite_only  # readiness does not depend on the store: once is enough
def test_serve_notifies_systemd_when_ready(
    running: tuple[Path, RunningServer, socket.socket],
) -> None:
    """serve sends READY=1 with its MAINPID on $NOTIFY_SOCKET once DNS answers."""
    _, server, notify = running
    message = notify.recv(4096).decode()
    assert server.proc is not None
    assert message.startswith("READY=1\n")
    assert f"MAINPID={server.proc.pid}" in message


@sqlite_only  # the log format does not depend on the store: once is enough
def test_json_logs_are_one_object_a_line(
    running: tuple[Path, RunningServer, socket.socket],
) -> None:
    """Every serve log line parses as JSON with a UTC timestamp and plain HOST:PORT values."""
    _, server, _ = running
    lines = [json.loads(line) for line in server.log().splitlines() if line.strip()]
    events = {entry["event"]: entry for entry in lines}
    assert "serve_ready" in events
    assert all(entry["ts"].endswith("Z") for entry in lines)
    listen = events["dns_ready"]["listen"]
    assert listen.startswith("127.0.0.1:") and "(" not in listen


@sqlite_only  # /health on the metrics port asks DNS, not the store: once is enough
def test_health_answers_from_dns(running: tuple[Path, RunningServer, socket.socket]) -> None:
    """GET /health asks the DNS listener for the zone SOA and reports its serial."""
    _, server, _ = running
    status, body = _get(server.metrics_port, "/health")
    report = json.loads(body)
    assert status == 200, body
    assert report["status"] == "ok" and report["zone"] == "bl.reputable.test"
    assert isinstance(report["serial"], int)


def test_metrics_show_build_info_listings_and_snapshot_age(
    running: tuple[Path, RunningServer, socket.socket],
) -> None:
    """/metrics carries build info, listings by zone and cause, and the snapshot's age."""
    _, server, _ = running
    status, text = _get(server.metrics_port, "/metrics")
    assert status == 200
    from reputable import __version__

    assert f'reputable_build_info{{version="{__version__}"' in text
    assert 'reputable_listings{zone="bl.reputable.test",cause="spam"} 1' in text
    assert 'reputable_listings{zone="dbl.reputable.test",cause="malware_host"} 1' in text
    age = next(x for x in text.splitlines() if x.startswith("reputable_snapshot_age_seconds "))
    assert 0 <= float(age.split()[1]) < 3600

    def evaluations() -> int:
        nonlocal text
        text = _get(server.metrics_port, "/metrics")[1]
        runs = next(
            x for x in text.splitlines() if x.startswith("reputable_policy_evaluations_total ")
        )
        return int(runs.split()[1])

    # The policy loop's first run follows serve_ready (then every policy.interval, 5 s).
    wait_for(lambda: evaluations() >= 1, 60, "a policy evaluation", server.log)
    assert 'reputable_policy_changes_total{change="written"}' in text
    assert 'reputable_snapshot_builds_total{result="failed"} 0' in text


@sqlite_only  # store backup is SQLite's (PostgreSQL: pg_dump, tests/store/test_maintenance.py)
def test_backup_of_a_live_store_is_complete(
    running: tuple[Path, RunningServer, socket.socket], tmp_path: Path
) -> None:
    """`store backup` copies the store while serve runs; the copy holds the listings."""
    config, _, _ = running
    target = tmp_path / "backup.db"
    out = cli(config, "store", "backup", str(target), "--json")
    report = json.loads(out.stdout)
    assert report["target"] == str(target) and report["bytes"] > 0
    with sqlite3.connect(target) as db:
        subjects = {row[0] for row in db.execute("SELECT subject FROM listings")}
    assert subjects == {"198.51.100.7", "evil.example"}
    again = cli(config, "store", "backup", str(target), check=False)
    assert again.returncode == 2 and "exists" in again.stderr


def test_version_option_prints_the_version() -> None:
    """`reputable --version` prints "reputable X.Y.Z" and exits 0."""
    from reputable import __version__

    done = subprocess.run(
        [sys.executable, "-m", "reputable", "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == f"reputable {__version__}"


@pytest.mark.parametrize(
    "args",
    [
        ("list", "show"),
        ("allow", "show"),
        ("stats",),
        ("explain", "198.51.100.7"),
        ("feed", "list"),
    ],
)
def test_read_only_commands_create_no_files(tmp_path: Path, args: tuple[str, ...]) -> None:
    """A read-only command in an empty folder creates nothing and warns of the missing store."""
    done = subprocess.run(
        [sys.executable, "-m", "reputable", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert list(tmp_path.iterdir()) == []
    assert done.returncode in {0, 1}, done.stderr
    assert "store_missing" in done.stderr and "reputable.db" in done.stderr
    assert "Traceback" not in done.stderr


def test_no_shipped_text_cites_the_unshipped_design_notes() -> None:
    """Product code, docs and README cite docs/ files, not the team's DESIGN.md or STYLE.md."""
    root = Path(__file__).resolve().parents[2]
    texts = [*root.glob("src/**/*.py"), *root.glob("docs/**/*.md"), root / "README.md"]
    offenders = [
        str(p.relative_to(root))
        for p in texts
        if "DESIGN.md" in p.read_text(encoding="utf-8")
        or "STYLE.md" in p.read_text(encoding="utf-8")
    ]
    assert offenders == []
    assert (root / "docs" / "causes.md").is_file()


def test_serve_prunes_old_evidence_and_vacuum_shrinks(
    tmp_path: Path, store_backend: str, store_dsn: str
) -> None:
    """serve deletes evidence past the retention in the background; `store vacuum` then runs."""
    extra = '[retention]\nevidence = "300d"\n'
    config = use_store(write_config(tmp_path, dns_port=free_port(), extra=extra), store_dsn)
    cli(config, "list", "add", "198.51.100.7", "--cause", "spam")
    store = open_dsn(store_dsn)
    try:
        with transaction(store._db, "test write") as db:
            db.executemany(
                "INSERT INTO evidence (key, subject, target, cause, source, observed_at, weight,"
                " detail) VALUES (?, '198.51.100.9', '198.51.100.9', 'spam', 'old', ?, 1, '{}')",
                [(f"k{i}", 946_684_800.0 + i) for i in range(2500)],  # January 2000
            )
        with RunningServer(config) as server:
            wait_for(lambda: "evidence_pruned" in server.log(), 60, "the pruning", server.log)
        left = store._db.execute("SELECT COUNT(*) FROM evidence WHERE source = 'old'").fetchone()
        assert tuple(left) == (0,)
    finally:
        store.close()
    if store_backend == "sqlite":  # PostgreSQL's is its own VACUUM (tests/cli/test_commands.py)
        done = cli(config, "store", "vacuum")
        assert done.stdout.startswith(f"vacuumed {tmp_path / 'store.db'}")


def test_bad_retention_stops_serve_before_binding(tmp_path: Path) -> None:
    """A retention shorter than the policy's look-back is refused with exit 2 and the fix."""
    config = write_config(tmp_path, dns_port=free_port(), extra='[retention]\nevidence = "7d"\n')
    done = cli(config, "serve", "--metrics", "", check=False, timeout=30)
    assert done.returncode == 2
    assert "retention.evidence" in done.stderr and "Traceback" not in done.stderr


def wait_leader(metrics_port: int, timeout: float = 60) -> bool:
    """True once the node's /metrics says ``reputable_policy_leader 1`` (False after *timeout*)."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=3) as reply:
            if "\nreputable_policy_leader 1\n" in reply.read().decode():
                return True
        time.sleep(0.2)
    return False


def test_status_reports_the_running_server(
    running: tuple[Path, RunningServer, socket.socket],
) -> None:
    """`reputable status --json` shows uptime, serials, listings and queries/s over HTTP."""
    config, server, _ = running
    listen = f"127.0.0.1:{server.metrics_port}"
    data = json.loads(cli(config, "status", "--metrics", listen, "--json").stdout)
    assert server.proc is not None and data["pid"] == server.proc.pid
    assert data["listings"] == 2 and data["dns_workers"] == 1
    assert data["snapshot"]["serial"] == data["serial"]
    assert data["uptime_seconds"] > 0 and data["queries_per_second"] >= 0
    text = cli(config, "status", "--metrics", listen).stdout
    assert "listings 2" in text and "queries/s" in text
    # The only node on its store leads the policy (store/coordination.py), and says so.
    assert wait_leader(server.metrics_port)
    assert "policy leader" in cli(config, "status", "--metrics", listen).stdout
    down = cli(config, "status", "--metrics", f"127.0.0.1:{free_port()}", check=False)
    assert down.returncode == 3 and "is serve running" in down.stderr  # a runtime failure


def test_reload_applies_new_codes_without_dropping_queries(tmp_path: Path) -> None:
    """`reputable reload` swaps in a new return code while every query keeps being answered."""
    import dns.message
    import dns.query

    port = free_port()
    config = write_config(tmp_path, dns_port=port)
    cli(config, "list", "add", "198.51.100.7", "--cause", "spam")
    name = "7.100.51.198.bl.reputable.test"
    with RunningServer(config) as server:
        answers: list[set[str]] = []
        failures: list[str] = []

        def ask() -> set[str]:
            reply = dns.query.udp(
                dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=2
            )
            return {r.address for rrset in reply.answer for r in rrset}

        assert ask() == {"127.0.0.2"}
        config.write_text(config.read_text() + '\n[zones.ip.codes]\nspam = "127.0.0.20"\n')
        assert "asked serve" in cli(config, "reload").stdout
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                answers.append(ask())
            except Exception as exc:  # a dropped query is what this test looks for
                failures.append(repr(exc))
            if answers and answers[-1] == {"127.0.0.20"}:
                break
        assert failures == []
        assert answers[-1] == {"127.0.0.20"}
        assert "config_reloaded" in server.log()
        config.write_text(config.read_text() + "\n[dns]\nworkers = 'many'\n")
        assert server.proc is not None
        server.proc.send_signal(signal.SIGHUP)  # SIGHUP does the same as `reputable reload`
        wait_for(lambda: "reload_failed" in server.log(), 60, "reload_failed", server.log)
        assert ask() == {"127.0.0.20"}
        # What needs a restart is measured against the running config, not the last reload:
        # a [dns] change and then its revert (without a restart) needs none any more.
        good = config.read_text().replace("\n[dns]\nworkers = 'many'\n", "")
        config.write_text(good.replace("workers = 1 ", "workers = 2 ", 1))
        assert "asked serve" in cli(config, "reload").stdout
        wait_for(
            lambda: server.log().count("config_reloaded") == 2, 60, "config_reloaded", server.log
        )
        assert "restart_needed=dns" in server.log().split("config_reloaded")[-1].splitlines()[0]
        config.write_text(good)
        assert "asked serve" in cli(config, "reload").stdout
        wait_for(
            lambda: server.log().count("config_reloaded") == 3, 60, "config_reloaded", server.log
        )
        assert "restart_needed=none" in server.log().split("config_reloaded")[-1].splitlines()[0]

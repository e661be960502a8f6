"""`reputable config check|show` and the config defects seen from the command line (issue 15)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from reputable.config import DEFAULT_TOML
from reputable.testing import free_port

BAD = '[dns]\nworkrs = 2\nfast_path = "yes"\n[zones.ip]\nttl = -5\n'


def run(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``reputable ARGS`` in *cwd* and return its result (text)."""
    env = {k: v for k, v in os.environ.items() if k != "REPUTABLE_CONFIG"} | {"COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "reputable", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def config_file(folder: Path, extra: str = "") -> Path:
    """Write a reputable.toml on free loopback ports (HTTP off) into *folder*."""
    text = DEFAULT_TOML.replace("127.0.0.1:5300", f"127.0.0.1:{free_port()}")
    text = text.replace('listen = "127.0.0.1:8080"', 'listen = ""')
    path = folder / "reputable.toml"
    path.write_text(text + extra, encoding="utf-8")
    return path


def test_check_passes_a_good_file_with_exit_0(tmp_path: Path) -> None:
    """A valid file prints OK and exits 0."""
    config_file(tmp_path)
    result = run(tmp_path, "config", "check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "reputable.toml: OK"


def test_check_lists_every_problem_in_plain_text_with_exit_2(tmp_path: Path) -> None:
    """Problems keep their [section] names (no markup eaten) and exit with 2."""
    (tmp_path / "bad.toml").write_text(BAD, encoding="utf-8")
    result = run(tmp_path, "config", "check", "--config", "bad.toml")
    assert result.returncode == 2
    assert "bad.toml: 3 problem(s):" in result.stderr
    assert '[dns] workrs = 2: unknown key; did you mean "workers"?' in result.stderr
    assert '[dns] fast_path = "yes": must be true or false' in result.stderr
    assert "[zones.ip] ttl = -5:" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_json_lists_path_value_and_message(tmp_path: Path) -> None:
    """--json prints the problems as objects a script can read."""
    (tmp_path / "bad.toml").write_text(BAD, encoding="utf-8")
    result = run(tmp_path, "--config", "bad.toml", "config", "check", "--json")
    assert result.returncode == 2
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert {k: v for k, v in data["errors"][1].items() if k != "message"} == {
        "path": "dns.workrs",
        "value": 2,
    }
    assert [e["path"] for e in data["errors"]] == ["dns.fast_path", "dns.workrs", "zones.ip.ttl"]


def test_every_command_reports_a_bad_file_with_section_names(tmp_path: Path) -> None:
    """Any command given a bad file prints the [section] names Rich used to eat, exit 2."""
    (tmp_path / "bad.toml").write_text(BAD, encoding="utf-8")
    result = run(tmp_path, "--config", "bad.toml", "list", "show")
    assert result.returncode == 2
    assert "[dns] workrs" in result.stderr and "[zones.ip] ttl" in result.stderr


def test_show_prints_the_effective_config_that_checks_clean(tmp_path: Path) -> None:
    """`config show` fills in defaults, hides secrets and its output passes `config check`."""
    config_file(tmp_path, '\n[mail]\npassword = "hunter2"\n')
    shown = run(tmp_path, "config", "show")
    assert shown.returncode == 0, shown.stderr
    assert "hunter2" not in shown.stdout and 'password = "<redacted>"' in shown.stdout
    assert "[detectors.mail.harvest]" in shown.stdout  # defaults of unwritten sections too
    (tmp_path / "shown.toml").write_text(shown.stdout, encoding="utf-8")
    assert run(tmp_path, "config", "check", "--config", "shown.toml").returncode == 0
    as_json = json.loads(run(tmp_path, "config", "show", "--json").stdout)
    assert as_json["dns"]["fast_path"] is True


def _snapshot(tmp_path: Path) -> None:
    """Build a snapshot so that a starting serve would answer DNS at once (the early path)."""
    result = run(tmp_path, "snapshot", "build")
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra",
    [
        "\n[detectors.mail.harvest]\nshar = 0.4\n",  # the schema's part
        '\n[policy_service]\nactions = { spam = "EXPLODE" }\n',  # a stage's own rule
    ],
)
@pytest.mark.parametrize("built", [True, False], ids=["snapshot", "first-build"])
def test_serve_stops_before_binding_on_a_bad_section(
    tmp_path: Path, extra: str, built: bool
) -> None:
    """A bad section stops serve with exit 2 before it binds DNS, without a traceback.

    The test holds the DNS port itself: a serve that bound before checking would report the
    busy port (or answer) instead of the bad key. Without a snapshot serve checks beside its
    first build (cli/launch.py), and stops all the same.
    """
    path = config_file(tmp_path)
    if built:
        _snapshot(tmp_path)
    port = int(path.read_text(encoding="utf-8").split("127.0.0.1:", 1)[1].split('"', 1)[0])
    with path.open("a", encoding="utf-8") as out:
        out.write(extra)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
        udp.bind(("127.0.0.1", port))
        tcp.bind(("127.0.0.1", port))
        tcp.listen()
        result = run(tmp_path, "serve", "--metrics", "")
    assert result.returncode == 2
    assert "shar" in result.stderr or "EXPLODE" in result.stderr, result.stderr
    assert "in use" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ("127.0.0.1:99999", "port 99999 is out of range"),
        ("garbage", "use --metrics HOST:PORT"),
        ("127.0.0.1", "use --metrics HOST:PORT"),
    ],
)
def test_serve_refuses_a_bad_metrics_address(tmp_path: Path, metrics: str, message: str) -> None:
    """serve --metrics with a bad address exits 2 with one line, no traceback."""
    config_file(tmp_path)
    result = run(tmp_path, "serve", "--metrics", metrics)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_serve_refuses_a_busy_metrics_port(tmp_path: Path) -> None:
    """A metrics port another process holds stops serve with exit 2 and the address named."""
    config_file(tmp_path)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run(tmp_path, "serve", "--metrics", f"127.0.0.1:{port}")
    assert result.returncode == 2
    assert f"serve --metrics 127.0.0.1:{port}: cannot listen there" in result.stderr
    assert "Traceback" not in result.stderr


def test_export_to_a_missing_folder_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    """`export -o /typo/dir/bl` fails naming the folder; no folder is created."""
    config_file(tmp_path)
    target = tmp_path / "typo" / "dir" / "bl"
    for args in (
        ["export", "rbldnsd", "-z", "bl.reputable.test", "-o", str(target)],
        ["export", "nftables", "-o", str(target)],
    ):
        result = run(tmp_path, *args)
        assert result.returncode == 2, result.stderr
        assert "typo/dir does not exist" in result.stderr
        assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["list", "show"],
        ["explain", "192.0.2.1"],
        ["token", "list"],
        ["config", "show"],
        ["config", "check"],
        ["allow", "show"],
    ],
)
def test_read_only_commands_create_no_files(tmp_path: Path, args: list[str]) -> None:
    """A command that only reads leaves the folder as it was (no empty reputable.db)."""
    config_file(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run(tmp_path, *args)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before

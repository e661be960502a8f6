"""Serve's build child (reputable.builder): it waits for serve's go line, then builds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from reputable.builder import build_command, release
from reputable.config import CHECKED_ENV, load_config, text_digest
from reputable.publication.snapshot.layout import readable
from reputable.testing import cli, write_config


def _start(config: Path, **env: str) -> subprocess.Popen[bytes]:
    environ = {k: v for k, v in os.environ.items() if k != CHECKED_ENV} | env
    return subprocess.Popen(
        build_command(config, wait=True),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environ,
    )


def _finish(child: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """Return the released *child*'s stdout and stderr once it has ended (both are short)."""
    assert child.stdout is not None and child.stderr is not None
    out, err = child.stdout.read(), child.stderr.read()
    child.wait(timeout=60)
    child.stdout.close()
    child.stderr.close()
    return out, err


def test_the_command_line() -> None:
    assert build_command(None) == [sys.executable, "-m", "reputable.builder"]
    assert build_command(Path("/etc/r.toml"), wait=True) == [
        *(sys.executable, "-m", "reputable.builder"),
        *("--config", "/etc/r.toml", "--wait"),
    ]


def test_released_it_builds_what_the_cli_builds(tmp_path: Path) -> None:
    config = write_config(tmp_path, dns_port=1)
    cli(config, "list", "add", "192.0.2.7", "--cause", "spam", "--reason", "test")
    child = _start(config)
    release(child, text_digest(config.read_text(encoding="utf-8")))
    out, err = _finish(child)
    assert child.returncode == 0, err
    assert out == b""
    assert b"snapshot_built" in err and b"listings=1" in err
    snapshot = load_config(config).snapshot_path
    assert readable(snapshot)
    assert snapshot.with_name(snapshot.name + ".plan.json").exists()  # the next early start


def test_ended_without_a_go_line_it_builds_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path, dns_port=1)
    child = _start(config)
    release(child, None)
    out, err = _finish(child)
    assert (child.returncode, out, err) == (0, b"", b"")
    assert not load_config(config).snapshot_path.exists()
    assert not list(tmp_path.glob("*.db"))  # not even the store was opened


def test_a_digest_of_another_text_still_gets_the_full_check(tmp_path: Path) -> None:
    """The go line vouches for one text: a file that changed since is checked in full."""
    config = write_config(tmp_path, dns_port=1, extra="[dnss]\nworkers = 2\n")
    child = _start(config, XDG_CACHE_HOME=str(tmp_path / "cache"))
    release(child, text_digest("data_dir = '.'\n"))
    _, err = _finish(child)
    assert child.returncode == 2
    assert b"error:" in err and b"[dnss]: unknown table" in err
    assert b"Traceback" not in err
    assert not (tmp_path / "reputable.snapshot").exists()


def test_serve_with_a_broken_config_builds_nothing_and_says_it_once(tmp_path: Path) -> None:
    """The launcher starts the build child before its check; a failed check ends it unbuilt."""
    config = write_config(tmp_path, dns_port=1, extra="[dnss]\nworkers = 2\n")
    result = subprocess.run(
        [sys.executable, "-m", "reputable", "--config", str(config), "serve", "--metrics", ""],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")},
    )
    assert result.returncode == 2
    assert result.stderr.count("[dnss]: unknown table") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "reputable.snapshot").exists()
    assert not list(tmp_path.glob("*.db"))

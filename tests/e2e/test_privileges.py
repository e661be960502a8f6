"""`user =` in the config: serve binds as root, then supervisor and workers run as that user."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import pytest

from reputable.testing import RunningServer, cli, free_port, write_config

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")


def _uids(pid: int) -> set[int]:
    """Real, effective, saved and file-system uids of process *pid*."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return {int(x) for x in line.split()[1:]}
    raise AssertionError(f"no Uid line for {pid}")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(x) for x in (task / "children").read_text().split()]
    return found


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A data folder `nobody` can reach and own (pytest's tmp_path is root-only, mode 0700)."""
    path = Path(tempfile.mkdtemp(prefix="ops-privdrop-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_drops_root_after_binding(world_dir: Path, workers: int) -> None:
    """After start-up every serve process runs as `nobody` and DNS still answers."""
    nobody = pwd.getpwnam("nobody")
    port = free_port()
    config = write_config(world_dir, dns_port=port, workers=str(workers))
    config.write_text('user = "nobody"\n' + config.read_text())  # a top-level key
    cli(config, "list", "add", "198.51.100.7", "--cause", "spam")
    os.chown(world_dir, nobody.pw_uid, nobody.pw_gid)
    with RunningServer(config) as server:
        assert server.proc is not None
        assert "privileges_dropped" in server.log()
        assert _uids(server.proc.pid) == {nobody.pw_uid}
        workers_seen = [p for p in _children(server.proc.pid) if "worker" in _cmdline(p)]
        assert len(workers_seen) == (workers if workers > 1 else 0)
        for pid in workers_seen:
            assert _uids(pid) == {nobody.pw_uid}
        reply = dns.query.udp(
            dns.message.make_query("7.100.51.198.bl.reputable.test", "A"),
            "127.0.0.1",
            port=port,
            timeout=3,
        )
        assert {r.address for rrset in reply.answer for r in rrset} == {"127.0.0.2"}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def test_unknown_user_is_refused_before_serving(tmp_path: Path) -> None:
    """A user that does not exist stops serve with exit 2 and the useradd fix, no traceback."""
    config = write_config(tmp_path, dns_port=free_port())
    config.write_text('user = "no-such-user-ops"\n' + config.read_text())
    done = cli(config, "serve", "--metrics", "", check=False, timeout=30)
    assert done.returncode == 2
    assert "no such user" in done.stderr and "useradd" in done.stderr
    assert "Traceback" not in done.stderr

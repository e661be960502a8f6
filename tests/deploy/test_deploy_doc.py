"""docs/deploy.md followed as a new operator would, in a throwaway root (issue 15).

The commands are taken from the documents themselves, so the test fails when they stop
working: the ``sh`` block of "File layout" in docs/deploy.md (user, folders, ``reputable
init``), the ``ExecStart=`` of packaging/systemd/reputable.service, the Postfix snippet of
``reputable integrate postfix``. What the doc says to edit by hand (``data_dir``,
``listen``, the top-level ``user =`` of "Without systemd") is edited the same way.

Nothing persists outside the temporary prefix: ``/etc/reputable`` and ``/var/lib/reputable``
become folders under a fresh ``/tmp/deploy-*`` prefix, the system user gets a random name and
is deleted (with its group) at the end, and serve, Postfix and the client run in a network
namespace of their own (its ``/etc/netns/NAME`` resolver file removed afterwards), where
serve binds port 53 as root and then runs as that user. A listed client is rejected by
Postfix's ``reject_rbl_client`` asking our DNS; a clean one is accepted.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.postfix_peer import (
    need_postfix,
    postfix,
    rcpt_reply,
    resolv_conf,
    running_in,
    swaks,
)
from tests.publication.exports.netns import namespace, run_in

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "docs" / "deploy.md"
UNIT = ROOT / "packaging" / "systemd" / "reputable.service"
BIN = Path(sys.executable).parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="useradd, port 53 and namespaces need root"),
]


def layout_commands(prefix: Path, user: str) -> list[str]:
    """Return the shell commands of docs/deploy.md's File layout block, moved under *prefix*."""
    text = DEPLOY.read_text(encoding="utf-8")
    section = text.split("## File layout", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "docs/deploy.md: no ```sh block under File layout"
    commands = []
    for raw in block.group(1).splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line:
            continue
        line = line.replace("/var/lib/reputable", str(prefix / "var/lib/reputable"))
        line = line.replace("/etc/reputable", str(prefix / "etc/reputable"))
        # the user and group named reputable (not the program, nor the paths above)
        line = re.sub(r"(?<=-o )reputable\b|(?<=-g )reputable\b|(?<= )reputable$", user, line)
        commands.append(line)
    assert any(c.startswith("useradd ") for c in commands), commands
    return commands


def exec_start(config: Path) -> list[str]:
    """Return the unit's ExecStart, its binary and config path those of this test."""
    line = next(x for x in UNIT.read_text().splitlines() if x.startswith("ExecStart="))
    argv = line.removeprefix("ExecStart=").split()
    assert argv[0] == "/usr/bin/reputable" and "/etc/reputable/reputable.toml" in argv
    return [
        str(BIN / "reputable") if a == argv[0] else str(config) if a.startswith("/etc/") else a
        for a in argv
    ]


def sh(command: str) -> subprocess.CompletedProcess[str]:
    """Run one documented command with this venv's reputable first on PATH; fail loudly."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    done = subprocess.run(
        command, shell=True, capture_output=True, text=True, env=env, check=False, timeout=120
    )
    assert done.returncode == 0, (
        f"`{command}` exited {done.returncode}:\n{done.stdout}{done.stderr}"
    )
    return done


def has_command(*words: str) -> bool:
    """True when ``reputable WORDS --help`` exists in this build."""
    done = subprocess.run(
        [str(BIN / "reputable"), *words, "--help"], capture_output=True, check=False, timeout=60
    )
    return done.returncode == 0


@contextmanager
def throwaway_root() -> Iterator[tuple[Path, str]]:
    """A /tmp prefix and a user name; the user (and its group) and the prefix removed after."""
    prefix = Path(tempfile.mkdtemp(prefix="deploy-", dir="/tmp"))
    prefix.chmod(0o755)  # the service user must reach var/lib/reputable below it
    user = "rpt-" + secrets.token_hex(3)
    try:
        yield prefix, user
    finally:
        subprocess.run(["userdel", user], capture_output=True, check=False)
        subprocess.run(["groupdel", user], capture_output=True, check=False)
        shutil.rmtree(prefix, ignore_errors=True)


def readable_python(argv: list[str], scratch: Path) -> list[str]:
    """Return *argv* run so that the service user can read this Python, as on a real install.

    Here the interpreter lives under /root (mode 0700: only root gets through), where a
    Debian install has it in /usr/lib/python3; serve imports some modules after dropping
    root, and they would fail. In a private mount namespace (gone with the process) /root is
    covered by an empty tmpfs holding only the interpreter's folder, bind-mounted back.
    """
    base = Path(sys.base_prefix).resolve()
    if base.parts[:2] != ("/", "root"):
        return argv
    top = Path("/root", base.parts[2])
    scratch.mkdir()
    script = (
        f'set -e; mount --bind "{top}" "{scratch}"; mount -t tmpfs -o mode=0755 tmpfs /root;'
        f' mkdir "{top}"; mount --bind "{scratch}" "{top}"; exec "$@"'
    )
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *argv]


@contextmanager
def service(ns: str, argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run *argv* (the unit's ExecStart) as root inside *ns* until DNS is ready."""
    argv = readable_python(argv, log.parent / "python-mount")

    def ready() -> bool:
        return "privileges_dropped" in log.read_text() and dig(ns, "2.0.0.127") == "127.0.0.2"

    with running_in(ns, argv, log, ready, seconds=120) as proc:
        yield proc


def dig(ns: str, reversed_ip: str) -> str:
    """Return dig's short A answer for *reversed_ip* in the IP zone from 127.0.0.1:53 in *ns*."""
    return run_in(
        ns,
        [
            "dig",
            "+short",
            "+tries=3",
            "+time=3",
            "@127.0.0.1",
            f"{reversed_ip}.bl.reputable.test",
            "A",
        ],
    ).stdout.strip()


def uids(pid: int) -> set[int]:
    """Real, effective, saved and file-system uids of *pid*."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return {int(x) for x in line.split()[1:]}
    raise AssertionError(f"no Uid line for {pid}")


def test_fresh_install_as_documented_rejects_a_listed_client_in_postfix() -> None:
    """Layout, user, init, edits, the unit's command on port 53, then Postfix rejects a listed client."""
    need_postfix()
    for tool in ("dig", "useradd", "userdel", "install"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")
    with throwaway_root() as (prefix, user):
        for command in layout_commands(prefix, user):
            sh(command)
        etc, data = prefix / "etc/reputable", prefix / "var/lib/reputable"
        config = etc / "reputable.toml"
        account = pwd.getpwnam(user)
        assert account.pw_dir == str(data) and account.pw_shell == "/usr/sbin/nologin"
        assert (data.stat().st_uid, data.stat().st_mode & 0o777) == (account.pw_uid, 0o750)
        # "then edit zones, listen, data_dir" and, without systemd, the top-level `user =`
        text = config.read_text()
        text = text.replace('data_dir = "."', f'user = "{user}"\ndata_dir = "{data}"', 1)
        text = text.replace('listen = ["127.0.0.1:5300"]', 'listen = ["127.0.0.1:53"]', 1)
        assert f'data_dir = "{data}"' in text and '"127.0.0.1:53"' in text
        config.write_text(text)
        if has_command("config", "check"):  # `reputable config check` once the CLI has it
            sh(f"reputable --config {config} config check")
        sh(f"reputable --config {config} list add 127.0.0.66 --cause spam --reason deploy-test")
        restrictions = sh(f"reputable --config {config} integrate postfix").stdout
        assert "reject_rbl_client bl.reputable.test" in restrictions
        log = prefix / "serve.log"
        with namespace() as ns, resolv_conf(ns), service(ns, exec_start(config), log) as proc:
            assert uids(proc.pid) == {account.pw_uid}  # bound port 53 as root, runs as the user
            owners = {p.name: p.stat().st_uid for p in data.iterdir()}
            assert owners.get("reputable.db") == account.pw_uid, owners
            assert dig(ns, "2.0.0.127") == "127.0.0.2", log.read_text()  # RFC 5782 test point
            assert dig(ns, "66.0.0.127") == "127.0.0.2", log.read_text()
            health = run_in(ns, [sys.executable, "-c", HEALTH])
            assert health.stdout.strip() == "200", log.read_text()
            with postfix(ns, restrictions, "bl.reputable.test") as base:
                listed = rcpt_reply(swaks(ns, "127.0.0.66"))
                clean = swaks(ns, "127.0.0.77")
                maillog = (base / "maillog").read_text()
        assert listed.startswith("554 5.7.1"), listed
        assert "blocked using bl.reputable.test" in listed, listed
        assert rcpt_reply(clean).startswith("250"), clean
        assert "reject: RCPT from unknown[127.0.0.66]" in maillog
    with pytest.raises(KeyError):
        pwd.getpwnam(user)  # the throwaway user is gone
    assert not prefix.exists()


HEALTH = """
import urllib.request
try:
    print(urllib.request.urlopen("http://127.0.0.1:9153/health", timeout=5).status)
except Exception as exc:
    print(getattr(exc, "code", exc))
"""

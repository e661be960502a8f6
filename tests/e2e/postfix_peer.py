"""A throwaway Postfix for tests: own config and queue folders, run inside a test namespace.

``postfix -c DIR start-fg`` runs the master in the foreground; every service has
``chroot = n`` (the queue lives in a temporary folder, not /var/spool/postfix) and the log
goes to ``maillog_file`` under ``maillog_file_prefixes``. Mail it accepts is discarded. The
folder is world-traversable because Postfix's daemons run as the ``postfix`` user.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

MASTER = """\
smtp      inet  n       -       n       -       -       smtpd
127.0.0.1:2525 inet n   -       n       -       -       smtpd
  -o smtpd_recipient_restrictions=permit_mynetworks,reject_unauth_destination,reject_rbl_client,{zone}
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

MAIN = """\
compatibility_level = 3.6
queue_directory = {base}/queue
data_directory = {base}/data
myhostname = mx.reputable.test
mydomain = reputable.test
myorigin = $myhostname
mydestination = example.com, example.net
mynetworks = 127.0.0.1/32
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
alias_maps =
alias_database =
local_recipient_maps =
local_transport = discard
default_transport = discard
smtputf8_enable = no
biff = no
smtpd_banner = $myhostname ESMTP test
maillog_file = {base}/maillog
maillog_file_prefixes = {base}
"""


def need_postfix() -> None:
    """Skip unless postfix and swaks are installed."""
    for tool, package in (("postfix", "postfix"), ("swaks", "swaks")):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} (Debian package {package})")


@contextmanager
def postfix(ns: str, restrictions: str, zone: str) -> Iterator[Path]:
    """Run Postfix in namespace *ns* with *restrictions* (main.cf text); yield its folder."""
    need_postfix()
    base = Path(tempfile.mkdtemp(prefix="enforce-postfix-"))
    base.chmod(0o755)
    (base / "queue").mkdir()
    (base / "data").mkdir()
    shutil.chown(base / "data", "postfix")  # the master's lock file is made as postfix
    (base / "main.cf").write_text(MAIN.format(base=base) + restrictions)
    (base / "master.cf").write_text(MASTER.format(zone=zone))
    check = subprocess.run(
        ["postfix", "-c", str(base), "check"], capture_output=True, text=True, check=False
    )
    if check.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        raise AssertionError(f"postfix check failed: {check.stderr}")
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, "postfix", "-c", str(base), "start-fg"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_port(ns, 25)
        wait_port(ns, 2525)
        yield base
    finally:
        subprocess.run(
            ["ip", "netns", "exec", ns, "postfix", "-c", str(base), "stop"],
            capture_output=True,
            check=False,
        )
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(base, ignore_errors=True)


def wait_port(ns: str, port: int, seconds: float = 20) -> None:
    """Wait until 127.0.0.1:*port* accepts TCP connections inside *ns*."""
    code = (
        "import socket,sys\n"
        f"s=socket.socket(); s.settimeout(0.5); sys.exit(s.connect_ex(('127.0.0.1',{port})))"
    )
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code], check=False)
        if done.returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} in {ns} after {seconds} s")


def swaks(ns: str, source: str, *, to: str = "bob@example.com", port: int = 25) -> str:
    """Send one message from *source* inside *ns* with swaks; return its transcript."""
    done = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            ns,
            "swaks",
            "--server",
            f"127.0.0.1:{port}",
            "--local-interface",
            source,
            "--ehlo",
            "client.example.org",
            "--from",
            "alice@example.org",
            "--to",
            to,
            "--timeout",
            "20",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return done.stdout + done.stderr


def rcpt_reply(transcript: str) -> str:
    """Return the server's reply to RCPT TO in a swaks transcript."""
    lines = transcript.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(" -> RCPT TO:"):
            return lines[i + 1].strip().lstrip("<*- ").strip()
    raise AssertionError(f"no RCPT in transcript:\n{transcript}")


@contextmanager
def resolv_conf(ns: str) -> Iterator[None]:
    """Point the namespace's resolver at 127.0.0.1:53 for the block (ip netns exec mounts it)."""
    folder = Path("/etc/netns") / ns
    made_parent = not folder.parent.exists()
    folder.mkdir(parents=True)
    try:
        (folder / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:2 attempts:1\n")
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if made_parent:  # leave /etc as it was
            with contextlib.suppress(OSError):
                folder.parent.rmdir()


@contextmanager
def running_in(
    ns: str, argv: Sequence[str], log: Path, ready: Callable[[], bool], seconds: float = 120
) -> Iterator[subprocess.Popen[bytes]]:
    """Run *argv* inside *ns* (output to *log*); yield it once *ready()*, stop it after the block.

    AssertionError with the log when it exits or is not ready within *seconds*.
    """
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv], stdout=out, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + seconds
            while not ready():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"{argv[0]} did not start:\n{log.read_text()}")
                time.sleep(0.1)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

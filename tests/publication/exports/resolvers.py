"""Real DNS peers for the RPZ tests: NSD serving a plain zone, Unbound applying our RPZ.

Both run from a private folder on loopback ports the test picks, in the foreground, and are
stopped when the block ends. Unbound resolves ``example.test`` through NSD (a stub zone) so
an unlisted name gets its real answer and a listed one is rewritten by the policy zone.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dns.message
import dns.query
import pytest

from reputable.testing import free_port

ZONE = """\
$ORIGIN example.test.
$TTL 60
@ SOA ns.example.test. h.example.test. 1 3600 600 86400 60
@ NS ns.example.test.
ns A 127.0.0.1
good A 192.0.2.80
bad A 192.0.2.81
www.bad A 192.0.2.82
shady A 198.51.100.66
v6 AAAA 2001:db8::66
"""


def need(tool: str, package: str) -> None:
    """Skip the test unless *tool* is installed, naming its Debian package."""
    if shutil.which(tool) is None:
        pytest.skip(f"needs {tool} (Debian package {package})")


def wait_dns(port: int, name: str, seconds: float = 60) -> None:
    """Wait until 127.0.0.1:*port* answers a query for *name*."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            dns.query.udp(dns.message.make_query(name, "SOA"), "127.0.0.1", port=port, timeout=0.5)
            return
        except (OSError, dns.exception.Timeout):
            time.sleep(0.1)
    raise AssertionError(f"no DNS server answered on 127.0.0.1:{port} within {seconds} s")


@contextmanager
def running(argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run *argv* with output to *log* for the block; stop it afterwards."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def nsd(folder: Path) -> Iterator[int]:
    """Run NSD serving example.test on a free loopback port; yield the port."""
    need("nsd", "nsd")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (folder / "example.test.zone").write_text(ZONE)
    conf = folder / "nsd.conf"
    conf.write_text(
        f"""server:
  ip-address: 127.0.0.1@{port}
  port: {port}
  zonesdir: "{folder}"
  pidfile: "{folder}/nsd.pid"
  database: ""
  zonelistfile: "{folder}/zone.list"
  xfrdfile: "{folder}/xfrd.state"
  xfrdir: "{folder}"
  logfile: "{folder}/nsd.log"
  username: ""
  chroot: ""
  server-count: 1
  verbosity: 1
remote-control:
  control-enable: no
zone:
  name: example.test
  zonefile: "{folder}/example.test.zone"
"""
    )
    with running(["nsd", "-d", "-c", str(conf)], folder / "nsd.out"):
        wait_dns(port, "example.test")
        yield port


@contextmanager
def unbound(folder: Path, rpz_file: Path, origin: str, upstream: int) -> Iterator[int]:
    """Run Unbound with *rpz_file* as policy zone *origin*, example.test via *upstream*."""
    need("unbound", "unbound")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = folder / "unbound.conf"
    conf.write_text(
        f"""server:
  interface: 127.0.0.1@{port}
  port: {port}
  do-not-query-localhost: no
  outgoing-interface: 127.0.0.1
  username: ""
  chroot: ""
  directory: "{folder}"
  pidfile: "{folder}/unbound.pid"
  use-syslog: no
  logfile: "{folder}/unbound.log"
  module-config: "respip iterator"
  access-control: 127.0.0.0/8 allow
  local-zone: "test." nodefault
  num-threads: 1
  so-reuseport: no
  verbosity: 1
remote-control:
  control-enable: no
stub-zone:
  name: "example.test"
  stub-addr: 127.0.0.1@{upstream}
rpz:
  name: "{origin}"
  zonefile: "{rpz_file}"
  rpz-log: yes
"""
    )
    check = subprocess.run(
        ["unbound-checkconf", str(conf)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    with running(["unbound", "-d", "-c", str(conf)], folder / "unbound.out"):
        wait_dns(port, "good.example.test")
        yield port

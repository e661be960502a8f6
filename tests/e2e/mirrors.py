"""Three NSD secondaries of `reputable serve`, each in its own network namespace.

Topology (all ours, deleted afterwards; nothing touches the host's network)::

    xfr-pri (serve: 127.0.0.1, 10.213.N.1)  --veth--  xfr-sN (NSD on 10.213.N.2)   N = 1, 2, 3

serve sends NOTIFY to each NSD and answers their IXFR/AXFR with TSIG; NSD answers queries in
its namespace. Used by tests/e2e/test_transfer_mirrors.py and bench/transfer_mirrors.py.
Run inside a namespace, ``python -m tests.e2e.mirrors answers HOST PORT NAME...`` prints the
A and TXT answers as JSON, and ``... wait HOST PORT NAME`` the monotonic time at which NAME
first answers A (CLOCK_MONOTONIC is shared by every namespace of the machine).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PRIMARY = "xfr-pri"
NSD_PORT = 21353
DNS_PORT = 21300
SECRET = "cmVwdXRhYmxlLXNjYWxlLXRlc3Qta2V5LTMyYnl0ZXM="  # base64, 32 bytes


def _ip(*args: str, ns: str | None = None) -> None:
    cmd = ["ip", *args] if ns is None else ["ip", "-n", ns, *args]
    subprocess.run(cmd, check=True, capture_output=True)


def nsexec(ns: str, argv: list[str]) -> list[str]:
    """Return *argv* run inside namespace *ns*."""
    return ["ip", "netns", "exec", ns, *argv]


@dataclass
class Topology:
    """The namespaces and addresses of one run."""

    count: int
    delay_ms: int = 0
    secondaries: list[str] = field(default_factory=list)

    def primary_address(self, n: int) -> str:
        return f"10.213.{n}.1"

    def secondary_address(self, n: int) -> str:
        return f"10.213.{n}.2"

    def up(self) -> None:
        """Create the namespaces and veth links (a leftover of an earlier run is removed)."""
        self.down()
        _ip("netns", "add", PRIMARY)
        _ip("link", "set", "lo", "up", ns=PRIMARY)
        for n in range(1, self.count + 1):
            name = f"xfr-s{n}"
            _ip("netns", "add", name)
            _ip("link", "set", "lo", "up", ns=name)
            _ip(
                "link",
                "add",
                f"xfrp{n}",
                "netns",
                PRIMARY,
                "type",
                "veth",
                "peer",
                "name",
                f"xfrs{n}",
                "netns",
                name,
            )
            _ip("addr", "add", f"{self.primary_address(n)}/24", "dev", f"xfrp{n}", ns=PRIMARY)
            _ip("addr", "add", f"{self.secondary_address(n)}/24", "dev", f"xfrs{n}", ns=name)
            _ip("link", "set", f"xfrp{n}", "up", ns=PRIMARY)
            _ip("link", "set", f"xfrs{n}", "up", ns=name)
            if self.delay_ms:  # a WAN-like round trip between the primary and each mirror
                for ns, dev in ((PRIMARY, f"xfrp{n}"), (name, f"xfrs{n}")):
                    subprocess.run(
                        [
                            "ip",
                            "netns",
                            "exec",
                            ns,
                            "tc",
                            "qdisc",
                            "add",
                            "dev",
                            dev,
                            "root",
                            "netem",
                            "delay",
                            f"{self.delay_ms // 2}ms",
                        ],
                        check=True,
                        capture_output=True,
                    )
            self.secondaries.append(name)

    def down(self) -> None:
        """Delete every namespace of ours (the veths go with them)."""
        names = subprocess.run(
            ["ip", "netns", "list"], check=False, capture_output=True, text=True
        ).stdout
        for line in names.splitlines():
            name = line.split()[0] if line.strip() else ""
            if name == PRIMARY or (name.startswith("xfr-s") and name[5:].isdigit()):
                subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
        self.secondaries.clear()

    def serve_toml(self) -> tuple[str, str]:
        """Return serve's [dns] listen line and its [transfer] section."""
        listens = [f"127.0.0.1:{DNS_PORT}"] + [
            f"{self.primary_address(n)}:{DNS_PORT}" for n in range(1, self.count + 1)
        ]
        notify = [f"{self.secondary_address(n)}:{NSD_PORT}" for n in range(1, self.count + 1)]
        return (
            "listen = [" + ", ".join(f'"{x}"' for x in listens) + "]",
            "[transfer]\nnotify = [" + ", ".join(f'"{x}"' for x in notify) + "]\n"
            f'[transfer.keys]\nxfrkey = "{SECRET}"\n',
        )

    def nsd_conf(self, folder: Path, n: int, zones: list[str]) -> Path:
        """Write the nsd.conf of secondary *n*: zones from the primary's address on its link."""
        folder.mkdir(parents=True, exist_ok=True)
        primary = self.primary_address(n)
        lines = [
            "server:",
            f"    ip-address: {self.secondary_address(n)}@{NSD_PORT}",
            '    username: ""',
            '    chroot: ""',
            f'    zonesdir: "{folder}"',
            '    database: ""',
            f'    zonelistfile: "{folder}/zone.list"',
            f'    xfrdfile: "{folder}/xfrd.state"',
            f'    xfrdir: "{folder}"',
            f'    pidfile: "{folder}/nsd.pid"',
            f'    logfile: "{folder}/nsd.log"',
            "    verbosity: 2",
            "    xfrd-reload-timeout: 0",
            "remote-control:",
            "    control-enable: no",
            "key:",
            "    name: xfrkey",
            "    algorithm: hmac-sha256",
            f'    secret: "{SECRET}"',
        ]
        for zone in zones:
            lines += [
                "zone:",
                f"    name: {zone}",
                f"    request-xfr: {primary}@{DNS_PORT} xfrkey",
                f"    allow-notify: {primary} xfrkey",
            ]
        path = folder / "nsd.conf"
        path.write_text("\n".join(lines) + "\n")
        return path


@contextmanager
def started(
    argv: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run *argv* for the block, output to *log*; end it (by its pid) afterwards."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def in_namespace(ns: str, *args: str, timeout: float = 120) -> str:
    """Run this module's command line *args* inside namespace *ns*; return its stdout."""
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    done = subprocess.run(
        nsexec(ns, [sys.executable, "-m", "tests.e2e.mirrors", *args]),
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=root,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} in {ns} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


# -- run inside a namespace ----------------------------------------------------------------------
def _answers(host: str, port: int, names: list[str]) -> dict[str, list[list[str]]]:
    import dns.message
    import dns.query
    import dns.rdatatype

    out: dict[str, list[list[str]]] = {}
    for name in names:
        codes: set[str] = set()
        texts: set[str] = set()
        for rdtype in (dns.rdatatype.A, dns.rdatatype.TXT):
            query = dns.message.make_query(name, rdtype, use_edns=0, payload=4096)
            # 10 s: a loaded machine's answer, not a lost one, on this private link
            reply, _ = dns.query.udp_with_fallback(query, host, port=port, timeout=10)
            for rrset in reply.answer:
                for rdata in rrset:
                    if rrset.rdtype == dns.rdatatype.A:
                        codes.add(rdata.address)
                    elif rrset.rdtype == dns.rdatatype.TXT:
                        texts.add(b"".join(rdata.strings).decode("utf-8", "replace"))
        out[name] = [sorted(codes), sorted(texts)]
    return out


def _serial(host: str, port: int, zone: str) -> int:
    """Return *zone*'s SOA serial at *host*, or -1 when it has none yet or does not answer.

    -1 for silence too: the tests ask an NSD right after starting it, and one that has not
    bound its port yet (seconds on a loaded machine) just has no serial yet; the caller's
    deadline decides.
    """
    import dns.exception
    import dns.message
    import dns.query

    # Over TCP when truncated: serve's SOA answer does not fit 512 bytes, and a TC reply's
    # empty answer read as "no serial" made the callers' waits for the mirrors pass at once.
    query = dns.message.make_query(zone, "SOA", use_edns=0, payload=4096)
    try:
        reply, _ = dns.query.udp_with_fallback(query, host, port=port, timeout=2)
    except (dns.exception.Timeout, OSError):
        return -1
    return int(reply.answer[0][0].serial) if reply.answer else -1


def _wait(host: str, port: int, name: str, listed: bool, timeout: float) -> float:
    import dns.exception
    import dns.message
    import dns.query

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reply = dns.query.udp(dns.message.make_query(name, "A"), host, port=port, timeout=1)
            if bool(reply.answer) == listed:
                return time.monotonic()
        except (dns.exception.Timeout, OSError):
            pass
        time.sleep(0.02)
    raise SystemExit(f"{name} never answered {'listed' if listed else 'unlisted'} in time")


def main(argv: list[str]) -> int:
    """``answers HOST PORT NAME...`` or ``wait HOST PORT NAME listed|unlisted TIMEOUT``."""
    command, host, port = argv[0], argv[1], int(argv[2])
    if command == "answers":
        print(json.dumps(_answers(host, port, argv[3:])))
    elif command == "serial":
        print(_serial(host, port, argv[3]))
    elif command == "wait":
        print(_wait(host, port, argv[3], argv[4] == "listed", float(argv[5])))
    else:
        raise SystemExit(f"unknown command {command!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""rbldnsd interop over loopback: import, export, and identical answers from rbldnsd and us."""

from __future__ import annotations

import os
import random
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from reputable.core.address import address_qname
from reputable.testing import RunningServer, cli, free_port, write_config

ZONE = "bl.reputable.test"
pytestmark = [
    pytest.mark.rbldnsd,
    pytest.mark.skipif(shutil.which("rbldnsd") is None, reason="rbldnsd not installed (apt)"),
]


def _ask(port: int, qname: str, rdtype: str) -> tuple[str, tuple[str, ...]]:
    """Return (rcode, sorted answer texts) for one UDP query to 127.0.0.1:*port*."""
    query = dns.message.make_query(qname, rdtype)
    reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=3)
    if reply.flags & dns.flags.TC:  # as a resolver does (ours: the 3x amplification bound)
        reply = dns.query.tcp(query, "127.0.0.1", port=port, timeout=3)
    texts: list[str] = []
    for rrset in reply.answer:
        if rrset.rdtype == dns.rdatatype.A:
            texts.extend(r.address for r in rrset)
        elif rrset.rdtype == dns.rdatatype.TXT:
            texts.extend(b"".join(r.strings).decode() for r in rrset)
    return dns.rcode.to_text(reply.rcode()), tuple(sorted(texts))


class Data:
    """A reproducible mixed data set written as rbldnsd files, and the addresses to probe."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.hosts: list[IPv4Address] = []
        self.nets: list[IPv4Network] = []
        self.holes: list[IPv4Address] = []
        self.v6: list[IPv6Network] = []
        self.v6_holes: list[IPv6Address] = []

    def v4(self) -> IPv4Address:
        """Return a random address in 10.0.0.0/14."""
        return IPv4Address(0x0A000000 + self.rng.randrange(1 << 18))

    def hosts_file(self) -> str:
        """Hosts with per-entry codes and TXT, defaults and a ``$`` template."""
        lines = [":127.0.0.2:spam trap hits from $, costs $$5"]
        for i in range(9000):
            if i == 4500:  # the rest name their address alone: one template in the snapshot
                lines.append(":127.0.0.2:listed: $")
            address = self.v4()
            self.hosts.append(address)
            code = self.rng.choice(["", " :3", " :4:bot C2 seen", f" :5:open relay probe #{i}"])
            lines.append(f"{address}{code}")
        return "\n".join(lines) + "\n"

    def nets_file(self) -> str:
        """CIDRs, non-aligned ranges and exclusions inside them, for three causes."""
        lines = ["$TTL 900", ":127.0.0.9:network escalation"]
        for _ in range(700):
            net = IPv4Network((int(self.v4()), self.rng.randint(20, 30)), strict=False)
            self.nets.append(net)
            value = self.rng.choice(["", " :4:compromised range", " :10:=manual feed"])
            lines.append(f"{net}{value}")
        for _ in range(120):
            first = self.v4()
            last = first + self.rng.randint(1, 700)
            self.nets.append(IPv4Network(f"{first}/32"))
            lines.append(f"{first}-{last} :4:range")
        for _ in range(400):
            net = self.rng.choice(self.nets)
            hole = net.network_address + self.rng.randrange(net.num_addresses)
            self.holes.append(hole)
            lines.append(f"!{hole}")
        return "\n".join(lines) + "\n"

    def later_file(self) -> str:
        """Relisting of some hosts, imported later: the newer reason must win."""
        picked = self.rng.sample(self.hosts, 400)
        return "".join(f"{a} :127.0.0.2:relisted later\n" for a in picked)

    def v6_file(self) -> str:
        """IPv6 prefixes, hosts and exclusions."""
        lines = [":127.0.0.2:IPv6 source $"]
        for i in range(60):
            size = self.rng.choice([48, 56, 64])
            prefix = IPv6Network(
                (0x20010DB8 << 96 | self.rng.randrange(1 << 16) << 80, size), strict=False
            )
            self.v6.append(prefix)
            lines.append(f"{prefix}" + ("" if i % 3 else " :127.0.0.4:IPv6 bots"))
        for net in self.rng.sample(self.v6, 15):
            hole = net.network_address + self.rng.randrange(1 << 20)
            self.v6_holes.append(hole)
            lines.append(f"!{hole}")
        return "\n".join(lines) + "\n"

    def probes(self) -> Iterator[IPv4Address | IPv6Address]:
        """1,000 addresses: listed hosts, inside ranges, excluded, unlisted, IPv6, test points."""
        rng = self.rng
        yield from rng.sample(self.hosts, 300)
        for net in rng.sample(self.nets, 250):
            yield net.network_address + rng.randrange(net.num_addresses)
        yield from rng.sample(self.holes, 150)
        yield from (self.v4() for _ in range(130))
        yield from (IPv4Address(f"192.0.2.{i}") for i in range(40))
        for prefix in rng.sample(self.v6, 40):
            yield prefix.network_address + rng.randrange(1 << 24)
        yield from self.v6_holes[:10]
        yield from (IPv6Address(0x20010DB9 << 96 | rng.randrange(1 << 64)) for _ in range(28))
        yield IPv4Address("127.0.0.2")
        yield IPv4Address("127.0.0.1")


def _start_rbldnsd(
    root: Path, port: int, command: str, log: Path, zone: str = ZONE
) -> subprocess.Popen[bytes]:
    """Start rbldnsd chrooted in *root* with the zone specs our export printed."""
    specs = [a.replace(f"{root}/", "") for a in shlex.split(command) if a.startswith(f"{zone}:")]
    argv = ["rbldnsd", "-n", "-u", "rbldns", "-r", str(root), "-w", "/"]
    argv += ["-b", f"127.0.0.1/{port}", "-p", str(root.parent / "rbldnsd.pid"), *specs]
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if "started" in log.read_text() or proc.poll() is not None:
            break
        time.sleep(0.05)
    if proc.poll() is not None:
        raise RuntimeError(f"rbldnsd exited {proc.returncode}:\n{log.read_text()}")
    if "started" not in log.read_text():  # queried now, it would time out with no reason given
        proc.kill()
        proc.wait()
        raise RuntimeError(f"rbldnsd did not say 'started' within 60 s:\n{log.read_text()}")
    return proc


def test_rbldnsd_and_reputable_serve_answer_alike(tmp_path: Path) -> None:
    """After import + export, rbldnsd and `reputable serve` give identical A and TXT answers."""
    data = Data(random.Random(20260101))
    config = write_config(tmp_path, dns_port=(our_port := free_port()))
    files = {
        "hosts.ip4set": (data.hosts_file(), "2026-01-01T00:00:00Z"),
        "nets.ip4set": (data.nets_file(), "2026-01-01T00:00:00Z"),
        "later.ip4set": (data.later_file(), "2026-01-02T00:00:00Z"),
        "v6.ip6trie": (data.v6_file(), "2026-01-01T00:00:00Z"),
    }
    for name, (text, when) in files.items():
        (tmp_path / name).write_text(text)
        cli(config, "import", "rbldnsd", str(tmp_path / name), "--zone", ZONE, "--now", when)
    root = tmp_path / "rbl"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)  # rbldnsd reads the files after dropping root
    exported = cli(config, "export", "rbldnsd", "--zone", ZONE, "-o", str(root / "bl"))
    command = exported.stdout.strip().splitlines()[-1]
    counts = re.search(r"(\d+) entries, (\d+) exclusions", exported.stdout)
    assert counts is not None
    assert int(counts[1]) + int(counts[2]) >= 10_000
    assert command.lstrip().startswith("rbldnsd ")
    rb_port = free_port()
    rbldnsd = _start_rbldnsd(root, rb_port, command, tmp_path / "rbldnsd.log")
    try:
        with RunningServer(config):
            probes = list(dict.fromkeys(data.probes()))
            while len(probes) < 1000:  # top up with random (mostly unlisted) addresses
                probes.append(data.v4())
            probes = list(dict.fromkeys(probes))
            assert len(probes) >= 995
            mismatches: list[str] = []
            listed = 0
            for address in probes:
                qname = address_qname(address, ZONE)
                for rdtype in ("A", "TXT"):
                    ours = _ask(our_port, qname, rdtype)
                    theirs = _ask(rb_port, qname, rdtype)
                    if ours != theirs:
                        mismatches.append(f"{address} {rdtype}: ours {ours} rbldnsd {theirs}")
                listed += ours[0] == "NOERROR"
    finally:
        rbldnsd.terminate()
        rbldnsd.wait(timeout=10)
    assert mismatches == []
    assert listed > 300 and len(probes) - listed > 150  # both kinds of answer were compared


def test_domain_zone_answers_alike(tmp_path: Path) -> None:
    """A dnset with nested listings of several codes and exclusions: rbldnsd answers as we do.

    Nested names of different codes need the combined dnset (rbldnsd answers only the longest
    wildcard); ``$`` in the TXT is the listed name in both servers.
    """
    rng = random.Random(20261129)
    codes = ["127.0.1.2", "127.0.1.3", "127.0.1.7", "127.0.1.9"]
    lines: list[str] = []
    names: list[str] = []
    for i in range(300):
        base = f"d{i}.example"
        lines.append(f".{base} :{rng.choice(codes)}:listed {i} see $")
        names += [base, f"www.{base}", f"a.b.{base}"]
        if i % 3 == 0:
            lines.append(f".sub.{base} :{rng.choice(codes)}:nested {i}")
            names += [f"sub.{base}", f"x.sub.{base}"]
        if i % 7 == 0:
            lines.append(f"!.ok.{base}")
            names += [f"ok.{base}", f"y.ok.{base}"]
    names += [f"unlisted{i}.example" for i in range(50)] + ["test", "invalid"]
    zone = "dbl.reputable.test"
    config = write_config(tmp_path, dns_port=(our_port := free_port()))
    data = tmp_path / "domains.dnset"
    data.write_text("\n".join(lines) + "\n")
    cli(config, "import", "rbldnsd", str(data), "--zone", zone)
    root = tmp_path / "rbl"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    exported = cli(config, "export", "rbldnsd", "--zone", zone, "-o", str(root / "dbl"))
    command = exported.stdout.strip().splitlines()[-1]
    assert f"{zone}:dnset:{root / 'dbl'}" in command  # `-o FILE` is the dnset itself
    rb_port = free_port()
    rbldnsd = _start_rbldnsd(root, rb_port, command, tmp_path / "rbldnsd.log", zone)
    try:
        with RunningServer(config):
            mismatches: list[str] = []
            listed = 0
            for name in names:
                for rdtype in ("A", "TXT"):
                    ours = _ask(our_port, f"{name}.{zone}", rdtype)
                    theirs = _ask(rb_port, f"{name}.{zone}", rdtype)
                    if ours != theirs:
                        mismatches.append(f"{name} {rdtype}: ours {ours} rbldnsd {theirs}")
                listed += ours[0] == "NOERROR" and bool(ours[1])
            # The one intended difference: an empty non-terminal is NOERROR/no data for us
            # (RFC 8020, for QNAME-minimising resolvers), NXDOMAIN for rbldnsd.
            assert _ask(our_port, f"example.{zone}", "A") == ("NOERROR", ())
            assert _ask(rb_port, f"example.{zone}", "A") == ("NXDOMAIN", ())
    finally:
        rbldnsd.terminate()
        rbldnsd.wait(timeout=10)
    assert mismatches == []
    # ``!.ok.dN`` below a listed name cannot be cut from our "name and below" model: the import
    # notes it and the name stays listed (docs/rbldnsd.md), so the unlisted ones are the 50
    # unlisted names and ``invalid``.
    assert listed > 800 and len(names) - listed >= 51

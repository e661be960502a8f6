"""Three NSD mirrors in network namespaces follow `reputable serve` by NOTIFY + IXFR + TSIG."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reputable.config import Config, load_config
from reputable.core.address import Domain, parse_subject
from reputable.listings.model import Batch
from reputable.store.sqlite import SQLiteStore
from reputable.testing import wait_for, write_config
from tests.e2e.mirrors import DNS_PORT, NSD_PORT, PRIMARY, Topology, in_namespace, nsexec
from tests.e2e.mirrors import started as running
from tests.publication.test_lookup import qname, random_listings, sampled_subjects

pytestmark = [pytest.mark.slow, pytest.mark.nsd, pytest.mark.netns]

NSD = shutil.which("nsd") or "/usr/sbin/nsd"


@dataclass
class Mirrors:
    """serve in xfr-pri, NSD in xfr-s1..3, and the configuration they share."""

    topology: Topology
    config: Config
    config_path: Path
    names: list[str]
    zones: list[str]
    serve: subprocess.Popen[bytes] | None = None  # `ip netns exec` execs serve: its pid

    def cli(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "reputable", "--config", str(self.config_path), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def serial(self, ns: str, host: str, port: int, zone: str) -> int:
        return int(in_namespace(ns, "serial", host, str(port), zone))

    def wait_serials(self, serial: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for n, ns in enumerate(self.topology.secondaries, 1):
            host = self.topology.secondary_address(n)
            for zone in self.zones:
                while self.serial(ns, host, NSD_PORT, zone) < serial:
                    assert time.monotonic() < deadline, f"{ns} never reached {zone} {serial}"
                    time.sleep(0.2)


def start_mirrors(
    folder: Path, count: int, listings: int, delay_ms: int = 0, rbldnsd: Path | None = None
) -> Iterator[Mirrors]:
    """Build the topology, a store of random *listings* (and the hosts of the rbldnsd file
    *rbldnsd*, imported into the IP zone), serve and *count* NSDs (a generator for the
    fixture and bench/transfer_mirrors.py)."""
    topology = Topology(count, delay_ms)
    rng = random.Random(20261206)
    listen, transfer = topology.serve_toml()
    path = write_config(folder, dns_port=DNS_PORT, extra=transfer)
    text = path.read_text().replace(f'listen = ["127.0.0.1:{DNS_PORT}"]', listen, 1)
    path.write_text(text.replace("/lookup/$", "/lookup"))  # "$": docs/transfer.md
    config = load_config(path)
    chosen, allows = random_listings(rng, listings)
    store = SQLiteStore(folder / "reputable.db")
    store.apply(Batch(listings=tuple(chosen), allows=tuple(allows)), actor="t", action="import")
    store.close()
    names = []
    for subject in sampled_subjects(rng, chosen, 300):
        if subject.startswith("::ffff:"):
            continue  # answered as IPv4 by us; not in the zone (docs/transfer.md)
        kind = isinstance(parse_subject(subject), Domain)
        zone = config.domain_zone.name if kind else config.ip_zone.name
        names.append(qname(subject, zone if rng.random() < 0.8 else config.allow_zone.name))
    zones = [config.ip_zone.name, config.domain_zone.name, config.allow_zone.name]
    mirrors = Mirrors(topology, config, path, names, zones)
    topology.up()
    try:
        if rbldnsd is not None:
            mirrors.cli("import", "rbldnsd", str(rbldnsd), "--zone", config.ip_zone.name)
        mirrors.cli("snapshot", "build")
        argv = [sys.executable, "-m", "reputable", "--config", str(path), "serve"]
        with running(nsexec(PRIMARY, argv), folder / "serve.log") as serve:
            mirrors.serve = serve
            # Queried at once by the tests (SOA, 2 s timeout): wait until serve says it is up,
            # which took over 2 s once under CI's load.
            deadline = time.monotonic() + 120
            while "serve_ready" not in (folder / "serve.log").read_text(errors="replace"):
                assert serve.poll() is None, (folder / "serve.log").read_text(errors="replace")
                assert time.monotonic() < deadline, "serve did not get ready in 120 s"
                time.sleep(0.05)
            nsds = []
            try:
                for n, ns in enumerate(topology.secondaries, 1):
                    conf = topology.nsd_conf(folder / ns, n, zones)
                    log = folder / f"{ns}.out"
                    nsds.append(running(nsexec(ns, [NSD, "-d", "-c", str(conf)]), log))
                    nsds[-1].__enter__()
                yield mirrors
            finally:
                for nsd in nsds:
                    nsd.__exit__(None, None, None)
    finally:
        topology.down()


@pytest.fixture
def mirrors(tmp_path: Path) -> Iterator[Mirrors]:
    """Three mirrors of 3,000 random listings (v4, v6, domains, ranges, allowlist)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 (network namespaces)")
    if not Path(NSD).exists():
        pytest.skip("needs nsd (Debian package nsd)")
    yield from start_mirrors(tmp_path, 3, 3000)


def disagreements(m: Mirrors, names: list[str]) -> list[str]:
    """Return the names where a mirror's A or TXT answers differ from serve's."""
    ours = json.loads(in_namespace(PRIMARY, "answers", "127.0.0.1", str(DNS_PORT), *names))
    wrong = []
    for n, ns in enumerate(m.topology.secondaries, 1):
        host = m.topology.secondary_address(n)
        theirs = json.loads(in_namespace(ns, "answers", host, str(NSD_PORT), *names))
        wrong += [f"{ns} {x}: {ours[x]} != {theirs[x]}" for x in names if ours[x] != theirs[x]]
    return wrong


def test_three_mirrors_answer_like_serve_after_a_change(mirrors: Mirrors) -> None:
    """Each NSD answers the sampled names as serve does, before and after a `list add`."""
    m = mirrors
    # Asked until it answers: in its first seconds serve also imports its HTTP app and sends
    # the first AXFRs; a 2 s SOA query may go unanswered then on a loaded machine.
    serials = [-1]

    def served() -> bool:
        serials.append(m.serial(PRIMARY, "127.0.0.1", DNS_PORT, m.zones[0]))
        return serials[-1] > 0

    wait_for(served, 60, "serve's SOA serial")
    serial_before = serials[-1]
    m.wait_serials(serial_before, 120)  # the NSDs' start and first AXFRs
    assert disagreements(m, m.names) == []
    listed = json.loads(in_namespace(PRIMARY, "answers", "127.0.0.1", str(DNS_PORT), *m.names))
    assert sum(1 for v in listed.values() if v[0]) > 100  # the sample exercises listings

    started = time.monotonic()
    m.cli("list", "add", "10.0.9.9", "--cause", "spam", "--reason", "new trap hit")
    name = qname("10.0.9.9", m.config.ip_zone.name)
    for n, ns in enumerate(m.topology.secondaries, 1):
        host = m.topology.secondary_address(n)
        at = float(in_namespace(ns, "wait", host, str(NSD_PORT), name, "listed", "90"))
        assert at - started < 90
    wrong = disagreements(m, [*m.names, name])
    assert wrong == [], wrong[:10]
    # The change went by IXFR: each NSD logged an incremental transfer.
    serve_log = (m.config_path.parent / "serve.log").read_text(errors="replace")
    assert " ixfr " in serve_log or "ixfr zone=" in serve_log

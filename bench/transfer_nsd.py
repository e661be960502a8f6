"""Zone transfer to NSD: AXFR time and size, then change-to-secondary propagation by IXFR.

    python bench/transfer_nsd.py --size 100000 --port 6853 --nsd-port 6854

Builds SIZE IPv4 host listings plus SIZE/100 /24 ranges with an exclusion in each, serves
them with a DNS worker (TSIG-protected transfers, NOTIFY to NSD), starts NSD as secondary and
times: the first full transfer (AXFR), then one added listing until NSD answers it (NOTIFY,
IXFR, NSD's reload). Prints the load average before and after (the machine may be shared).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.publication.dnsbl.test_transfer import (
    NSD,
    answers,
    nsd_conf,
    transfer_toml,
    wait_serial,
)

from reputable.config import load_config  # after the path set-up above
from reputable.core.cause import Cause
from reputable.listings.model import AllowEntry, Batch, Listing
from reputable.publication.dnsbl.worker import Worker
from reputable.publication.snapshot.publish import publish
from reputable.testing import MemoryStore, write_config

NOW = datetime.now(UTC)


def main() -> int:
    """Run the benchmark and print one line per figure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--port", type=int, default=6853)
    parser.add_argument("--nsd-port", type=int, default=6854)
    args = parser.parse_args()
    print("loadavg before:", Path("/proc/loadavg").read_text().strip())
    rng = random.Random(7)
    hosts = {rng.randrange(0x0B000000, 0xDF000000) for _ in range(args.size)}
    listings = [
        Listing(
            subject=IPv4Network(a), cause=Cause.SPAM, reason="trap hit", source="b", listed_at=NOW
        )
        for a in hosts
    ]
    allows = []
    for _ in range(args.size // 100):
        net = IPv4Network((rng.randrange(0x0B0000, 0xDF0000) << 8, 24))
        listings.append(
            Listing(subject=net, cause=Cause.NETWORK, reason="bad net", source="b", listed_at=NOW)
        )
        allows.append(
            AllowEntry(
                subject=IPv4Network(int(net.network_address) + 7),
                note="",
                source="b",
                created_at=NOW,
            )
        )
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as folder:
        base = Path(folder)
        path = write_config(base, dns_port=args.port, extra=transfer_toml(args.nsd_port))
        path.write_text(path.read_text().replace("/lookup/$", "/lookup"))
        config = load_config(path)
        store = MemoryStore()
        store.apply(Batch(listings=tuple(listings), allows=tuple(allows)), actor="b", action="b")
        started = time.perf_counter()
        publish(store, config, NOW)
        print(f"snapshot build: {time.perf_counter() - started:.2f} s")
        worker = Worker(config, 0)
        worker.start()
        nsd_dir = base / "nsd"
        nsd_dir.mkdir()
        zone = config.ip_zone.name
        conf = nsd_conf(nsd_dir, args.nsd_port, args.port, [zone])
        nsd = subprocess.Popen([NSD, "-d", "-c", str(conf)], stderr=subprocess.DEVNULL)
        try:
            seconds = wait_serial(args.nsd_port, zone, store.serial(), timeout=600)
            assert worker.transfers is not None
            kind, records = worker.transfers.last[zone]
            print(f"first transfer ({kind}, {records} records) to NSD answering: {seconds:.2f} s")
            host = IPv4Address(0xDF000001)
            store.apply(
                Batch(
                    listings=(
                        Listing(
                            subject=IPv4Network(host),
                            cause=Cause.SPAM,
                            reason="new",
                            source="b",
                            listed_at=NOW,
                        ),
                    )
                ),
                actor="b",
                action="b",
            )
            started = time.perf_counter()
            publish(store, config, NOW)
            built = time.perf_counter() - started
            name = ".".join(reversed(str(host).split("."))) + "." + zone
            while not answers(args.nsd_port, name)[0]:
                time.sleep(0.02)
                if time.perf_counter() - started > 600:
                    raise SystemExit("NSD never followed")
            total = time.perf_counter() - started
            kind, records = worker.transfers.last[zone]
            print(
                f"one added listing: snapshot {built:.2f} s, visible on NSD after {total:.2f} s"
                f" ({kind}, {records} records)"
            )
        finally:
            nsd.terminate()
            nsd.wait(timeout=10)
            worker.stop()
    print("loadavg after:", Path("/proc/loadavg").read_text().strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())

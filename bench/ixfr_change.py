"""IXFR of a one-entry change on a big zone: CPU to compute it, records sent, records rendered.

    python bench/ixfr_change.py --store /tmp/bulk/b1m/store [--work /tmp/ixfr-bench]
        [--mode overlay|rebuild]

Copies the store folder of ``bench/bulk_pipeline.py`` (its SQLite file, its snapshot, built
by ``snapshot build``) to WORK, so the original stays as it was; loads the snapshot in a
zone-transfer answerer (``Transfers``, as a DNS worker does), adds one listing, and brings
the snapshot level: ``overlay`` writes the overlay (serve's path for a one-entry change),
``rebuild`` a full snapshot build (the only way before session 6, so the mode to compare old
code with: run it with ``PYTHONPATH=old/src``). Then it answers the IXFR from the first
serial and prints the CPU seconds of that answer (``time.process_time``: this process, one
thread), the records sent, and the records rendered to compute the difference.
"""

from __future__ import annotations

import argparse
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import dns.message
import dns.rdatatype
import dns.rrset

from reputable.app import open_store
from reputable.config import load_config
from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.listings.model import Batch, Listing
from reputable.publication.dnsbl.transfer import Transfers
from reputable.publication.snapshot.overlay import overlay_path
from reputable.publication.snapshot.publish import publish, publish_overlay
from reputable.publication.snapshot.view import Snapshot

ZONE = "bl.reputable.test"


def loadavg() -> str:
    """Return the 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def current(path: Path) -> Snapshot:
    """Return the snapshot at *path* with its overlay, as a DNS worker loads it."""
    snapshot = Snapshot(path)
    attach = getattr(snapshot, "attach_overlay", None)
    if attach is not None:
        attach(overlay_path(path))
    return snapshot


def main() -> None:
    """Copy the store, make one change, time the IXFR answer."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/ixfr-bench"))
    parser.add_argument("--mode", choices=("overlay", "rebuild"), default="overlay")
    parser.add_argument("--address", default="192.0.2.77")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    shutil.copytree(args.store, args.work, ignore=shutil.ignore_patterns("out", "*.overlay"))
    toml = args.work / "reputable.toml"
    toml.write_text(toml.read_text() + '\n[transfer]\nallow = ["127.0.0.1"]\n')
    config = load_config(toml)
    store = open_store(config)
    print(f"load before: {loadavg()}", flush=True)
    transfers = Transfers(config)
    first = current(config.snapshot_path)
    transfers.remember(first)
    listing = Listing(
        subject=parse_subject(args.address),
        cause=Cause.SPAM,
        reason="one new trap hit",
        source="bench",
        listed_at=datetime.now(UTC),
    )
    store.apply(Batch(listings=(listing,)), actor="cli", action="list")
    began = time.perf_counter()
    if args.mode == "overlay":
        if publish_overlay(store, config, datetime.now(UTC)) is None:
            raise SystemExit("no overlay written: run this with the code of session 6 or later")
    else:
        publish(store, config, datetime.now(UTC))
    print(f"{args.mode}: {time.perf_counter() - began:.2f} s wall", flush=True)
    transfers.remember(current(config.snapshot_path))
    query = dns.message.make_query(ZONE, dns.rdatatype.IXFR)
    soa = dns.rrset.from_text(ZONE + ".", 0, "IN", "SOA", f"ns. host. {first.serial} 1 1 1 1")
    query.authority.append(soa)
    wall, cpu = time.perf_counter(), time.process_time()
    messages = transfers.answer(query.to_wire(), "127.0.0.1")
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    count = sum(len(dns.message.from_wire(m, one_rr_per_rrset=True).answer) for m in messages)
    kind, sent = transfers.last[ZONE]
    rendered = getattr(transfers, "rendered", "not counted (code before session 6)")
    print(
        f"IXFR answer: {cpu:.3f} s CPU, {wall:.3f} s wall; {kind} of {sent} records"
        f" ({count} on the wire); records rendered for the difference: {rendered}"
    )
    print(f"load after: {loadavg()}")
    store.close()


if __name__ == "__main__":
    main()

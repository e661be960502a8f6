"""IXFR of a one-entry change on a big zone: CPU to compute it, records sent, records rendered.

    python bench/ixfr_change.py --store /tmp/bulk/b1m/store [--work /tmp/ixfr-bench]
        [--mode overlay|rebuild|policy|import]

Copies the store folder of ``bench/bulk_pipeline.py`` (its SQLite file, its snapshot, built
by ``snapshot build``) to WORK, so the original stays as it was; loads the snapshot in a
zone-transfer answerer (``Transfers``, as a DNS worker does), adds one listing, and brings
the snapshot level: ``overlay`` writes the overlay (serve's path for a one-entry change),
``rebuild`` a full snapshot build (the only way before session 6, so the mode to compare old
code with: run it with ``PYTHONPATH=old/src``). ``policy`` is a policy run instead of the
one listing: a /24 range and three hosts of one source are listed and the base rebuilt
first; then one policy transaction drops that source, lists five new hosts and ends five
listed ones, and a full rebuild follows (its CPU is printed: it names what moved).
``import`` is ``reputable import rbldnsd`` of a file of --lines new hosts (5 by default), then
``reputable snapshot build``, both as subprocesses (so this process holds only what the
answerer holds); more than store/bulk.py's NAMED_MAX (100) lines are audited as ``*``, a
change nothing names (every import was, before that limit). Then it answers the IXFR from
the first serial and prints the CPU seconds of that answer (``time.process_time``: this
process, one thread), the records sent, the records rendered to compute the difference, and
this process's RSS before the answer and its peak after.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import struct
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
    parser.add_argument(
        "--mode", choices=("overlay", "rebuild", "policy", "import"), default="overlay"
    )
    parser.add_argument("--address", default="192.0.2.77")
    parser.add_argument("--lines", type=int, default=5, help="hosts in the import (--mode import)")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    shutil.copytree(args.store, args.work, ignore=shutil.ignore_patterns("out", "*.overlay"))
    toml = args.work / "reputable.toml"
    toml.write_text(toml.read_text() + '\n[transfer]\nallow = ["127.0.0.1"]\n')
    config = load_config(toml)
    store = open_store(config)
    print(f"load before: {loadavg()}", flush=True)
    transfers = Transfers(config)
    if args.mode == "policy":
        before_policy(store, config)
    first = current(config.snapshot_path)
    transfers.remember(first)
    if args.mode == "policy":
        policy_run(store, config)
        transfers.remember(current(config.snapshot_path))
        answer_ixfr(transfers, first.serial)
        store.close()
        return
    if args.mode == "import":
        bulk_import(toml, args.work, args.lines)
        transfers.remember(current(config.snapshot_path))
        answer_ixfr(transfers, first.serial)
        store.close()
        return
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
    answer_ixfr(transfers, first.serial)
    store.close()


def before_policy(store: Any, config: Any) -> None:
    """List a /24 and three hosts of source "escalation" and rebuild the base on them."""
    now = datetime.now(UTC)
    listings = [
        Listing(
            subject=parse_subject(text),
            cause=Cause.SPAM,
            reason="escalated",
            source="escalation",
            listed_at=now,
        )
        for text in ("198.18.7.0/24", "198.18.9.1", "198.18.9.2", "198.18.10.3")
    ]
    store.apply(Batch(listings=tuple(listings)), actor="cli", action="list")
    cpu = time.process_time()
    publish(store, config, now)
    print(f"base rebuild: {time.process_time() - cpu:.2f} s CPU", flush=True)


def policy_run(store: Any, config: Any) -> None:
    """One policy transaction (a source dropped, five listed, five ended), then a rebuild."""
    from reputable.listings.policy import PolicyChanges

    now = time.time()
    ended = []
    for listing in store.listings():
        if listing.source != "escalation" and "/" not in listing.subject_text:
            ended.append((listing.subject_text, listing.cause, listing.source, now - 1, "quiet"))
        if len(ended) == 5:
            break
    upserts = tuple(
        (f"192.0.2.{i}", Cause.SPAM, "trap hit", "policy:bench", now - 60, now + 86400)
        for i in range(10, 15)
    )
    store.apply_policy(
        PolicyChanges(upserts=upserts, drops=((None, "escalation"),), ends=tuple(ended)),
        actor="policy",
        now=now,
    )
    cpu = time.process_time()
    publish(store, config, datetime.fromtimestamp(now, UTC))
    print(f"rebuild after the policy run: {time.process_time() - cpu:.2f} s CPU", flush=True)


def bulk_import(toml: Path, work: Path, lines: int) -> None:
    """Import *lines* new hosts with ``import rbldnsd`` and rebuild, as an operator would."""
    data = work / "small.ip4set"
    hosts = "".join(f"198.51.{100 + i // 256}.{i % 256}\n" for i in range(lines))
    data.write_text(":127.0.0.2:spam source $\n" + hosts)
    cli = ["reputable", "--config", str(toml)]
    for argv in (["import", "rbldnsd", str(data), "--zone", ZONE], ["snapshot", "build"]):
        began = time.perf_counter()
        subprocess.run([*cli, *argv], check=True, stdout=subprocess.DEVNULL)
        print(f"{' '.join(argv[:2])}: {time.perf_counter() - began:.2f} s wall", flush=True)


def answer_ixfr(transfers: Transfers, serial: int) -> None:
    """Answer the IXFR from *serial* and print its cost."""
    query = dns.message.make_query(ZONE, dns.rdatatype.IXFR)
    soa = dns.rrset.from_text(ZONE + ".", 0, "IN", "SOA", f"ns. host. {serial} 1 1 1 1")
    query.authority.append(soa)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    stream = getattr(transfers, "stream", transfers.answer)
    wall, cpu = time.perf_counter(), time.process_time()
    count = 0
    for message in stream(query.to_wire(), "127.0.0.1"):  # one by one, as the worker sends
        count += struct.unpack_from(">H", message, 6)[0]
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    kind, sent = transfers.last[ZONE]
    rendered = getattr(transfers, "rendered", "not counted (code before session 6)")
    whole = getattr(transfers, "whole_zone_diffs", "?")
    print(
        f"IXFR answer: {cpu:.3f} s CPU, {wall:.3f} s wall; {kind} of {sent} records"
        f" ({count} on the wire); records rendered for the difference: {rendered}"
        f" (whole-zone comparisons: {whole}); peak RSS {rss} MB before the answer,"
        f" {peak} MB after"
    )
    print(f"load after: {loadavg()}")


if __name__ == "__main__":
    main()

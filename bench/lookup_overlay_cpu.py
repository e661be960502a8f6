#!/usr/bin/env python3
"""CPU of one single-address lookup through the snapshot holder, with an overlay attached.

For A/B comparisons on a loaded machine (old code ignores the overlay, new code checks it):
the thread CPU time per lookup of ``SnapshotHolder.current()`` + the API's IPv4 document
(``web.deps.ipv4_json``, what GET /api/v1/lookup/<ip> answers with) and of the general
``lookup`` (the web page, CIDR-free policy path), over a SQLite store of HOSTS single
addresses with an overlay of 20 changed ones. Half the addresses asked are listed.

    python bench/lookup_overlay_cpu.py DIR [HOSTS]          # builds DIR once, then measures
    PYTHONPATH=/path/to/old/src python bench/lookup_overlay_cpu.py DIR   # same DIR: A/B
"""

import random
import sys
import time
from datetime import UTC, datetime
from ipaddress import IPv4Address
from pathlib import Path

from reputable.config import DEFAULT_TOML, parse_config
from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.listings.model import Batch, Listing
from reputable.publication.lookup import Zones, lookup
from reputable.publication.snapshot.holder import SnapshotHolder
from reputable.web.deps import ipv4_json

FOLDER = Path(sys.argv[1])
HOSTS = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
NOW = datetime.now(UTC)
FOLDER.mkdir(parents=True, exist_ok=True)
(FOLDER / "reputable.toml").write_text(DEFAULT_TOML, encoding="utf-8")
config = parse_config(DEFAULT_TOML, FOLDER / "reputable.toml")
rng = random.Random(7)
hosts = sorted(rng.sample(range(0x0B000000, 0x0BFFFFFF), HOSTS))


def listing(n: int, reason: str) -> Listing:
    return Listing(
        subject=parse_subject(str(IPv4Address(n))),
        cause=Cause.SPAM,
        reason=reason,
        source="bench",
        listed_at=NOW,
    )


if not config.snapshot_path.exists():  # build once: the A/B runs read the same files
    from reputable.publication.snapshot.publish import publish, publish_overlay
    from reputable.store.dsn import open_dsn

    store = open_dsn(f"sqlite:///{FOLDER / 'reputable.db'}")
    for i in range(0, HOSTS, 10_000):
        batch = tuple(listing(n, "trap hits on $") for n in hosts[i : i + 10_000])
        store.apply(Batch(listings=batch), actor="cli", action="list")
    publish(store, config, NOW)
    for n in hosts[:20]:  # 20 one-entry changes: the overlay
        store.apply(Batch(listings=(listing(n + 1, "fresh"),)), actor="cli", action="list")
    assert publish_overlay(store, config, NOW) is not None
    store.close()

holder = SnapshotHolder(config.snapshot_path)
zones = Zones.of(config)
asked = [rng.choice(hosts) if k % 2 else rng.randrange(1 << 32) for k in range(100_000)]
asked[::1000] = [n + 1 for n in hosts[:20]] * 5  # a few overlaid addresses among them
texts = [str(IPv4Address(n)) for n in asked]
subjects = [parse_subject(t) for t in texts[:20_000]]
score = (0, "clean")
current = holder.current
for label, run in (
    (
        "ipv4_json",
        lambda: [
            ipv4_json(current(), n, t, zones, score) for n, t in zip(asked, texts, strict=True)
        ],
    ),
    ("lookup", lambda: [lookup(current(), s, zones) for s in subjects]),
):
    count = len(asked) if label == "ipv4_json" else len(subjects)
    run()  # warm the caches
    best = []
    for _ in range(3):
        t = time.thread_time()
        run()
        best.append((time.thread_time() - t) / count * 1e6)
    print(f"{label}: {min(best):.2f} us CPU per lookup (min of 3 x {count})", flush=True)
overlay = getattr(holder.current(), "overlay", None)
print(f"overlay attached: {overlay is not None}")

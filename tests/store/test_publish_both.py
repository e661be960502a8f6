"""The snapshot serve publishes is the same whichever store it is built from: 3,000 random
listings and allowlist entries in SQLite, PostgreSQL and the in-memory reference store, then
the shared lookup (what DNS and the HTTP API answer) compared for 3,000 sampled subjects."""

from __future__ import annotations

import random
from pathlib import Path

from reputable.config import load_config
from reputable.listings.model import Batch
from reputable.publication.lookup import Zones, lookup_text
from reputable.publication.snapshot.publish import publish
from reputable.publication.snapshot.view import Snapshot
from reputable.store.sqlite import SQLStore
from reputable.testing import MemoryStore, free_port, write_config
from tests.publication.test_lookup import NOW, random_listings, sampled_subjects


def test_snapshot_from_either_store_answers_like_the_reference(
    any_store: SQLStore, tmp_path: Path
) -> None:
    """Every sampled subject gets the same codes, TXTs, times and listed subjects."""
    listings, allows = random_listings(random.Random(20261205), 3000)
    batch = Batch(listings=tuple(listings), allows=tuple(allows))
    reference = MemoryStore()
    reference.apply(batch, actor="t", action="t")
    any_store.apply(batch, actor="t", action="t")
    snapshots = []
    for name, store in (("reference", reference), ("store", any_store)):
        (tmp_path / name).mkdir()
        config = load_config(write_config(tmp_path / name, dns_port=free_port()))
        publish(store, config, NOW)  # type: ignore[arg-type]
        snapshots.append(Snapshot(config.snapshot_path))
    zones = Zones.of(config)
    differ, listed = [], 0
    for subject in sampled_subjects(random.Random(7), listings, 3000):
        want = lookup_text(snapshots[0], subject, zones)
        got = lookup_text(snapshots[1], subject, zones)
        if got != want:
            differ.append(f"{subject}: {got} != {want}")
        listed += want.listed
    assert differ == []
    assert listed > 600  # the sample reaches listed subjects, not only misses

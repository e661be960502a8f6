"""Lookups through the holder answer overlaid addresses from the overlay, as DNS does.

The composite view (base snapshot + attached overlay, snapshot/holder.py) must give every
face -- the shared lookup, the API's fast IPv4 document, the policy service's memoised
decider -- exactly what a full rebuild would, for changed and unchanged subjects alike.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reputable.core.address import parse_subject
from reputable.policyd.fast import Decider
from reputable.policyd.settings import parse_policy
from reputable.publication.lookup import Zones, lookup
from reputable.publication.snapshot.holder import RECHECK, SnapshotHolder
from reputable.publication.snapshot.publish import publish, publish_overlay
from reputable.publication.snapshot.view import Snapshot
from reputable.store.sqlite import SQLStore
from reputable.web.deps import ipv4_json
from tests.publication.snapshot.test_overlay import NOW, SAMPLES, _change, _config, _seed

CIDRS = (
    "198.51.100.0/24",
    "198.51.100.0/27",
    "192.0.2.0/24",
    "192.0.2.8/31",
    "203.0.113.192/26",
    "0.0.0.0/0",
    "2001:db8:2::/64",
    "2001:db8::/32",
)
SCORE = (0, "clean")


def _newer(holder: SnapshotHolder) -> Snapshot:
    """Return the holder's snapshot once its stat-based recheck is due again."""
    time.sleep(RECHECK + 0.05)
    return holder.current()


def test_holder_view_answers_like_a_full_rebuild(any_store: SQLStore, tmp_path: Path) -> None:
    """Listed, unlisted, allowlisted and delisted changes: the view equals a full build."""
    config = _config(tmp_path / "overlay")
    zones = Zones.of(config)
    _seed(any_store)
    publish(any_store, config, NOW)
    holder = SnapshotHolder(config.snapshot_path)
    before = holder.current()
    assert before.overlay is None
    assert _newer(holder) is before  # nothing moved: the same object, memos kept

    _change(any_store)
    assert publish_overlay(any_store, config, NOW) is not None
    view = _newer(holder)
    assert view is not before and view.overlay is not None
    assert view.file is before.file  # only the overlay was read: the base mapping is kept
    assert _newer(holder) is view

    full_config = _config(tmp_path / "full")
    publish(any_store, full_config, NOW)
    full = Snapshot(full_config.snapshot_path)
    assert view.effective_serial == full.serial == any_store.serial()

    for text in SAMPLES + CIDRS:
        subject = parse_subject(text)
        assert lookup(view, subject, zones) == lookup(full, subject, zones), text
    for text in SAMPLES:
        if ":" in text:
            continue
        value = int(parse_subject(text).network_address)
        assert ipv4_json(view, value, text, zones, SCORE) == ipv4_json(
            full, value, text, zones, SCORE
        ), text

    # The changes really show, and the base alone still says the old thing (the test bites).
    stale = Snapshot(config.snapshot_path)
    added, removed, vouched = (parse_subject(t) for t in ("192.0.2.77", "192.0.2.8", "192.0.2.9"))
    assert lookup(view, added, zones).listed and not lookup(stale, added, zones).listed
    assert not lookup(view, removed, zones).listed and lookup(stale, removed, zones).listed
    now_vouched = lookup(view, vouched, zones)
    assert now_vouched.allowlisted and not now_vouched.listed
    assert not lookup(stale, vouched, zones).allowlisted
    net = lookup(view, parse_subject("192.0.2.8/31"), zones)  # .8 delisted, .9 allowlisted
    assert not net.listings and [a.listed_subject for a in net.allows] == ["192.0.2.9"]

    # A full rebuild folds the overlay in: the holder drops it, answers stay the same.
    publish(any_store, config, NOW)
    rebuilt = _newer(holder)
    assert rebuilt.overlay is None
    for text in SAMPLES + CIDRS:
        subject = parse_subject(text)
        assert lookup(rebuilt, subject, zones) == lookup(full, subject, zones), text


@pytest.mark.parametrize("soft", [False, True])
def test_policy_decider_follows_the_overlay(
    any_store: SQLStore, tmp_path: Path, soft: bool
) -> None:
    """The memoised decider gives the full build's action for changed addresses too."""
    config = _config(tmp_path / "overlay")
    zones = Zones.of(config)
    settings = parse_policy({"listen": "127.0.0.1:0", "soft": soft})
    _seed(any_store)
    publish(any_store, config, NOW)
    holder = SnapshotHolder(config.snapshot_path)
    decider = Decider(settings, zones)
    base = holder.current()
    for text in SAMPLES:  # fill the memo from the base first
        decider.decide(base, {"client_address": text})
    _change(any_store)
    assert publish_overlay(any_store, config, NOW) is not None
    view = _newer(holder)
    full_config = _config(tmp_path / "full")
    publish(any_store, full_config, NOW)
    full = Snapshot(full_config.snapshot_path)
    reference = Decider(settings, zones)
    for _ in range(2):  # the second round answers from whatever the decider memoised
        for text in SAMPLES:
            attrs = {"client_address": text, "helo_name": "mx.evil.example"}
            assert decider.decide(view, attrs) == reference.decide(full, attrs), text
    listed = decider.decide(view, {"client_address": "192.0.2.77"})
    assert "192.0.2.77" in listed[1]
    assert decider.decide(view, {"client_address": "192.0.2.8"}) == decider.decide(
        view, {"client_address": "192.0.2.10"}
    )  # delisted: as an unlisted address

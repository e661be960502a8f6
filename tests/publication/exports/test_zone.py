"""A zone's records: as the whole-list renderer wrote them, with the overlay as a full rebuild,
in flat memory, and a change's records found from its addresses alone."""

from __future__ import annotations

import gc
import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from ipaddress import IPv4Address, IPv6Address, ip_network
from pathlib import Path

import pytest

from reputable.config import Config, load_config
from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.listings.model import AllowEntry, Batch, Listing
from reputable.publication.exports import zone
from reputable.publication.exports.zone import (
    EXISTS_TYPE,
    Record,
    ZoneSettings,
    records,
    records_at,
    zone_settings,
)
from reputable.publication.lookup import Zones, lookup_text
from reputable.publication.snapshot.build import build
from reputable.publication.snapshot.layout import write_snapshot
from reputable.publication.snapshot.overlay import overlay_path
from reputable.publication.snapshot.publish import publish, publish_overlay
from reputable.publication.snapshot.view import Snapshot
from reputable.store.sqlite import SQLStore
from reputable.testing import MemoryStore, free_port, write_config
from tests.publication.exports.zone_reference import reference_records
from tests.publication.snapshot.test_overlay import _change, _config, _seed
from tests.publication.test_lookup import NOW, random_listings

Render = Callable[[Snapshot, ZoneSettings], Iterator[Record]]


def _random_snapshot(tmp_path: Path, seed: int) -> tuple[Config, Snapshot]:
    config = load_config(write_config(tmp_path, dns_port=free_port()))
    listings, allows = random_listings(random.Random(seed), 3000)
    store = MemoryStore()
    store.apply(Batch(listings=tuple(listings), allows=tuple(allows)), actor="t", action="t")
    publish(store, config, NOW)
    store.close()
    return config, Snapshot(config.snapshot_path)


@pytest.mark.parametrize("seed", [20261206, 7, 99])
def test_records_are_those_of_the_whole_list_renderer(tmp_path: Path, seed: int) -> None:
    """Hosts, ranges (octet and nibble wildcards), exclusions in ranges, IPv6 and domains:
    every zone writes the records, in the order, of the renderer it replaced."""
    config, snapshot = _random_snapshot(tmp_path, seed)
    for settings in zone_settings(config):
        ours = list(records(snapshot, settings))
        assert ours == list(reference_records(snapshot, settings)), settings.name
    ip = list(records(snapshot, zone_settings(config)[0]))
    owners = [r.owner for r in ip]
    assert any(o.startswith("*.") and o.count(".") == 3 for o in owners)  # an IPv4 wildcard
    assert any(o.startswith("*.") and o.count(".") > 10 for o in owners)  # a nibble wildcard
    assert any(r.rtype == f"TYPE{EXISTS_TYPE}" for r in ip)  # an exclusion inside a range
    assert any(o.count(".") == 3 and not o.startswith("*") for o in owners)  # a host


def _layered(config: Config) -> Snapshot:
    snapshot = Snapshot(config.snapshot_path)
    assert snapshot.attach_overlay(overlay_path(config.snapshot_path))
    return snapshot


def test_records_with_an_overlay_are_those_of_a_full_rebuild(
    any_store: SQLStore, tmp_path: Path
) -> None:
    """Changed addresses answered by the overlay are written as the rebuilt base writes them,
    and the SOA carries the overlay's serial."""
    config = _config(tmp_path / "overlay")
    _seed(any_store)
    publish(any_store, config, NOW)
    before = Snapshot(config.snapshot_path)
    _change(any_store)
    assert publish_overlay(any_store, config, NOW) is not None
    layered = _layered(config)
    full_config = _config(tmp_path / "full")
    publish(any_store, full_config, NOW)
    full = Snapshot(full_config.snapshot_path)
    assert layered.effective_serial == full.serial == any_store.serial()
    for settings in zone_settings(config):
        assert list(records(layered, settings)) == list(records(full, settings))
        if settings.kind != "domain":  # the changes show: not two equally stale renderings
            assert set(records(layered, settings)) != set(records(before, settings))


def _host(address: str, cause: Cause, reason: str) -> Listing:
    return Listing(
        subject=parse_subject(address),
        cause=cause,
        reason=reason,
        source="t",
        listed_at=NOW - timedelta(hours=1),
    )


def _whole_difference(
    old: Snapshot, new: Snapshot, settings: ZoneSettings
) -> tuple[set[Record], set[Record]]:
    before = {r for r in records(old, settings) if r.rtype != "SOA"}
    after = {r for r in records(new, settings) if r.rtype != "SOA"}
    return before - after, after - before


def test_the_records_at_changed_addresses_give_the_whole_difference(
    any_store: SQLStore, tmp_path: Path
) -> None:
    """Hosts added inside and outside ranges, removed, allowlisted, IPv6: comparing the nodes
    above the changed addresses finds exactly what comparing the whole zones finds."""
    rng = random.Random(5)
    config = _config(tmp_path / "changes")
    listings, allows = random_listings(rng, 2000)
    any_store.apply(Batch(listings=tuple(listings), allows=tuple(allows)), actor="t", action="t")
    publish(any_store, config, NOW)
    old = Snapshot(config.snapshot_path)
    v4: set[int] = set()
    v6: set[int] = set()
    for i in range(40):
        if i % 10 == 9:
            text = f"2001:db8:{rng.randrange(4):x}:{rng.randrange(4):x}::{rng.randrange(16):x}"
            v6.add(int(IPv6Address(text)))
        else:
            text = f"10.0.{rng.randrange(8)}.{rng.randrange(256)}"
            v4.add(int(IPv4Address(text)))
        pick = rng.random()
        if pick < 0.6:
            cause = rng.choice([Cause.SPAM, Cause.MANUAL, Cause.COMPROMISED])
            batch = Batch(listings=(_host(text, cause, rng.choice(["trap $", "r", "bot"])),))
            any_store.apply(batch, actor="cli", action="list")
        elif pick < 0.85:
            any_store.remove_listings(parse_subject(text), cause=None, source=None, actor="cli")
        else:
            entry = AllowEntry(subject=parse_subject(text), note="mx", source="t", created_at=NOW)
            any_store.apply(Batch(allows=(entry,)), actor="cli", action="allow")
    result = publish_overlay(any_store, config, NOW)
    assert result is not None
    new = _layered(config)
    assert new.overlay is not None  # what changed, as serve knows it: the audited addresses
    assert new.overlay.v4 <= v4 and len(new.overlay) > 20
    v4 = set(new.overlay.v4)
    v6 = {int.from_bytes(a, "big") for a in new.overlay.v6}
    moved = 0
    for settings in zone_settings(config):
        deleted, added = _whole_difference(old, new, settings)
        near_old = records_at(old, settings, v4, v6)
        near_new = records_at(new, settings, v4, v6)
        assert (near_old - near_new, near_new - near_old) == (deleted, added), settings.name
        moved += len(deleted) + len(added)
    assert moved > 40


def _rows(count: int) -> list[tuple[str, int, str, str, float, float | None]]:
    """*count* IPv4 hosts spread over the space, each with its own TXT, and a few ranges."""
    rng = random.Random(count)
    at = (NOW - timedelta(hours=1)).timestamp()
    hosts = {str(IPv4Address(rng.randrange(0x01000000, 0xDF000000))) for _ in range(count)}
    rows: list[tuple[str, int, str, str, float, float | None]] = [
        (h, 4, "spam", f"trap hit from {h}", at, None) for h in sorted(hosts)
    ]
    rows += [(f"10.{i}.0.0/16", 4, "network", "segment", at, None) for i in range(20)]
    return rows


def _blocks_while_walking(tmp_path: Path, count: int, render: Render) -> int:
    """Return the most memory blocks held at once (sampled) while *render* writes the IP zone
    of *count* hosts (the records are counted, not kept)."""
    config = load_config(write_config(tmp_path, dns_port=free_port()))
    built = build(
        _rows(count),
        [],
        ip_zone=config.ip_zone,
        domain_zone=config.domain_zone,
        allow_zone=config.allow_zone,
        serial=1,
        now=NOW,
    )
    path = tmp_path / f"{count}.snapshot"
    write_snapshot(path, built.header, built.sections)
    snapshot = Snapshot(path)
    # The snapshot's own memo of value -> atoms (bounded at 65,536) is the view's, not the
    # walk's: left out, so the figure is what the walk itself holds.
    snapshot.atoms = snapshot._atoms  # type: ignore[assignment]  # the uncached lookup
    settings = replace(zone_settings(config)[0], nameservers=("ns.test",))
    del built
    gc.collect()
    base = sys.getallocatedblocks()
    peak = written = 0
    for written, _ in enumerate(render(snapshot, settings)):
        if written % 128 == 0:
            peak = max(peak, sys.getallocatedblocks() - base)
    assert written > 2 * count
    return peak


def test_writing_a_zone_holds_nothing_per_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four times the hosts, about the same memory: the walk holds no list of the zone (the
    renderer it replaced held several blocks per host)."""
    monkeypatch.setattr(zone, "KEY_CACHE", 256)  # full at both sizes, so flat is flat
    small = _blocks_while_walking(tmp_path, 4_000, records)
    large = _blocks_while_walking(tmp_path, 16_000, records)
    assert large < small * 1.3 + 500, (small, large)


def _snapshot_of(
    config: Config, rows: list[tuple[str, int, str, str, float, float | None]]
) -> Snapshot:
    """Build *rows* (no allowlist) into *config*'s snapshot at NOW and map it."""
    zones = {"ip_zone": config.ip_zone, "domain_zone": config.domain_zone}
    built = build(rows, [], allow_zone=config.allow_zone, serial=1, now=NOW, **zones)
    write_snapshot(config.snapshot_path, built.header, built.sections)
    return Snapshot(config.snapshot_path)


def test_a_wildcard_names_the_range_that_covers_it(tmp_path: Path) -> None:
    """Adjacent ranges with the same answer, one holding a host: the wildcards inside that
    range's node name it (the whole-list renderer named the first range of the whole run;
    within one node, a run of equal children still names its first: 10.0.0.0/16)."""
    config = load_config(write_config(tmp_path, dns_port=free_port()))
    at = (NOW - timedelta(hours=1)).timestamp()
    rows: list[tuple[str, int, str, str, float, float | None]] = [
        (f"10.{i}.0.0/16", 4, "network", "segment", at, None) for i in range(20)
    ]
    rows.append(("10.14.104.7", 4, "spam", "trap hit", at, None))
    snapshot = _snapshot_of(config, rows)
    settings = zone_settings(config)[0]
    txt = {r.owner: r.rdata for r in records(snapshot, settings) if r.rtype == "TXT"}
    assert txt["*.14.10"].endswith('/lookup/10.14.0.0/16"')
    assert txt["*.104.14.10"].endswith('/lookup/10.14.0.0/16"')
    old = {r.owner: r.rdata for r in reference_records(snapshot, settings) if r.rtype == "TXT"}
    assert old["*.14.10"].endswith('/lookup/10.0.0.0/16"')  # what the old renderer wrote


def test_hosts_whose_txt_names_them_are_never_one_wildcard(tmp_path: Path) -> None:
    """A whole /24 of hosts whose reasons name them (one ``$`` template in the snapshot) and
    one under a single reason (the lookup URL's ``$``): every host's name (or the wildcard,
    for the one it stands for) has a TXT naming that host, as DNS answers it, and the
    reason the lookup shows is the one stored."""
    config = load_config(write_config(tmp_path, dns_port=free_port()))
    at = (NOW - timedelta(hours=1)).timestamp()
    rows: list[tuple[str, int, str, str, float, float | None]] = [
        (f"60.1.1.{last}", 4, "spam", f"spam source 60.1.1.{last}", at, None) for last in range(256)
    ]
    rows += [(f"60.1.2.{last}", 4, "spam", "full", at, None) for last in range(256)]
    snapshot = _snapshot_of(config, rows)
    assert len(snapshot.atom_code) > 512  # one atom a host
    templates = {snapshot.template(a) for a in range(1, len(snapshot.atom_code))}
    assert b"spam source $ http://127.0.0.1:8080/lookup/$" in templates
    assert not any(b"spam source 60.1.1." in t for t in templates)  # no per-host template
    settings = zone_settings(config)[0]
    txt = {r.owner: r.rdata for r in records(snapshot, settings) if r.rtype == "TXT"}
    for last in range(256):  # its own name, else the /24's wildcard: a TXT naming this host
        own = txt.get(f"{last}.1.1.60", txt.get("*.1.1.60"))
        assert own == f'"spam source 60.1.1.{last} http://127.0.0.1:8080/lookup/60.1.1.{last}"'
        own = txt.get(f"{last}.2.1.60", txt.get("*.2.1.60"))
        assert own == f'"full http://127.0.0.1:8080/lookup/60.1.2.{last}"'
    for last in (0, 7, 255):
        answer = lookup_text(snapshot, f"60.1.1.{last}", Zones.of(config))
        assert [(a.reason, a.txt) for a in answer.listings] == [
            (
                f"spam source 60.1.1.{last}",
                f"spam source 60.1.1.{last} http://127.0.0.1:8080/lookup/60.1.1.{last}",
            )
        ]


def _sparse_rows(rng: random.Random) -> list[tuple[str, int, str, str, float, float | None]]:
    """Hosts alone in their /24s, hosts inside ranges answering as the range or otherwise,
    whole /24s of hosts alike and unlike, and ranges of several sizes: every case of a node
    answered from the host array."""
    at = (NOW - timedelta(hours=1)).timestamp()
    rows: list[tuple[str, int, str, str, float, float | None]] = []
    for _ in range(1500):
        host = str(IPv4Address(rng.randrange(0x01000000, 0xDF000000)))
        rows.append((host, 4, rng.choice(["spam", "spam", "harvest"]), "trap", at, None))
    for net in ("20.0.0.0/16", "30.16.0.0/12", "40.1.2.0/24", "50.0.0.0/8"):
        rows.append((net, 4, "spam", "range", at, None))
    for prefix in ("20.0", "30.17", "50.9"):  # inside ranges: same cause as the range or not
        for _ in range(60):
            host = f"{prefix}.{rng.randrange(4)}.{rng.randrange(256)}"
            rows.append((host, 4, rng.choice(["spam", "harvest"]), "in range", at, None))
    for prefix, causes in (
        ("60.1.1", ["spam"]),
        ("60.1.2", ["spam", "harvest"]),
        ("20.0.9", ["spam"]),
    ):
        for last in range(256):  # a whole /24 of hosts, all alike or mixed
            rows.append((f"{prefix}.{last}", 4, rng.choice(causes), "full", at, None))
    for last in range(256):  # a /24 whose every host answers, all alike, in a /16 of one
        rows.append((f"70.2.3.{last}", 4, "harvest", "full", at, None))
    for last in range(200):  # a /24 more than half listed, alike: a wildcard without "$"
        rows.append((f"90.7.8.{last}", 4, "spam", "trap", at, None))
    for last in range(120):  # a /24 with runs of neighbours, alike or not, a third unlisted
        if rng.random() < 0.66:
            reason = rng.choice(["trap", "trap", f"spam source 80.5.6.{last}"])
            rows.append((f"80.5.6.{last}", 4, rng.choice(["spam", "harvest"]), reason, at, None))
    rows.append(("2001:db8::1", 6, "spam", "v6", at, None))
    return rows


@pytest.mark.parametrize(("seed", "url"), [(1, "/lookup/$"), (2, "/lookup/$"), (3, "/lookup")])
def test_nodes_from_the_host_array_are_written_as_segment_by_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, url: str
) -> None:
    """The runs of a node found from its slice of the host array are those found by looking
    segment by segment, and a /24 of a few hosts written from its hosts alone writes what
    its runs write: the records are the same, in the same order, with exclusions too. With
    a lookup URL without ``$``, neighbours with the same cause and reason answer alike."""
    path = write_config(tmp_path, dns_port=free_port())
    path.write_text(path.read_text().replace("/lookup/$", url))
    config = load_config(path)
    rng = random.Random(seed)
    allows = [
        (text, 4 if "." in text else 6, "partner", None)
        for text in (
            *("20.0.1.7", "50.9.0.0/30", "60.1.1.200", "40.1.2.128/25", "70.2.3.9"),
            *("80.5.6.10", "80.5.6.11"),  # allowlisted among listed neighbours
        )
    ]
    built = build(
        _sparse_rows(rng),
        allows,
        ip_zone=config.ip_zone,
        domain_zone=config.domain_zone,
        allow_zone=config.allow_zone,
        serial=1,
        now=NOW,
    )
    write_snapshot(config.snapshot_path, built.header, built.sections)
    snapshot = Snapshot(config.snapshot_path)
    calls: list[bool] = []
    fast = zone._Space.host_runs

    def counted(self: zone._Space, lo: int, size: int, fanout: int) -> object:
        found = fast(self, lo, size, fanout)
        calls.append(found is not None)
        return found

    leaves: list[bool] = []
    fast_leaf = zone._Space.leaf_hosts

    def counted_leaf(self: zone._Space, lo: int) -> object:
        found = fast_leaf(self, lo)
        leaves.append(found is not None)
        return found

    monkeypatch.setattr(zone._Space, "host_runs", counted)
    monkeypatch.setattr(zone._Space, "leaf_hosts", counted_leaf)
    settings = zone_settings(config)
    ours = {s.name: list(records(snapshot, s)) for s in settings}
    assert calls.count(True) > 1000 and calls.count(False) > 10  # both ways were taken
    assert leaves.count(True) > 1000 and leaves.count(False) > 5  # leaves too
    monkeypatch.setattr(zone._Space, "host_runs", lambda *_: None)
    monkeypatch.setattr(zone._Space, "leaf_hosts", lambda *_: None)
    for s in settings:
        assert ours[s.name] == list(records(snapshot, s)), s.name
    owners = {r.owner for r in ours[settings[0].name]}
    assert "*.1.60" in owners or "*.1.1.60" in owners  # a uniform /24 of hosts: a wildcard


@pytest.mark.parametrize("seed", [3, 11])
def test_the_records_at_changed_ranges_give_the_whole_difference(
    any_store: SQLStore, tmp_path: Path, seed: int
) -> None:
    """Ranges added, removed and allowlisted (IPv4 of several sizes, IPv6) beside hosts and
    other ranges, through a full rebuild: the nodes the rebuilt base's ``since`` names (the
    smallest node holding each range, its inside and the nodes above) hold exactly the
    difference of the whole zones."""
    rng = random.Random(seed)
    config = _config(tmp_path / "ranges")
    listings, allows = random_listings(rng, 1500)
    any_store.apply(Batch(listings=tuple(listings), allows=tuple(allows)), actor="t", action="t")
    publish(any_store, config, NOW)
    old = Snapshot(config.snapshot_path)
    for _ in range(12):
        plen = rng.randrange(14, 30)
        text = str(ip_network(f"10.{rng.randrange(2)}.{rng.randrange(8)}.0/{plen}", False))
        if rng.random() < 0.3:
            text = str(ip_network(f"2001:db8:{rng.randrange(4):x}::/{rng.choice([48, 62])}", False))
        pick = rng.random()
        if pick < 0.5:
            cause = rng.choice([Cause.SPAM, Cause.NETWORK])
            batch = Batch(listings=(_host(text, cause, rng.choice(["segment", "r"])),))
            any_store.apply(batch, actor="cli", action="list")
        elif pick < 0.8:
            any_store.remove_listings(parse_subject(text), cause=None, source=None, actor="cli")
        else:
            entry = AllowEntry(subject=parse_subject(text), note="mx", source="t", created_at=NOW)
            any_store.apply(Batch(allows=(entry,)), actor="cli", action="allow")
    publish(any_store, config, NOW)
    new = Snapshot(config.snapshot_path)
    since = new.file.header["since"]
    assert since["nets4"] and not since["v4"]
    nets4 = [(int(a), int(b)) for a, b in since["nets4"]]
    nets6 = [(int(a, 16), int(b, 16)) for a, b in since["nets6"]]
    moved = 0
    for settings in zone_settings(config):
        deleted, added = _whole_difference(old, new, settings)
        near_old = records_at(old, settings, (), (), nets4, nets6)
        near_new = records_at(new, settings, (), (), nets4, nets6)
        assert (near_old - near_new, near_new - near_old) == (deleted, added), settings.name
        moved += len(deleted) + len(added)
    assert moved > 10

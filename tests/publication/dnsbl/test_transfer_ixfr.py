"""IXFR follows the change: each overlay step is a serial, and a difference renders the names
above the changed addresses, not the zone (no secondary here: tests/publication/dnsbl/
test_transfer.py runs NSD)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from ipaddress import IPv4Address
from pathlib import Path

import dns.message
import dns.name
import dns.rdatatype
import dns.rrset

from reputable.config import Config, load_config
from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.listings.model import AllowEntry, Batch, Listing
from reputable.listings.policy import PolicyChanges
from reputable.publication.dnsbl.transfer import Transfers
from reputable.publication.exports.zone import records, zone_entries, zone_settings
from reputable.publication.snapshot.overlay import overlay_path, rebuild_since
from reputable.publication.snapshot.publish import publish, publish_overlay
from reputable.publication.snapshot.view import Snapshot
from reputable.store import bulk
from reputable.store.sqlite import SQLStore
from reputable.testing import free_port, write_config
from tests.publication.test_lookup import NOW

ZONE = "bl.reputable.test"
HOSTS = 4000  # the zone: ~8,000 host records plus the ranges' wildcards


def _listing(subject: str, reason: str, cause: Cause = Cause.SPAM) -> Listing:
    return Listing(
        subject=parse_subject(subject),
        cause=cause,
        reason=reason,
        source="t",
        listed_at=NOW - timedelta(hours=1),
    )


def _big_zone(store: SQLStore, tmp_path: Path) -> Config:
    """A store of HOSTS hosts over the IPv4 space and 40 ranges, each with an excluded host."""
    config = load_config(
        write_config(
            tmp_path, dns_port=free_port(), extra='[transfer]\nallow = ["127.0.0.1"]\nhistory = 4\n'
        )
    )
    step = (0xDF000000 - 0x01000000) // HOSTS
    listings = [
        _listing(str(IPv4Address(0x01000000 + i * step + i % 7)), f"trap {i}") for i in range(HOSTS)
    ]
    listings += [_listing(f"10.{i}.0.0/16", "segment", Cause.NETWORK) for i in range(40)]
    allows = [
        AllowEntry(subject=parse_subject(f"10.{i}.3.3"), note="mx", source="t", created_at=NOW)
        for i in range(40)
    ]
    store.apply(Batch(listings=tuple(listings), allows=tuple(allows)), actor="t", action="t")
    publish(store, config, NOW)
    return config


def _current(config: Config) -> Snapshot:
    """The snapshot and its overlay, as a DNS worker loads them."""
    snapshot = Snapshot(config.snapshot_path)
    snapshot.attach_overlay(overlay_path(config.snapshot_path))
    return snapshot


def _ixfr(transfers: Transfers, serial: int) -> list[dns.rrset.RRset]:
    query = dns.message.make_query(ZONE, dns.rdatatype.IXFR)
    soa = dns.rrset.from_text(ZONE + ".", 0, "IN", "SOA", f"ns. host. {serial} 1 1 1 1")
    query.authority.append(soa)
    messages = transfers.answer(query.to_wire(), "127.0.0.1")
    parsed = [dns.message.from_wire(m, one_rr_per_rrset=True) for m in messages]
    return [rr for m in parsed for rr in m.answer]


def _owners(rrsets: list[dns.rrset.RRset]) -> list[str]:
    origin = dns.name.from_text(ZONE)
    return sorted(
        rr.name.relativize(origin).to_text() for rr in rrsets if rr.rdtype != dns.rdatatype.SOA
    )


def _whole_difference(old: Snapshot, new: Snapshot, config: Config) -> list[str]:
    """Return the owners of the records deleted and added, from both whole zones."""
    settings = zone_settings(config)[0]
    before = {r for r in records(old, settings) if r.rtype != "SOA"}
    after = {r for r in records(new, settings) if r.rtype != "SOA"}
    return sorted(r.owner for r in (before - after) | (after - before))


def _add(store: SQLStore, subject: str, reason: str) -> None:
    store.apply(Batch(listings=(_listing(subject, reason),)), actor="cli", action="list")


def test_a_one_entry_change_is_an_ixfr_of_a_few_records_that_renders_a_few_names(
    any_store: SQLStore, tmp_path: Path
) -> None:
    """A host added to a zone of thousands: its overlay's serial is offered, the IXFR holds
    4 SOAs and its records, and computing it rendered tens of records, not the zone."""
    config = _big_zone(any_store, tmp_path)
    transfers = Transfers(config)
    base = _current(config)
    transfers.remember(base)
    whole = sum(1 for _ in records(base, zone_settings(config)[0]))
    assert whole > 2 * HOSTS
    _add(any_store, "10.7.3.4", "new trap hit")  # inside a range, beside its exclusion
    assert publish_overlay(any_store, config, NOW) is not None
    layered = _current(config)
    transfers.remember(layered)
    assert layered.effective_serial == any_store.serial() != base.serial

    got = _ixfr(transfers, base.serial)
    soas = [rr for rr in got if rr.rdtype == dns.rdatatype.SOA]
    assert [rr[0].serial for rr in soas] == [layered.effective_serial, base.serial] + [
        layered.effective_serial
    ] * 2
    assert _owners(got) == _whole_difference(base, layered, config)
    assert 4 < len(got) <= 8  # 4 SOAs, the new name's A (two codes) and TXT
    assert transfers.last[ZONE] == ("ixfr", len(got))
    assert transfers.whole_zone_diffs == 0
    assert 0 < transfers.rendered < 100 < whole  # the nodes above one address, both sides

    newer = _ixfr(transfers, layered.effective_serial + 5)  # RFC 1995 §2: our SOA alone
    assert [rr.rdtype for rr in newer] == [dns.rdatatype.SOA]


def test_ixfr_across_a_full_rebuild_renders_the_changed_names_only(
    any_store: SQLStore, tmp_path: Path
) -> None:
    """A rebuilt base says what changed since the one before it (a range's removal too), so
    IXFR from before the rebuild still renders only the changed names, and sends what whole
    zones would; a bulk import names nothing, and whole zones are compared."""
    config = _big_zone(any_store, tmp_path)
    transfers = Transfers(config)
    first = _current(config)
    transfers.remember(first)
    _add(any_store, "10.3.3.3", "listed over its allowlist entry")
    any_store.remove_listings(parse_subject("10.0.0.0/16"), cause=None, source=None, actor="cli")
    assert publish_overlay(any_store, config, NOW) is None  # a range: only a rebuild can say
    publish(any_store, config, NOW)
    second = _current(config)
    since = second.file.header["since"]
    assert since["nets4"] == [[int(IPv4Address("10.0.0.0")), int(IPv4Address("10.0.255.255"))]]
    assert since["v4"] == [int(IPv4Address("10.3.3.3"))] and not since["domains"]
    transfers.remember(second)
    _add(any_store, "192.0.2.1", "one more")
    assert publish_overlay(any_store, config, NOW) is not None
    publish(any_store, config, NOW)  # the background rebuild folds the overlay in
    third = _current(config)
    assert third.file.header["since"]["v4"] == [int(IPv4Address("192.0.2.1"))]
    transfers.remember(third)
    _add(any_store, "192.0.2.2", "and another")
    assert publish_overlay(any_store, config, NOW) is not None
    fourth = _current(config)
    transfers.remember(fourth)

    got = _ixfr(transfers, second.serial)  # across the rebuild: its since, then the overlay
    assert _owners(got) == _whole_difference(second, fourth, config) != []
    assert transfers.whole_zone_diffs == 0 and transfers.rendered < 100
    got = _ixfr(transfers, first.serial)  # across the range's removal: its nodes only
    assert _owners(got) == _whole_difference(first, fourth, config)
    assert "*.0.10" in _owners(got)  # the removed range's wildcard goes
    assert transfers.whole_zone_diffs == 0 and transfers.rendered < 200

    bulk = [_listing(f"198.18.{i // 256}.{i % 256}", "bulk") for i in range(300)]
    any_store.apply(Batch(listings=tuple(bulk)), actor="cli", action="import")  # audit "*"
    publish(any_store, config, NOW)
    fifth = _current(config)
    assert "since" not in fifth.file.header
    transfers.remember(fifth)
    got = _ixfr(transfers, fourth.effective_serial)
    assert _owners(got) == _whole_difference(fourth, fifth, config)
    assert transfers.whole_zone_diffs == 1


def _policy_run(store: SQLStore, now: float) -> None:
    """One policy transaction: a new listing, a source's listings dropped (a range and a
    host), a source's listings retimed to end, a listing ended."""
    at = now - 3600
    store.apply_policy(
        PolicyChanges(
            upserts=(("203.0.113.5", Cause.SPAM, "trap", "policy:trap", at, now + 86400),),
            drops=((None, "escalation"),),
            retimes=(("recidivist", "ended", at, now - 1),),
            ends=(("198.51.100.20", Cause.SPAM, "manual", now - 1, "quiet"),),
        ),
        actor="policy",
        now=now,
    )


def test_ixfr_after_a_policy_run_renders_the_changed_names_only(
    any_store: SQLStore, tmp_path: Path
) -> None:
    """A policy run (drops and retimes by source name no subject in the audit) and a listing
    that expired between two rebuilds: the rebuilt base still names every subject that moved
    (the /24 range's names among them), so the IXFR is those few records, rendered from
    those names alone, and the same as comparing the whole zones."""
    config = _big_zone(any_store, tmp_path)
    later = NOW + timedelta(minutes=30)
    extra = [
        replace(_listing("172.16.5.0/24", "escalated"), source="escalation"),
        replace(_listing("172.16.9.9", "member"), source="escalation"),
        replace(_listing("198.51.100.9", "again"), source="recidivist"),
        replace(_listing("198.51.100.20", "by hand"), source="manual"),
        replace(_listing("198.51.100.30", "short"), expires_at=NOW + timedelta(minutes=10)),
    ]
    any_store.apply(Batch(listings=tuple(extra)), actor="cli", action="list")
    publish(any_store, config, NOW)
    transfers = Transfers(config)
    before = _current(config)
    transfers.remember(before)
    whole = sum(1 for _ in records(before, zone_settings(config)[0]))
    _policy_run(any_store, later.timestamp())
    publish(any_store, config, later)
    after = _current(config)
    since = after.file.header["since"]
    assert since["nets4"] == [[int(IPv4Address("172.16.5.0")), int(IPv4Address("172.16.5.255"))]]
    assert {str(IPv4Address(a)) for a in since["v4"]} == {
        "203.0.113.5",
        "172.16.9.9",
        "198.51.100.9",
        "198.51.100.20",
        "198.51.100.30",  # expired in between: no write names it
    }
    transfers.remember(after)

    got = _ixfr(transfers, before.serial)
    changed = _whole_difference(before, after, config)
    assert _owners(got) == changed
    assert {"*.5.16.172", "5.113.0.203", "30.100.51.198"} <= set(changed)
    assert len(got) < 30 < whole
    assert transfers.whole_zone_diffs == 0 and 0 < transfers.rendered < 100


def test_policy_moved_rows_are_kept_a_day_and_older_bases_compare_whole(
    any_store: SQLStore, tmp_path: Path
) -> None:
    """Each policy run's ``moved`` row (the subjects it touched) is deleted a day later by a
    later run, and a base older than half a day no longer trusts them: its rebuild names
    nothing, so IXFR across it compares whole zones rather than miss a change."""
    now = NOW.timestamp()
    _policy_run(any_store, now)
    any_store._db.execute("UPDATE audit SET at = at - 90000 WHERE action = 'moved'")
    _policy_run(any_store, now + 60)
    rows = any_store.audit_after(0, 100)
    assert [row[2] for row in rows] == ["delist", "delist", "moved"]  # the day-old one went
    serial = any_store.serial()
    base = {"serial": serial - 1, "built_at": now - 50_000, "audit_cursor": rows[0][0]}
    base["moves"] = True
    assert rebuild_since(any_store, base, serial, NOW) is None
    recent = dict(base, built_at=now - 60)
    since = rebuild_since(any_store, recent, serial, NOW)
    assert since is not None and int(IPv4Address("203.0.113.5")) in since["v4"]


def _axfr(transfers: Transfers) -> list[dns.rrset.RRset]:
    query = dns.message.make_query(ZONE, dns.rdatatype.AXFR)
    messages = transfers.answer(query.to_wire(), "127.0.0.1")
    parsed = [dns.message.from_wire(m, one_rr_per_rrset=True) for m in messages]
    return [rr for m in parsed for rr in m.answer]


def test_an_unnamed_change_on_a_zone_above_the_bound_is_sent_whole_below_it_compared(
    any_store: SQLStore, tmp_path: Path
) -> None:
    """After a bulk import (nothing names what moved), a zone of more entries than the bound
    gets its IXFR in AXFR form (RFC 1995 §4): the new SOA first and last, no old SOA after
    the first, the AXFR's records, and no whole-zone comparison. At the bound, the two
    states are compared and the difference sent, as before."""
    config = _big_zone(any_store, tmp_path)
    transfers = Transfers(config)
    first = _current(config)
    transfers.remember(first)
    settings = zone_settings(config)[0]
    assert HOSTS < zone_entries(first, settings) < HOSTS + 200  # hosts and range bounds
    bulk = [_listing(f"198.18.{i // 256}.{i % 256}", "bulk") for i in range(300)]
    any_store.apply(Batch(listings=tuple(bulk)), actor="cli", action="import")  # audit "*"
    publish(any_store, config, NOW)
    second = _current(config)
    assert "since" not in second.file.header
    transfers.remember(second)
    entries = zone_entries(second, settings)
    assert entries == zone_entries(first, settings) + 300

    transfers.compare_max = entries - 1
    got = _ixfr(transfers, first.serial)
    assert got[0].rdtype == got[-1].rdtype == dns.rdatatype.SOA
    assert got[0][0].serial == got[-1][0].serial == second.serial
    assert got[1].rdtype != dns.rdatatype.SOA  # AXFR form: no old SOA opens a deletion
    assert [rr.rdtype for rr in got].count(dns.rdatatype.SOA) == 2
    assert got == _axfr(transfers)
    assert transfers.last[ZONE] == ("axfr", len(got))
    assert transfers.whole_zone_diffs == 0 and transfers.rendered == 0

    transfers.compare_max = entries  # not above the bound: compared, the difference sent
    got = _ixfr(transfers, first.serial)
    soas = [rr[0].serial for rr in got if rr.rdtype == dns.rdatatype.SOA]
    assert soas == [second.serial, first.serial, second.serial, second.serial]
    assert _owners(got) == _whole_difference(first, second, config) != []
    assert transfers.last[ZONE] == ("ixfr", len(got)) and len(got) == 4 + 2 * 300
    assert transfers.whole_zone_diffs == 1


def test_a_named_change_on_a_zone_above_the_bound_stays_incremental(
    any_store: SQLStore, tmp_path: Path
) -> None:
    """The bound is for changes nothing names: a one-entry change on a zone far above it is
    still the difference of a few records."""
    config = _big_zone(any_store, tmp_path)
    transfers = Transfers(config)
    transfers.compare_max = 10
    base = _current(config)
    transfers.remember(base)
    _add(any_store, "192.0.2.9", "new trap hit")
    assert publish_overlay(any_store, config, NOW) is not None
    layered = _current(config)
    transfers.remember(layered)
    got = _ixfr(transfers, base.serial)
    assert transfers.last[ZONE] == ("ixfr", len(got)) and 4 < len(got) <= 8
    assert _owners(got) == _whole_difference(base, layered, config)


def test_a_small_bulk_import_names_what_it_moved_and_its_ixfr_stays_incremental(
    any_store: SQLStore, tmp_path: Path
) -> None:
    """An ``import rbldnsd`` of a few rows (store/bulk.py) audits each subject, as ``apply``
    does for a small batch: the overlay takes it, a rebuild's ``since`` names it, and the
    IXFR renders those names only, even with the bound below the zone. One more row than
    NAMED_MAX is audited as ``*``: compared whole (or sent whole above the bound)."""
    config = _big_zone(any_store, tmp_path)
    transfers = Transfers(config)
    transfers.compare_max = 10
    first = _current(config)
    transfers.remember(first)
    now = (NOW - timedelta(hours=1)).timestamp()

    def row(subject: str) -> bulk.Row:
        return (subject, 4, Cause.SPAM.value, "imported", "rbldnsd", now, None)

    rows = [row(f"198.51.100.{i}") for i in range(5)] + [row("203.0.113.0/28")]
    bulk.load_listings(any_store, rows, actor="import:small", action="import")
    assert publish_overlay(any_store, config, NOW) is None  # a range: the rebuild names it
    publish(any_store, config, NOW)
    second = _current(config)
    assert len(second.file.header["since"]["v4"]) == 5
    transfers.remember(second)
    got = _ixfr(transfers, first.serial)
    assert transfers.last[ZONE] == ("ixfr", len(got))
    assert _owners(got) == _whole_difference(first, second, config) != []
    assert transfers.whole_zone_diffs == 0 and 0 < transfers.rendered < 200

    hosts = [row(f"198.51.101.{i}") for i in range(5)]
    bulk.load_listings(any_store, hosts, actor="import:hosts", action="import")
    assert publish_overlay(any_store, config, NOW) is not None  # hosts only: the overlay
    third = _current(config)
    transfers.remember(third)
    got = _ixfr(transfers, second.serial)
    assert transfers.last[ZONE] == ("ixfr", len(got)) and len(got) == 4 + 2 * 5  # A, TXT
    assert _owners(got) == _whole_difference(second, third, config)
    publish(any_store, config, NOW)

    many = [row(f"198.51.102.{i}") for i in range(bulk.NAMED_MAX + 1)]
    bulk.load_listings(any_store, many, actor="import:many", action="import")
    publish(any_store, config, NOW)
    assert "since" not in _current(config).file.header

"""AXFR messages are written straight to wire form: dnspython reads back exactly the zone's
records (escaped and long TXT, IPv6 and domain owners included), TSIG-signed message by
message, and the messages come one at a time (no secondary here: test_transfer.py runs NSD)."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsigkeyring
import pytest

from reputable.config import Config, load_config
from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.listings.model import AllowEntry, Batch, Listing
from reputable.publication.dnsbl.transfer import (
    MESSAGE_BUDGET,
    Transfers,
    _Detached,
    _name_wire,
    _Rendering,
    _wire_parts,
)
from reputable.publication.exports.zone import records, zone_settings
from reputable.publication.snapshot.publish import publish
from reputable.publication.snapshot.view import Snapshot
from reputable.testing import MemoryStore, free_port, write_config
from tests.publication.test_lookup import NOW

SECRET = base64.b64encode(b"reputable-wire-test-key-32-bytes").decode()
KEYRING = dns.tsigkeyring.from_text({"xfrkey.": ("hmac-sha256", SECRET)})
ODD_REASONS = ('say "hi" \\ back', "caf\u00e9 \x01 bell", "r" * 300 + " long", "")


def _listing(subject: str, reason: str) -> Listing:
    return Listing(
        subject=parse_subject(subject), cause=Cause.SPAM, reason=reason, source="t", listed_at=NOW
    )


@pytest.fixture
def zone_config(tmp_path: Path) -> Config:
    """A snapshot of 3,000 IPv4 hosts, IPv6 hosts and ranges, domains, odd TXT texts."""
    extra = f'[transfer]\nallow = ["127.0.0.1"]\n[transfer.keys]\nxfrkey = "{SECRET}"\n'
    config = load_config(write_config(tmp_path, dns_port=free_port(), extra=extra))
    listings = [_listing(f"10.{i // 200}.{i % 200}.{i % 7 + 1}", f"trap {i}") for i in range(3000)]
    listings += [_listing(f"192.0.2.{i + 1}", r) for i, r in enumerate(ODD_REASONS)]
    listings += [_listing(f"2001:db8::{i:x}", f"six {i}") for i in range(1, 40)]
    listings += [_listing("2001:db8:1::/48", "range six"), _listing("172.16.0.0/16", "range")]
    listings += [_listing(f"spam{i}.example.test", f"domain {i}") for i in range(30)]
    allows = [
        AllowEntry(subject=parse_subject("172.16.3.3"), note="mx", source="t", created_at=NOW)
    ]
    store = MemoryStore()
    store.apply(Batch(listings=tuple(listings), allows=tuple(allows)), actor="t", action="t")
    publish(store, config, NOW)
    store.close()
    return config


def _axfr(transfers: Transfers, zone: str) -> tuple[list[bytes], dns.message.Message]:
    query = dns.message.make_query(zone, dns.rdatatype.AXFR)
    query.use_tsig(KEYRING, keyname="xfrkey.", algorithm="hmac-sha256")
    return transfers.answer(query.to_wire(), "192.0.2.200"), query


def _read(messages: list[bytes], query: dns.message.Message) -> list[tuple[str, int, str, int]]:
    """Parse *messages* as a secondary does, the TSIG chain checked; return their records."""
    ctx, mac = None, query.mac
    out: list[tuple[str, int, str, int]] = []
    for wire in messages:
        message = dns.message.from_wire(
            wire, keyring=KEYRING, request_mac=mac, xfr=True, tsig_ctx=ctx, multi=True
        )
        ctx, mac = message.tsig_ctx, message.mac
        assert message.had_tsig
        for rrset in message.answer:
            out += [(str(rrset.name), rrset.rdtype, r.to_text(), rrset.ttl) for r in rrset]
    return out


@pytest.mark.parametrize("kind", [0, 1, 2])  # the ip, domain and allow zones
def test_axfr_on_the_wire_is_the_zone_records_signed_message_by_message(
    zone_config: Config, kind: int
) -> None:
    """dnspython reads every record of ``records()`` back from the messages, in order."""
    settings = zone_settings(zone_config)[kind]
    transfers = Transfers(zone_config)
    snapshot = Snapshot(zone_config.snapshot_path)
    transfers.remember(snapshot)
    messages, query = _axfr(transfers, settings.name)
    got = _read(messages, query)
    origin = dns.name.from_text(settings.name)
    body = list(records(snapshot, settings))
    want = []
    for rec in [body[0], *body[1:], body[0]]:
        name = dns.name.from_text(rec.owner, origin) if rec.owner else origin
        rdtype = dns.rdatatype.from_text(rec.rtype)
        rdata = dns.rdata.from_text(dns.rdataclass.IN, rdtype, rec.rdata, origin=origin)
        want.append((str(name), rdtype, rdata.to_text(), settings.ttl))
    assert got == want
    assert len(got) > 10
    assert all(len(m) < MESSAGE_BUDGET + 1024 for m in messages)
    if kind == 0:
        assert len(messages) > 5  # several messages, each compressed on its own
        texts = {r[2] for r in got if r[1] == dns.rdatatype.TXT}
        assert any('\\"hi\\"' in t for t in texts)  # escapes went the slow path, right
        assert any('" "' in t for t in texts)  # a text over 255 bytes: two strings
        assert any(r[0].count(".") > 32 for r in got)  # IPv6 nibble owners


def test_messages_come_one_at_a_time(zone_config: Config) -> None:
    """The first message is ready before the zone has been walked: nothing waits for the
    whole transfer (a big zone's first message left only after every one was built)."""
    settings = zone_settings(zone_config)[0]
    transfers = Transfers(zone_config)
    transfers.remember(Snapshot(zone_config.snapshot_path))
    query = dns.message.make_query(settings.name, dns.rdatatype.AXFR)
    stream = transfers.stream(query.to_wire(), "127.0.0.1")
    first = next(stream)
    assert settings.name not in transfers.last  # set when the last message is built
    rest = list(stream)
    kind, count = transfers.last[settings.name]
    assert kind == "axfr" and len(rest) > 5
    assert int.from_bytes(first[6:8], "big") < count / 5  # the first holds a part only


def _signed_query(zone: str, rdtype: str = "AXFR", serial: int | None = None) -> bytes:
    query = dns.message.make_query(zone, rdtype)
    if serial is not None:  # an IXFR from a serial we never had: answered as AXFR
        soa = f"ns.{zone}. hostmaster.{zone}. {serial} 1 1 1 1"
        query.authority.append(dns.rrset.from_text(f"{zone}.", 0, "IN", "SOA", soa))
    query.use_tsig(KEYRING, keyname="xfrkey.", algorithm="hmac-sha256")
    return query.to_wire()


def _read_back(messages: list[bytes], packet: bytes) -> list[tuple[str, int, str, int]]:
    query = dns.message.from_wire(packet, keyring=KEYRING)
    return _read(messages, query)


def test_overlapping_axfrs_of_one_serial_share_one_walk(zone_config: Config) -> None:
    """Two secondaries pulling the same serial at once (message by message, in turn; one
    asks IXFR from a serial we never had, answered as AXFR) cost one walk of the zone, and
    each gets its own correctly signed stream of the same records."""
    settings = zone_settings(zone_config)[0]
    transfers = Transfers(zone_config)
    snapshot = Snapshot(zone_config.snapshot_path)
    transfers.remember(snapshot)
    gone = (snapshot.effective_serial - 5) & 0xFFFFFFFF  # older, and not in the history
    packets = [_signed_query(settings.name), _signed_query(settings.name, "IXFR", gone)]
    streams = [transfers.stream(p, "192.0.2.200") for p in packets]
    got: list[list[bytes]] = [[], []]
    live = [0, 1]
    while live:  # in turn, as two TCP connections' threads take them
        for n in list(live):
            message = next(streams[n], None)
            if message is None:
                live.remove(n)
            else:
                got[n].append(message)
    assert transfers.walks == 1
    first, second = (_read_back(got[n], packets[n]) for n in (0, 1))
    assert first == second and len(first) > 3000
    assert len(got[0]) > 5
    assert got[0][1][2:] != got[1][1][2:]  # signed each for its own query (ids, MACs)


def test_concurrent_axfrs_in_threads_share_one_walk(zone_config: Config) -> None:
    """Three threads answering AXFRs of one serial at once render it once between them."""
    settings = zone_settings(zone_config)[0]
    transfers = Transfers(zone_config)
    snapshot = Snapshot(zone_config.snapshot_path)
    transfers.remember(snapshot)
    packets = [_signed_query(settings.name) for _ in range(3)]
    streams = [transfers.stream(p, "192.0.2.200") for p in packets]
    firsts = [next(s) for s in streams]  # all three joined before any went far
    out: list[list[bytes]] = [[f] for f in firsts]
    threads = [threading.Thread(target=lambda n=n: out[n].extend(streams[n])) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert transfers.walks == 1
    want = [(r.owner, r.rtype) for r in records(snapshot, settings)]
    for n in range(3):
        got = _read_back(out[n], packets[n])
        assert len(got) == len(want) + 1  # and the closing SOA


def test_a_whole_small_zone_serves_later_transfers_of_its_serial(zone_config: Config) -> None:
    """A rendering that fitted its bound whole answers the next AXFR of that serial without a
    walk; a new serial renders anew."""
    settings = zone_settings(zone_config)[0]
    transfers = Transfers(zone_config)
    transfers.remember(Snapshot(zone_config.snapshot_path))
    one = [_signed_query(settings.name) for _ in range(2)]
    first = transfers.answer(one[0], "192.0.2.200")
    second = transfers.answer(one[1], "192.0.2.200")
    assert transfers.walks == 1
    assert _read_back(first, one[0]) == _read_back(second, one[1])


def test_a_follower_left_behind_the_bound_walks_alone(zone_config: Config) -> None:
    """Memory stays bounded: when one secondary stalls while another races ahead, the parts
    held stay under the bound, the stalled one is detached and still gets the whole zone
    (at the cost of its own walk)."""
    settings = zone_settings(zone_config)[0]
    transfers = Transfers(zone_config)
    transfers.remember(Snapshot(zone_config.snapshot_path))
    transfers.shared_bytes = 3 * MESSAGE_BUDGET
    packets = [_signed_query(settings.name) for _ in range(2)]
    fast, slow = (transfers.stream(p, "192.0.2.200") for p in packets)
    slow_got = [next(slow)]
    fast_got = [next(fast)]
    rendering = next(iter(transfers._renderings.values()))
    held = []
    for message in fast:
        fast_got.append(message)
        held.append(rendering._bytes)
    assert max(held) <= 4 * MESSAGE_BUDGET + 1024
    slow_got += list(slow)
    assert transfers.walks == 2
    assert _read_back(fast_got, packets[0]) == _read_back(slow_got, packets[1])


def test_a_rendering_bigger_than_its_bound_is_freed_when_its_transfers_end(
    zone_config: Config,
) -> None:
    """A zone that did not fit the bound holds nothing once its last transfer ends (the next
    AXFR of the serial walks again), and a transfer that was told it could join after the
    first part went renders on its own instead of starting mid-zone."""
    settings = zone_settings(zone_config)[0]
    transfers = Transfers(zone_config)
    transfers.remember(Snapshot(zone_config.snapshot_path))
    transfers.shared_bytes = 3 * MESSAGE_BUDGET
    packets = [_signed_query(settings.name) for _ in range(2)]
    first = transfers.answer(packets[0], "192.0.2.200")
    (rendering,) = transfers._renderings.values()
    assert rendering._bytes == 0 and not rendering._held and not rendering.joinable()
    second = transfers.answer(packets[1], "192.0.2.200")
    assert transfers.walks == 2
    assert _read_back(first, packets[0]) == _read_back(second, packets[1])

    parts = list(
        _wire_parts(
            settings,
            len(_name_wire(dns.name.from_text(settings.name))) + 4,
            iter(records(Snapshot(zone_config.snapshot_path), settings)),
        )
    )
    late = _Rendering(lambda: iter(parts), 2 * MESSAGE_BUDGET)
    ahead, behind = late.follow(), late.follow()  # behind: told "joinable", not started yet
    for _ in range(5):
        next(ahead)
    with pytest.raises(_Detached):
        next(behind)
    assert list(ahead) == parts[5:]

"""The compiled packet loop answers byte for byte as Responder.respond, and counts the same."""

from __future__ import annotations

import random
import socket
import struct
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reputable.config import DEFAULT_TOML, parse_config
from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.listings.model import AllowEntry, Batch, Listing
from reputable.publication.dnsbl import fastpath
from reputable.publication.dnsbl.wire import HIT, MISS, Responder
from reputable.publication.dnsbl.worker import Worker, zone_specs
from reputable.publication.snapshot.publish import publish
from reputable.publication.snapshot.view import Snapshot
from reputable.testing import MemoryStore, write_config

from .conftest import make_responder, udp_worker

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
MODULE = fastpath.extension()
needs_c = pytest.mark.skipif(
    MODULE is None,
    reason="the _fastdns extension is not built (no C compiler at `pip install`)"
    f" or {fastpath.DISABLE_ENV} is set",
)
ZONE = "bl.reputable.test"
CAUSES = list(Cause)[:9]  # every cause that lists (not "clean")


def _reasons(rng: random.Random) -> str:
    """A reason of a length around the 512 and 1232 byte limits, sometimes with dollars."""
    length = rng.choice(
        [
            0,
            1,
            10,
            120,
            250,
            255,
            256,
            300,
            400,
            430,
            460,
            470,
            480,
            490,
            510,
            700,
            1100,
            1150,
            1170,
            1190,
            1200,
            1300,
        ]
    )
    text = "".join(rng.choice("abcdefghij $") for _ in range(length))
    return text.strip() or "r"


def _store(rng: random.Random) -> MemoryStore:
    """A store with hosts, overlapping ranges, several causes per subject and exclusions."""
    listings: list[Listing] = []
    allows: list[AllowEntry] = []
    seen: set[tuple[str, Cause]] = set()

    def add(subject: str, cause: Cause, reason: str) -> None:
        if (subject, cause) in seen:
            return
        seen.add((subject, cause))
        listings.append(
            Listing(
                subject=parse_subject(subject),
                cause=cause,
                reason=reason,
                source="t",
                listed_at=NOW - timedelta(seconds=rng.random() * 1e5),
            )
        )

    for _ in range(400):
        add(
            f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(256)}",
            rng.choice(CAUSES),
            _reasons(rng),
        )
    for _ in range(40):
        plen = rng.choice([20, 22, 24, 26, 28])
        start = (10 << 24 | rng.randrange(1 << 18)) >> (32 - plen) << (32 - plen)
        add(f"{ip_address(start)}/{plen}", rng.choice(CAUSES), _reasons(rng))
    for cause in CAUSES:  # one host with every code, one /24 with every code
        add("10.9.9.9", cause, f"{cause.value} on $ and $$5")
        add("10.9.8.0/24", cause, _reasons(rng))
    add("10.9.9.10", Cause.SPAM, "")
    add("2001:db8:1::/48", Cause.MANUAL, "v6 operator")
    add("evil.example", Cause.MALWARE_HOST, "phishing kit")
    for i in range(20):
        allows.append(
            AllowEntry(
                subject=parse_subject(f"10.0.{i}.7"), note="partner", source="t", created_at=NOW
            )
        )
    store = MemoryStore()
    store.apply(Batch(listings=tuple(listings), allows=tuple(allows)), actor="t", action="t")
    return store


def _responder(directory: Path, rng: random.Random, toml: str = DEFAULT_TOML) -> Responder:
    config = parse_config(toml, directory / "reputable.toml")
    publish(_store(rng), config, NOW)
    dns = config.dns
    return Responder(
        Snapshot(config.snapshot_path),
        zone_specs(config),
        nameservers=dns.nameservers,
        hostmaster=dns.hostmaster,
        negative_ttl=dns.negative_ttl,
    )


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Responder, fastpath.Engine]:
    """A responder over a varied snapshot and the C engine over the same snapshot."""
    responder = _responder(tmp_path_factory.mktemp("fast"), random.Random(5782))
    engine = fastpath.engine_for(responder, MODULE)
    if engine is None:
        pytest.skip("the _fastdns extension is not built")
    return responder, engine


# -- query generation ---------------------------------------------------------------------
def _name(labels: list[bytes]) -> bytes:
    return b"".join(bytes([len(x)]) + x for x in labels) + b"\0"


def _qname(rng: random.Random) -> list[bytes]:
    """Labels of a query name: listed, unlisted, partial, mapped, junk, other zones."""
    octets = [10, rng.randrange(4), rng.randrange(256), rng.randrange(256)]
    form = rng.randrange(14)
    if form == 0:
        octets = [10, 9, 9, rng.choice([9, 10])]
    elif form == 1:
        octets = [10, 9, 8, rng.randrange(256)]
    elif form == 2:
        octets = [127, 0, 0, rng.choice([1, 2, 3])]
    elif form == 3:
        octets = [rng.randrange(256) for _ in range(4)]
    v4 = [str(o).encode() for o in reversed(octets)]
    zone = [b"bl", b"reputable", b"test"]
    if rng.random() < 0.1:
        zone = [rng.choice([b"BL", b"Bl", b"bL"]), b"RePutable", b"TEST"]
    if form == 4:  # empty non-terminal
        return v4[4 - rng.randint(1, 3) :] + zone
    if form == 5:  # IPv4-mapped IPv6, as nibbles
        value = (0xFFFF << 32) | int.from_bytes(bytes(octets), "big")
        nibbles = [b"%x" % ((value >> (4 * i)) & 15) for i in range(32)]
        if rng.random() < 0.3:
            nibbles = [n.upper() for n in nibbles]
        return nibbles + zone
    if form == 6:  # full IPv6 (Python answers) or partial nibbles
        count = rng.choice([32, 5, 16, 31, 33])
        return [b"%x" % rng.randrange(16) for _ in range(count)] + zone
    if form == 7:  # leading zeros, out-of-range and odd labels
        return [
            rng.choice([b"007", b"256", b"0", b"1a", b"", b"0000", b"255", b"x" * 63])
            for _ in range(rng.randint(1, 5))
        ] + zone
    if form == 8:  # apex and other zones
        return rng.choice(
            [
                zone,
                [b"dbl", b"reputable", b"test"],
                [b"x", b"wl", b"reputable", b"test"],
                [b"9", b"9", b"9", b"10", b"wl", b"reputable", b"test"],
                [b"example", b"org"],
                [b"1", b"abl", b"reputable", b"test"],
                [],
            ]
        )
    if form == 9:  # five numeric labels
        return [*v4, b"1", *zone]
    return v4 + zone


def _packet(rng: random.Random) -> bytes:
    """A query with random header bits, type, class, EDNS, extra records and mutations."""
    qid = rng.randrange(65536)
    flags = rng.choice([0, 0x0100, 0x0100, 0x0110, 0x0120, 0x8000, 0x0900, 0x0300, 0x7800])
    qtype = rng.choice([1, 1, 16, 16, 255, 28, 15, 6, 2, 252, 251, 0])
    qclass = rng.choice([1, 1, 1, 1, 3, 255, 254])
    additional = b""
    arcount = 0
    for _ in range(rng.choice([0, 0, 1, 1, 1, 2])):
        kind = rng.randrange(6)
        if kind <= 2:  # OPT
            size = rng.choice([0, 100, 511, 512, 513, 900, 1232, 1233, 4096, 65535])
            version = 0 if kind < 2 else rng.choice([0, 1])
            rdata = b"" if rng.random() < 0.7 else b"\0\x0a\0\x08" + bytes(8)  # a cookie
            ttl = (rng.choice([0, 0, 1]) << 24) | (version << 16) | rng.choice([0, 0x8000])
            additional += b"\0" + struct.pack(">HHIH", 41, size, ttl, len(rdata)) + rdata
        elif kind == 3:  # another record at a name
            additional += _name([b"a", b"b"]) + struct.pack(">HHIH", 1, 1, 0, 4) + bytes(4)
        elif kind == 4:  # compressed name: FORMERR in Python
            additional += b"\xc0\x0c" + struct.pack(">HHIH", 41, 512, 0, 0)
        else:
            additional += b"\0" + struct.pack(">HHIH", 16, 1, 0, 3) + b"\2ab"
        arcount += 1
    counts = [1, 0, 0, arcount]
    if rng.random() < 0.03:
        counts[rng.randrange(3)] = rng.choice([0, 2])
    header = struct.pack(">HHHHHH", qid, flags, *counts)
    packet = header + _name(_qname(rng)) + struct.pack(">HH", qtype, qclass) + additional
    mutation = rng.random()
    if mutation < 0.04:
        packet = packet[: rng.randrange(len(packet))]
    elif mutation < 0.07:
        index = rng.randrange(len(packet))
        packet = packet[:index] + bytes([rng.randrange(256)]) + packet[index + 1 :]
    elif mutation < 0.09:
        packet += bytes(rng.randrange(1, 20))
    return packet


def _compare(responder: Responder, engine: fastpath.Engine, packet: bytes) -> bool:
    """Assert both paths agree on *packet*; return True when C answered it."""
    found = engine.respond(packet, 512)
    if found is None:
        return False
    before = list(responder.counters)
    expected = responder.respond(packet, 512)
    delta = [a - b for a, b in zip(responder.counters, before, strict=True)]
    reply, slot = found
    assert reply == expected, f"packet {packet.hex()}"
    wanted = [0] * len(delta)
    wanted[slot] = 1
    assert delta == wanted, f"counters for packet {packet.hex()}"
    return True


# -- tests ----------------------------------------------------------------------------------
@needs_c
def test_many_random_queries_answer_identically(pair: tuple[Responder, fastpath.Engine]) -> None:
    """30,000 varied queries: every packet C answers is byte-identical, with equal counters."""
    responder, engine = pair
    rng = random.Random(1035)
    handled = 0
    hits_before = responder.counters[HIT]
    total = 30_000
    for _ in range(total):
        handled += _compare(responder, engine, _packet(rng))
    assert handled > total // 6  # C takes the common case (most generated packets are odd)
    assert responder.counters[HIT] - hits_before > total // 40


@needs_c
@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_hypothesis_queries_answer_identically(
    pair: tuple[Responder, fastpath.Engine], seed: int
) -> None:
    """Hypothesis-chosen queries get the same bytes and counters from C and from Python."""
    responder, engine = pair
    _compare(responder, engine, _packet(random.Random(seed)))


@needs_c
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.binary(max_size=300))
def test_junk_never_crashes_and_agrees(
    pair: tuple[Responder, fastpath.Engine], junk: bytes
) -> None:
    """Arbitrary bytes, alone or after a valid header, never crash C and agree when answered."""
    responder, engine = pair
    _compare(responder, engine, junk)
    _compare(responder, engine, struct.pack(">HHHHHH", 7, 0x100, 1, 0, 0, 0) + junk)


@needs_c
@pytest.mark.parametrize(
    ("name", "qtype", "handled"),
    [
        ("9.9.9.10.bl.reputable.test", 16, True),  # every cause, TXT with $ and $$
        ("9.9.9.10.bl.reputable.test", 255, True),  # ANY, truncated at 512
        ("10.9.9.10.bl.reputable.test", 16, True),  # empty reason
        ("2.0.0.127.bl.reputable.test", 1, True),  # RFC 5782 test point
        ("1.0.0.127.bl.reputable.test", 1, True),  # never listed
        ("9.9.10.bl.reputable.test", 1, True),  # empty non-terminal
        ("bl.reputable.test", 6, False),  # apex: Python
        ("9.9.9.10.wl.reputable.test", 1, False),  # other zone: Python
        ("1." + "0." * 19 + "1.0.0.0.8.b.d.0.1.0.0.2.bl.reputable.test", 1, False),  # IPv6
    ],
)
def test_handled_cases(
    pair: tuple[Responder, fastpath.Engine], name: str, qtype: int, handled: bool
) -> None:
    """C answers the IPv4 zone's queries itself and leaves the apex, IPv6 and other zones."""
    responder, engine = pair
    labels = [x.encode() for x in name.split(".")]
    for edns in (b"", b"\0" + struct.pack(">HHIH", 41, 1232, 0, 0)):
        packet = struct.pack(">HHHHHH", 1, 0x100, 1, 0, 0, 1 if edns else 0)
        packet += _name(labels) + struct.pack(">HH", qtype, 1) + edns
        assert _compare(responder, engine, packet) is handled


@needs_c
def test_standard_wire_snapshot(tmp_path: Path) -> None:
    """The wire tests' snapshot (long TXT, nine codes on one host) also answers identically."""
    responder = make_responder(tmp_path)
    engine = fastpath.engine_for(responder, MODULE)
    assert engine is not None
    rng = random.Random(6891)
    for last in ("7.100.51.198", "50.2.0.192", "9.113.0.203", "9.100.51.198", "1.2.0.192"):
        for qtype in (1, 16, 255, 28):
            for size in (None, 512, 1232, 4096):
                edns = b"" if size is None else b"\0" + struct.pack(">HHIH", 41, size, 0, 0)
                packet = struct.pack(
                    ">HHHHHH", rng.randrange(65536), 0x100, 1, 0, 0, 1 if edns else 0
                )
                labels = [x.encode() for x in f"{last}.bl.reputable.test".split(".")]
                packet += _name(labels) + struct.pack(">HH", qtype, 1) + edns
                assert _compare(responder, engine, packet)


@needs_c
def test_odd_zone_layout_is_left_to_python(tmp_path: Path) -> None:
    """With the domain zone below the IP zone, names under it go to Python (longest match)."""
    toml = DEFAULT_TOML.replace('name = "dbl.reputable.test"', 'name = "d.bl.reputable.test"')
    responder = _responder(tmp_path, random.Random(1), toml)
    engine = fastpath.engine_for(responder, MODULE)
    assert engine is not None
    inside = _name([b"evil", b"example", b"d", b"bl", b"reputable", b"test"])
    packet = struct.pack(">HHHHHH", 1, 0, 1, 0, 0, 0) + inside + struct.pack(">HH", 1, 1)
    assert engine.respond(packet, 512) is None
    rng = random.Random(2)
    for _ in range(2000):
        _compare(responder, engine, _packet(rng))


def test_env_var_disables_the_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    """REPUTABLE_NO_FASTPATH=1 makes the worker use its pure-Python loop."""
    monkeypatch.setenv(fastpath.DISABLE_ENV, "1")
    assert fastpath.extension() is None
    assert fastpath.loop_for(0) is None


# -- the socket loop --------------------------------------------------------------------------
@needs_c
def test_loop_answers_on_loopback_and_returns_the_rest(
    pair: tuple[Responder, fastpath.Engine],
) -> None:
    """Loop.run answers a batch on a loopback socket and hands back what Python must answer."""
    responder, engine = pair
    assert MODULE is not None
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with server, client:
        server.bind(("127.0.0.1", 0))
        client.bind(("127.0.0.1", 0))
        client.settimeout(2)
        loop = fastpath.loop_for(server.fileno(), MODULE)
        assert loop is not None
        rng = random.Random(53)
        packets = [_packet(rng) for _ in range(200)]
        expected: dict[bytes, bytes | None] = {}
        for packet in packets:
            before = list(responder.counters)
            expected[packet] = responder.respond(packet, 512)
            responder.counters[:] = before
        for packet in packets:
            client.sendto(packet, server.getsockname())
        counters = [0] * len(responder.counters)
        rest: list[tuple[bytes, Any]] = []
        deadline = time.monotonic() + 5
        while sum(counters[:2]) + len(rest) < len(packets) and time.monotonic() < deadline:
            rest += loop.run(engine, counters, 100, True)
        assert sum(counters[:2]) + len(rest) == len(packets)
        for packet, address in rest:
            assert address == client.getsockname()
            assert engine.respond(packet, 512) is None
        replies = []
        for _ in range(sum(counters[:2])):
            replies.append(client.recv(4096))
        answered = [expected[p] for p in packets if engine.respond(p, 512) is not None]
        assert sorted(r or b"" for r in answered) == sorted(replies)


# -- the worker, compiled and pure Python -----------------------------------------------------
@pytest.fixture(params=["compiled", "python"])
def worker(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Worker]:
    """A worker over the varied snapshot serving UDP on loopback from a thread."""
    if request.param == "compiled" and MODULE is None:
        pytest.skip("the _fastdns extension is not built")
    if request.param == "python":
        monkeypatch.setenv(fastpath.DISABLE_ENV, "1")
    path = write_config(tmp_path, dns_port=0)
    config = parse_config(path.read_text(), path)
    publish(_store(random.Random(5782)), config, NOW)
    with udp_worker(config) as worker:
        yield worker


def test_worker_answers_like_the_responder(worker: Worker, tmp_path: Path) -> None:
    """The worker's UDP loop (either path) sends Responder's bytes and keeps its counters."""
    reference = _responder(tmp_path / "ref", random.Random(5782))
    address = worker.udp[0].getsockname()
    rng = random.Random(9)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.bind(("127.0.0.1", 0))
        client.settimeout(2)
        for _ in range(300):
            packet = _packet(rng)
            expected = reference.respond(packet, 512)
            client.sendto(packet, address)
            if expected is None:
                continue
            assert client.recv(4096) == expected
    deadline = time.monotonic() + 30  # the loop counts after it sent: a loaded machine lags
    while worker.counters != reference.counters and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.counters == reference.counters
    assert reference.counters[MISS] > 0


# -- deduplicated answers (v4_host_dns) -------------------------------------------------------
def _shared_rows() -> list[tuple[str, int, str, str, float, float | None]]:
    """Rows through both build paths: chunks of hosts sharing three TXTs (column path), a
    chunk of per-host TXTs (column path, not interned), then mixed rows (per-row path):
    hosts with two causes, hosts inside ranges with the same and another code, an
    allowlisted host, and the same TXTs again as in the first chunks."""
    from reputable.publication.snapshot.build import CHUNK

    rng = random.Random(1632)
    chosen = rng.sample(range(1 << 20), 3 * CHUNK + 600)
    hosts = [f"10.{a >> 16}.{(a >> 8) & 255}.{a & 255}" for a in chosen]
    reasons = ["spam trap hits", "listed for $ by a trap", "dollar $$ sign"]
    rows: list[tuple[str, int, str, str, float, float | None]] = []
    for i, subject in enumerate(hosts[: 2 * CHUNK]):
        rows.append((subject, 4, "spam", reasons[i % 3], 1e9 + i % 7, None))
    for i, subject in enumerate(hosts[2 * CHUNK : 3 * CHUNK]):
        rows.append((subject, 4, "harvest", f"harvest {i} at $", 1e9, None))
    for i, subject in enumerate(hosts[3 * CHUNK :]):
        cause = rng.choice(["spam", "compromised", "manual"])
        rows.append((subject, 4, cause, reasons[i % 3], 1e9, None))
        if i % 4 == 0:
            rows.append((subject, 4, "open_relay", reasons[(i + 1) % 3], 1e9, None))
    for i, subject in enumerate(hosts[: 2 * CHUNK : 97]):  # a second cause on column hosts
        rows.append((subject, 4, "malware_host", reasons[i % 3], 1e9, None))
    rows.append(("10.0.0.0/16", 4, "spam", reasons[0], 1e9, None))  # same code as the hosts
    rows.append(("10.1.0.0/18", 4, "network", "segment", 1e9, None))
    return rows


@needs_c
def test_deduplicated_answers_match_python(tmp_path: Path) -> None:
    """Hosts answer from a few shared answer values in C, byte for byte as Python answers
    from each host's own listings (A and TXT, inside ranges, several causes, excluded)."""
    from reputable.publication.snapshot.build import build
    from reputable.publication.snapshot.layout import write_snapshot

    config = parse_config(DEFAULT_TOML, tmp_path / "reputable.toml")
    rows = _shared_rows()
    allows = [(rows[5][0], 4, "partner", None), (rows[3 * 8192 + 3][0], 4, "partner", None)]
    built = build(
        rows,
        allows,
        ip_zone=config.ip_zone,
        domain_zone=config.domain_zone,
        allow_zone=config.allow_zone,
        serial=7,
        now=NOW,
    )
    write_snapshot(config.snapshot_path, built.header, built.sections)
    snapshot = Snapshot(config.snapshot_path)
    dns = snapshot.file.section("v4_host_dns")
    vals = snapshot.v4_host_val
    assert len(dns) == len(vals) == len(snapshot.v4_host_addr)
    # Shared TXTs collapse: far fewer answer values than hosts; per-host TXTs answer alone.
    assert len(set(dns)) < len(set(vals)) // 2
    assert len(set(dns)) > 8192  # the chunk of per-host TXTs: one answer each
    for value, answer in zip(vals, dns, strict=True):
        mine = [(int(snapshot.atom_code[a]), snapshot.template(a)) for a in snapshot.atoms(value)]
        theirs = [
            (int(snapshot.atom_code[a]), snapshot.template(a)) for a in snapshot.atoms(answer)
        ]
        assert mine == theirs
    responder = Responder(
        snapshot,
        zone_specs(config),
        nameservers=config.dns.nameservers,
        hostmaster=config.dns.hostmaster,
        negative_ttl=config.dns.negative_ttl,
    )
    engine = fastpath.engine_for(responder, MODULE)
    assert engine is not None
    subjects = {row[0] for row in rows if "/" not in row[0]} | {"10.0.255.1", "10.1.0.9"}
    answered = 0
    for qid, subject in enumerate(sorted(subjects)):
        labels = [x.encode() for x in [*reversed(subject.split(".")), "bl", "reputable", "test"]]
        for qtype in (1, 16):
            edns = b"\0" + struct.pack(">HHIH", 41, 1232, 0, 0)
            packet = struct.pack(">HHHHHH", qid & 0xFFFF, 0x100, 1, 0, 0, 1) + _name(labels)
            answered += _compare(responder, engine, packet + struct.pack(">HH", qtype, 1) + edns)
    assert answered == 2 * len(subjects)
    assert responder.counters[MISS] > 0  # the allowlisted hosts are not listed


@needs_c
def test_engine_rejects_an_answer_value_out_of_range(tmp_path: Path) -> None:
    """A host's answer value past the value table is refused when the engine is made."""
    from array import array

    from reputable.publication.snapshot.layout import MappedFile, write_snapshot

    responder = make_responder(tmp_path)
    snapshot = responder.snapshot
    sections: dict[str, Any] = {}
    for name in snapshot.file.header["sections"]:
        raw = snapshot.file.section(name)
        sections[name] = bytes(raw) if raw.format == "B" else array(raw.format, raw)
    sections["v4_host_dns"][0] = len(snapshot.file.section("val_index"))  # one past the end
    bad = tmp_path / "bad.snap"
    write_snapshot(
        bad, {k: v for k, v in snapshot.file.header.items() if k != "sections"}, sections
    )
    args = fastpath.engine_args(responder)
    assert args is not None
    assert MODULE is not None
    with pytest.raises(ValueError, match="out-of-range"):
        fastpath._engine(MODULE, MappedFile(bad), args)

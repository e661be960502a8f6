"""Reflection safety: UDP size caps, minimal ANY, the amplification bound, TCP size, RRL."""

from __future__ import annotations

import random
import socket
import struct
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dns.flags
import dns.message
import dns.rdatatype
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reputable.config import DEFAULT_TOML, parse_config
from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.core.errors import InputError
from reputable.core.limits import MAX_REASON_BYTES
from reputable.listings.model import Batch, Listing
from reputable.listings.rules import Limits, new_listing
from reputable.publication.dnsbl import fastpath, rrl
from reputable.publication.dnsbl import wire as wire_module
from reputable.publication.dnsbl.wire import Responder
from reputable.publication.dnsbl.worker import Worker, zone_specs
from reputable.publication.snapshot.publish import publish
from reputable.publication.snapshot.view import Snapshot
from reputable.testing import MemoryStore, write_config

from .conftest import _listing, udp_worker

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
MODULE = fastpath.extension()
needs_c = pytest.mark.skipif(MODULE is None, reason="the _fastdns extension is not built")
LONG = "L" * 1000


def _publish(directory: Path, listings: list[Listing], toml: str = DEFAULT_TOML) -> Responder:
    config = parse_config(toml, directory / "reputable.toml")
    store = MemoryStore()
    store.apply(Batch(listings=tuple(listings)), actor="t", action="t")
    publish(store, config, NOW)
    return Responder(
        Snapshot(config.snapshot_path),
        zone_specs(config),
        nameservers=config.dns.nameservers,
        hostmaster=config.dns.hostmaster,
        negative_ttl=config.dns.negative_ttl,
        max_udp=config.dns.max_udp_answer,
        amplification=config.dns.max_amplification,
    )


@pytest.fixture(scope="module")
def responder(tmp_path_factory: pytest.TempPathFactory) -> Responder:
    """Hosts with long reasons (1,000 bytes) under several causes, and a huge one past input."""
    causes = list(Cause)[:9]
    listings = [
        _listing("192.0.2.77", Cause.SPAM, LONG),
        _listing("evil.example", Cause.MALWARE_HOST, LONG),
    ]
    listings += [_listing("198.51.100.5", c, LONG[:980] + c.value) for c in causes]
    # Stored directly (older data, other writers): the answer must still fit a TCP message.
    listings += [
        _listing(
            f"203.0.{113 & (0xFF << (24 - p)) if p < 24 else 113}.0/{p}", causes[p % 9], "$" * 40000
        )
        for p in range(16, 32)
    ]
    listings += [_listing("203.0.113.1", Cause.SPAM, "S" * 40000)]
    # The audit's case: a /24 and a host in it, each with a 40,000-byte reason.
    listings += [
        _listing("192.0.2.0/24", Cause.COMPROMISED, "C" * 40000),
        _listing("192.0.2.78", Cause.SPAM, "S" * 40000),
    ]
    return _publish(tmp_path_factory.mktemp("hard"), listings)


def _both(responder: Responder) -> list[tuple[str, object]]:
    """(name, answer function) for Python and, when built, the C engine."""
    answerers: list[tuple[str, object]] = [("python", responder.respond)]
    engine = fastpath.engine_for(responder, MODULE) if MODULE is not None else None
    if engine is not None:

        def compiled(packet: bytes, max_size: int) -> bytes | None:
            found = engine.respond(packet, max_size)
            return found[0] if found is not None else responder.respond(packet, max_size)

        answerers.append(("compiled", compiled))
    return answerers


def test_any_is_minimal_and_edns_4096_stays_within_1232(responder: Responder) -> None:
    """ANY with EDNS 4096 for a long-reason listing gets only the A RRset, under 1,232 bytes."""
    for name in ("77.2.0.192.bl.reputable.test", "evil.example.dbl.reputable.test"):
        query = dns.message.make_query(name, "ANY", use_edns=0, payload=4096)
        for kind, answer in _both(responder):
            wire = answer(query.to_wire(), 512)  # type: ignore[operator]
            reply = dns.message.from_wire(wire)
            assert [r.rdtype for r in reply.answer] == [dns.rdatatype.A], kind
            assert len(wire) <= 3 * len(query.to_wire()), kind


def test_udp_answers_never_exceed_max_udp_answer(responder: Responder) -> None:
    """Nine 1,000-byte reasons with EDNS 4096 are cut to TC at 1,232 bytes; TCP has them all."""
    query = dns.message.make_query(
        "5.100.51.198.bl.reputable.test", "TXT", use_edns=0, payload=4096
    )
    for kind, answer in _both(responder):
        wire = answer(query.to_wire(), 512)  # type: ignore[operator]
        assert len(wire) <= 1232, kind
        assert dns.message.from_wire(wire).flags & dns.flags.TC, kind
    full = dns.message.from_wire(responder.respond(query.to_wire(), None) or b"")
    assert len(full.answer[0]) == 9


def test_tcp_answer_over_65535_bytes_is_cut_with_tc(
    responder: Responder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records over 64 KiB in all (TXT cap raised here) give a TCP answer that fits, with TC."""
    monkeypatch.setattr(wire_module, "MAX_TXT_TEXT", 65000)
    query = dns.message.make_query("1.113.0.203.bl.reputable.test", "TXT")
    wire = responder.respond(query.to_wire(), None)
    assert wire is not None and len(wire) <= 65535
    reply = dns.message.from_wire(wire)
    assert reply.flags & dns.flags.TC and reply.answer
    assert sum(len(rrset) for rrset in reply.answer) >= 1


def test_audit_case_answers_over_tcp(responder: Responder) -> None:
    """The audit's two 40,000-byte reasons: UDP says TC, TCP answers both (cut to 4,096 each)."""
    query = dns.message.make_query("78.2.0.192.bl.reputable.test", "TXT").to_wire()
    udp = responder.respond(query, 512)
    assert udp is not None and dns.message.from_wire(udp).flags & dns.flags.TC
    tcp = dns.message.from_wire(responder.respond(query, None) or b"")
    assert sorted(len(b"".join(r.strings)) for rrset in tcp.answer for r in rrset) == [4096, 4096]


def _query(rng: random.Random) -> bytes:
    zone = rng.choice(["bl.reputable.test", "dbl.reputable.test", "wl.reputable.test", "x.test"])
    name = rng.choice(
        [
            "77.2.0.192",
            "5.100.51.198",
            "1.113.0.203",
            f"{rng.randrange(256)}.113.0.203",
            "evil.example",
            "2",
            "",
            "a.b",
        ]
    )
    qname = f"{name}.{zone}" if name else zone
    rdtype = rng.choice(["A", "TXT", "ANY", "SOA", "NS", "MX"])
    edns = rng.choice([False, 0])
    payload = rng.choice([0, 256, 512])
    query = dns.message.make_query(qname, rdtype, use_edns=edns, payload=payload)
    return query.to_wire()


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.randoms(use_true_random=False))
def test_no_udp_reply_exceeds_three_times_its_query(
    responder: Responder, rng: random.Random
) -> None:
    """To a client offering at most 512 bytes, no UDP reply is over 3x its query (both loops)."""
    packet = _query(rng)
    for kind, answer in _both(responder):
        wire = answer(packet, 512)  # type: ignore[operator]
        assert wire is None or len(wire) <= 3 * len(packet), (kind, packet.hex())


def test_reason_over_the_limit_is_refused_at_input() -> None:
    """new_listing refuses a reason over 1,024 bytes, naming the size, limit and fix."""
    limits = Limits(max_prefix_v4=16, max_prefix_v6=32)
    ok = new_listing(
        parse_subject("192.0.2.1"),
        Cause.SPAM,
        reason="r" * MAX_REASON_BYTES,
        source="t",
        now=NOW,
        ttl=None,
        limits=limits,
    )
    assert len(ok.reason) == MAX_REASON_BYTES
    with pytest.raises(InputError, match=r"1025 bytes, the limit is 1024.*shorten"):
        new_listing(
            parse_subject("192.0.2.1"),
            Cause.SPAM,
            reason="r" * 1025,
            source="t",
            now=NOW,
            ttl=None,
            limits=limits,
        )


# -- response rate limiting ---------------------------------------------------------------
def _reply(responder: Responder, name: str, rdtype: str = "A") -> bytes:
    wire = responder.respond(dns.message.make_query(name, rdtype).to_wire(), 512)
    assert wire is not None
    return wire


def test_rrl_sends_rate_then_drops_and_slips(responder: Responder) -> None:
    """Beyond 5 identical answers/s, every 2nd is slipped (TC, no records) and the rest dropped."""
    limiter = rrl.RateLimiter(5, 2)
    reply = _reply(responder, "77.2.0.192.bl.reputable.test")
    verdicts = [limiter.check("192.0.2.10", reply, 100) for _ in range(11)]
    assert verdicts == [0] * 5 + [1, 2, 1, 2, 1, 2]
    assert limiter.counts() == (3, 3)
    assert limiter.check("192.0.2.200", reply, 100) == rrl.DROP  # same /24
    assert limiter.check("192.0.3.10", reply, 100) == rrl.SEND  # another /24
    assert limiter.check("192.0.2.10", reply, 101) == rrl.SEND  # a new second
    slip = dns.message.from_wire(rrl.slipped(reply))
    assert slip.flags & dns.flags.TC and not slip.answer and len(rrl.slipped(reply)) <= len(reply)


def test_rrl_pools_negative_answers_per_zone_and_ipv6_per_56(responder: Responder) -> None:
    """Random names under one zone share a bucket; IPv6 clients share one per /56."""
    limiter = rrl.RateLimiter(3, 0)
    names = [f"{i}.9.9.10.bl.reputable.test" for i in range(6)]
    got = [limiter.check("2001:db8:0:ff::1", _reply(responder, n), 7) for n in names]
    assert got == [0, 0, 0, 1, 1, 1]
    other_56 = limiter.check("2001:db8:0:100::1", _reply(responder, names[0]), 7)
    same_56 = limiter.check("2001:db8:0:1::9", _reply(responder, names[0]), 7)
    assert (other_56, same_56) == (rrl.SEND, rrl.DROP)


def test_rrl_exempt_and_per_rule_rates() -> None:
    """Exempt networks are never limited; an access rule's rate overrides the default."""
    from ipaddress import ip_network

    rules = rrl.rules_for(
        2,
        [ip_network("10.0.0.0/8")],
        [(ip_network("10.1.0.0/16"), 1), (ip_network("192.0.2.0/24"), 0)],
    )
    limiter = rrl.RateLimiter(2, 0, rules)
    reply = b"\x00\x01\x81\x05" + b"\x00" * 8  # REFUSED without a question: the error bucket
    assert [limiter.check("10.1.2.3", reply, 1) for _ in range(3)] == [0, 1, 1]
    assert [limiter.check("10.2.2.3", reply, 1) for _ in range(5)] == [0] * 5
    assert [limiter.check("192.0.2.3", reply, 1) for _ in range(5)] == [0] * 5
    assert [limiter.check("198.51.100.1", reply, 1) for _ in range(3)] == [0, 0, 1]


@needs_c
def test_rrl_compiled_and_python_decide_alike(responder: Responder) -> None:
    """Over 20,000 random (client, reply, second) events the C and Python limiters agree."""
    from ipaddress import ip_network

    assert MODULE is not None
    rules = rrl.rules_for(4, [ip_network("127.0.0.0/8")], [(ip_network("198.51.100.0/25"), 9)])
    c = rrl.limiter_for(4, 3, rules, MODULE)
    py = rrl.RateLimiter(4, 3, rules)
    assert c is not None and not isinstance(c, rrl.RateLimiter)
    rng = random.Random(8482)
    replies = [responder.respond(_query(rng), 512) for _ in range(60)]
    replies = [r for r in replies if r] + [b"\x00\x01\x81\x01" + b"\x00" * 8, b"\x00"]
    hosts = [
        "198.51.100.1",
        "198.51.100.200",
        "127.0.0.1",
        "192.0.2.1",
        "::ffff:192.0.2.9",
        "2001:db8::1",
        "2001:db8:0:1::1",
        "fe80::1%lo",
    ]
    now = 1000
    for _ in range(20000):
        if rng.random() < 0.002:
            now += rng.choice([1, 2])
        host, reply = rng.choice(hosts), rng.choice(replies)
        assert c.check(host, reply, now) == py.check(host, reply, now), (host, reply.hex(), now)
    assert c.counts() == py.counts() and sum(py.counts()) > 1000


@pytest.fixture(params=["compiled", "python", "refusing"])
def limited_worker(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Worker]:
    """A worker with RRL at 10 answers/s (loopback not exempt) serving UDP in a thread."""
    if request.param == "compiled" and MODULE is None:
        pytest.skip("the _fastdns extension is not built")
    if request.param == "python":
        monkeypatch.setenv(fastpath.DISABLE_ENV, "1")
    path = write_config(tmp_path, dns_port=0, extra="")
    text = path.read_text().replace('exempt = ["127.0.0.0/8", "::1/128"]', "exempt = []")
    text = text.replace("responses_per_second = 20", "responses_per_second = 10")
    if request.param == "refusing":  # access-control refusals are rate limited too
        text = text.replace(
            '{ network = "0.0.0.0/0", action = "answer" }',
            '{ network = "0.0.0.0/0", action = "refuse" }',
        )
    path.write_text(text)
    config = parse_config(text, path)
    store = MemoryStore()
    store.apply(
        Batch(listings=(_listing("192.0.2.77", Cause.SPAM, "spam"),)), actor="t", action="t"
    )
    publish(store, config, NOW)
    with udp_worker(config) as worker:
        yield worker


def test_rrl_in_the_worker_loops(limited_worker: Worker) -> None:
    """A burst of 300 identical queries in one second gets 10 answers and slips, in both loops."""
    address = limited_worker.udp[0].getsockname()
    query = dns.message.make_query("77.2.0.192.bl.reputable.test", "A")
    query.id = 4242
    packet = query.to_wire()
    limiter = limited_worker.limiter
    assert limiter is not None
    # The buckets are per second of the worker's monotonic clock, read as each query is
    # answered. A burst whose first query went out and whose last answer came back in the
    # same second was answered within it; one a loaded machine stretched over a second's
    # end (two buckets: more answers) proves nothing and goes again, in a later second.
    for _ in range(5):
        before = limiter.counts()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            client.bind(("127.0.0.1", 0))
            client.settimeout(2.0)  # the end of the answers, not a stall of the worker's
            while time.monotonic() % 1 > 0.3:  # start early in a second: one bucket second
                time.sleep(0.02)
            first = time.monotonic()
            for i in range(300):
                client.sendto(packet, address)
                if i % 50 == 49:
                    time.sleep(0.01)  # the server's receive buffer is the only thing not tested
            full = truncated = 0
            last = first
            while True:
                try:
                    wire = client.recv(4096)
                except TimeoutError:
                    break
                last = time.monotonic()
                reply = dns.message.from_wire(wire, question_only=True)
                if reply.flags & dns.flags.TC:
                    truncated += 1
                    assert len(wire) <= len(packet)
                else:
                    full += 1
        if int(first) == int(last):
            break
    else:
        pytest.fail("5 bursts each spanned two seconds: the machine is too loaded to test this")
    # 10 answers/s are sent; of the 290 over the rate, every 2nd (slip = 2) goes out truncated
    over = 300 - 10
    assert full == 10, (full, truncated)
    assert truncated == over // 2
    after = limiter.counts()
    assert (after[0] - before[0], after[1] - before[1]) == (over - over // 2, over // 2)
    assert struct.unpack(">H", wire[:2])[0] == 4242


def test_cli_refuses_a_long_reason_with_a_clear_message(tmp_path: Path) -> None:
    """`list add` with a 40,000-byte reason exits 2 naming the limit; nothing is listed."""
    from reputable.testing import cli

    config = write_config(tmp_path, dns_port=5300)
    result = cli(
        config, "list", "add", "192.0.2.77", "--cause", "spam", "--reason", "S" * 40000,
        check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "40000 bytes, the limit is 1024" in result.stderr and "Traceback" not in result.stderr
    assert "192.0.2.77" not in cli(config, "list", "show").stdout


def test_rrl_and_size_settings_are_checked(tmp_path: Path) -> None:
    """Bad [dns]/[rrl] values stop with a message naming the key; good ones are read."""
    from reputable.core.errors import ConfigError

    good = parse_config(
        DEFAULT_TOML.replace("max_udp_answer = 1232", "max_udp_answer = 4096"), tmp_path / "r.toml"
    )
    assert good.dns.max_udp_answer == 4096 and good.dns.rrl.responses_per_second == 20
    for old, new, key in (
        ("max_udp_answer = 1232", "max_udp_answer = 100", "max_udp_answer"),
        ("responses_per_second = 20", "responses_per_second = -1", "responses_per_second"),
        ('exempt = ["127.0.0.0/8", "::1/128"]', 'exempt = ["nonsense"]', "rrl"),
        ('{ network = "::/0", action = "answer" }', '{ network = "::/0", action = "answer", rrl = "x" }', "rrl"),
        ('tcp_idle_timeout = "10s"', 'tcp_idle_timeout = "0s"', "tcp_idle_timeout"),
    ):  # fmt: skip
        with pytest.raises(ConfigError, match=key):
            parse_config(DEFAULT_TOML.replace(old, new), tmp_path / "r.toml")


def test_metrics_show_rrl_counts() -> None:
    """/metrics sums the workers' dropped and slipped answers and TCP connections closed."""
    from reputable.publication.metrics import render

    records = [
        {"worker": 0, "zones": ["z", "-"], "counters": [0] * 8, "rrl": [5, 2], "tcp": [3, 7, 1]},
        {"worker": 1, "zones": ["z", "-"], "counters": [0] * 8, "rrl": [1, 1]},
    ]
    text = render(records)
    assert "reputable_dns_tcp_connections 3" in text
    assert 'reputable_dns_tcp_closed_total{why="evicted"} 7' in text
    assert 'reputable_dns_rrl_total{action="dropped"} 6' in text
    assert 'reputable_dns_rrl_total{action="slipped"} 3' in text

"""The engine's fast paths give what the general ones gave (bench/policy_scale.py speed work).

Each fast path replaced a general computation (ipaddress parsing, a scan, dataclass copies,
delete-and-insert); these tests pin it to the general one.
"""

from __future__ import annotations

import gc
import ipaddress
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from reputable.config import Config
from reputable.core.address import format_subject, parse_address, parse_subject
from reputable.core.cause import Cause
from reputable.evidence.model import Evidence
from reputable.listings.engine import evaluate, evaluate_new
from reputable.listings.escalation import _clean_inside, network_key, text_heads
from reputable.listings.policy import _cut, _v4_cut, network_of
from reputable.listings.reason import _span, evidence_reason
from reputable.listings.rows import canonical
from reputable.store.sqlite import SQLiteStore

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

v4_int = st.integers(min_value=0, max_value=(1 << 32) - 1)


def add(store: SQLiteStore, subject: str, cause: Cause, n: int, at: datetime = T0) -> None:
    """Store *n* distinct pieces of evidence about *subject*, a second apart."""
    store.add_evidence(
        Evidence(
            subject=parse_address(subject),
            cause=cause,
            source="test",
            observed_at=at + timedelta(seconds=i),
            detail={"i": i},
        )
        for i in range(n)
    )


@given(v4_int, st.integers(min_value=0, max_value=32))
def test_canonical_matches_the_parser_for_ipv4(value: int, length: int) -> None:
    """An IPv4 address or CIDR is written as format_subject(parse_subject(...)) writes it."""
    net = ipaddress.IPv4Network((value >> (32 - length) << (32 - length), length))
    for text in (str(net), str(net.network_address)):
        assert canonical(text) == format_subject(parse_subject(text))


@given(st.sampled_from(["2001:db8::/64", "2001:DB8:0:1::/64", "Example.COM", "10.1.2.3/32"]))
def test_canonical_falls_back_to_the_parser(text: str) -> None:
    """Anything but plain IPv4 text goes through the parser."""
    assert canonical(text) == format_subject(parse_subject(text))


@settings(max_examples=200)
@given(
    st.sampled_from(["10.1.2.0/24", "2001:db8::/48", "2001:db8:5::/48"]),
    st.lists(st.integers(min_value=0, max_value=255), max_size=6),
)
def test_cut_texts_are_ipaddress_texts(network: str, offsets: list[int]) -> None:
    """The CIDRs of a cut network are written as ipaddress writes them, and cover it exactly."""
    net = ipaddress.ip_network(network)
    step = 1 if net.version == 4 else 1 << 64
    size = 32 if net.version == 4 else 64
    holes = sorted(
        {
            ipaddress.ip_network((int(net.network_address) + o * step, size))
            for o in offsets  # type: ignore[arg-type]
        },
        key=lambda h: int(h.network_address),
    )
    cidrs = _cut(net, holes)  # type: ignore[arg-type]
    nets = [ipaddress.ip_network(c) for c in cidrs]
    assert cidrs == [str(n) for n in nets]
    assert sum(n.num_addresses for n in nets) + sum(h.num_addresses for h in holes) == (
        net.num_addresses
    )


@given(
    st.lists(
        st.one_of(
            st.builds(lambda c, d: f"10.1.{c}.{d}", st.integers(1, 3), st.integers(0, 255)),
            st.builds(lambda c: f"10.1.{c}.0/25", st.integers(1, 3)),
            st.builds(
                lambda g, h: f"2001:db8:{g:x}:{h:x}::/64", st.integers(0, 2), st.integers(0, 9)
            ),
            st.just("10.1.2.example"),
        ),
        max_size=30,
    )
)
def test_clean_members_found_by_bisection_are_those_of_the_mapping(clean: list[str]) -> None:
    """Bisecting the sorted clean targets finds what mapping each to its network found."""
    networks = ["10.1.1.0/24", "10.1.2.0/24", "2001:db8::/48", "2001:db8:1::/48"]
    expected: dict[str, set[str]] = {}
    for target in set(clean):
        network = network_of(target) if ":" in target or target[-1].isdigit() else None
        if network in networks:
            expected.setdefault(network, set()).add(target)
    found = _clean_inside(networks, set(clean))
    assert {n: set(ts) for n, ts in found.items()} == expected


_group = st.one_of(st.just(0), st.just(1), st.integers(0, 0xFFFF))


@settings(max_examples=500)
@given(st.lists(_group, min_size=8, max_size=8), st.sampled_from([48, 56, 64, 128]))
def test_every_subject_inside_a_network_starts_with_one_of_its_heads(
    groups: list[int], length: int
) -> None:
    """The clean targets read by text range (store.clean_targets_in) miss no member."""
    value = 0
    for g in groups:
        value = (value << 16) | g
    net = ipaddress.IPv6Network((value >> (128 - length) << (128 - length), length))
    network = network_key(format_subject(net))
    assert network is not None
    text = format_subject(net)
    assert any(text.startswith(head) for head in text_heads(network)), (text, network)
    v4 = format_subject(ipaddress.IPv4Network((value >> 96, 32)))
    assert v4.startswith(text_heads(network_key(v4) or "")[0])


@given(st.integers(min_value=0, max_value=(1 << 64) - 1), st.sampled_from([64, 128]))
def test_network_key_of_ipv6_matches_network_of(top: int, length: int) -> None:
    """The /48 read off an IPv6 target's text (as the store writes it) is ipaddress's."""
    net = ipaddress.IPv6Network((top << 64, 64))
    target = str(net) if length == 64 else str(net.network_address + 1)
    assert network_key(target) == network_of(target)


def test_reason_ranks_equal_counts_by_words() -> None:
    """Equal counts come in the order of their words, whatever order the rows came in."""
    from collections import Counter

    a = evidence_reason(Cause.COMPROMISED, Counter({"sshd": 1, "fw": 1, "sinkhole": 1}), 0, 0)
    b = evidence_reason(Cause.COMPROMISED, Counter({"fw": 1, "sinkhole": 1, "sshd": 1}), 0, 0)
    assert a == b


def test_evaluation_leaves_the_collector_as_it_found_it(store: SQLiteStore, config: Config) -> None:
    """The collector is held off during an evaluation only."""
    add(store, "198.51.100.1", Cause.SPAM, 3)
    assert gc.isenabled()
    evaluate(store, config.policy, config.reputation, T0 + timedelta(minutes=5))
    assert gc.isenabled()
    gc.disable()
    try:
        evaluate(store, config.policy, config.reputation, T0 + timedelta(minutes=6))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_evidence_cursor_is_the_cursor_of_targets_since(store: SQLiteStore) -> None:
    """policy run's cheap cursor is the one evidence_targets_since returns."""
    assert store.evidence_cursor(0, observed_by=T0.timestamp()) == 0
    add(store, "198.51.100.1", Cause.SPAM, 3)
    add(store, "198.51.100.2", Cause.SPAM, 2, at=T0 + timedelta(days=1))  # ahead of the clock
    for by in (T0 - timedelta(days=1), T0 + timedelta(hours=1), T0 + timedelta(days=2)):
        for after in (0, 1, 3, 5, 9):
            _, cursor = store.evidence_targets_since(after, observed_by=by.timestamp())
            assert store.evidence_cursor(after, observed_by=by.timestamp()) == cursor


def test_whole_table_reads_match_the_listed_ones(store: SQLiteStore, config: Config) -> None:
    """own_rows(None) and periods(None) are the rows of every subject."""
    for i in range(1, 4):
        add(store, f"198.51.100.{i}", Cause.SPAM, 3)
    at = T0 + timedelta(minutes=5)
    evaluate(store, config.policy, config.reputation, at)
    subjects = store.all_targets()
    assert sorted(store.own_rows(None, source="policy", active_at=at.timestamp())) == sorted(
        store.own_rows(subjects, source="policy", active_at=at.timestamp())
    )
    assert store.periods(None) == store.periods(subjects)
    assert len(store.periods(None)) == 3


def test_moved_escalation_is_retimed_in_place(store: SQLiteStore, config: Config) -> None:
    """An escalation whose CIDRs stay but whose members' listings move is updated, not rebuilt."""
    for i in range(1, 9):
        add(store, f"198.51.100.{i}", Cause.SPAM, 3)
    add(store, "198.51.100.25", Cause.CLEAN, 20)
    at = T0 + timedelta(minutes=5)
    evaluate(store, config.policy, config.reputation, at)
    evaluate_new(store, config.policy, config.reputation, at)  # sets the cursors
    before = {item.subject_text: item for item in store.listings(cause=Cause.NETWORK, active_at=at)}
    later = T0 + timedelta(hours=12)
    for i in range(1, 9):  # every member seen again: each listing (and the /24's) lasts longer
        add(store, f"198.51.100.{i}", Cause.SPAM, 3, at=later)
    outcome = evaluate_new(store, config.policy, config.reputation, later + timedelta(minutes=1))
    assert len(outcome.changes.retimes) == 1
    assert not any(s.startswith("policy:network") for _, s in outcome.changes.drops)
    after = {
        item.subject_text: item for item in store.listings(cause=Cause.NETWORK, active_at=later)
    }
    assert set(after) == set(before)
    for subject, item in after.items():
        assert item.expires_at is not None and before[subject].expires_at is not None
        assert item.expires_at > before[subject].expires_at
    check = evaluate(store, config.policy, config.reputation, later + timedelta(minutes=1))
    assert check.changes.empty()


def test_clean_evidence_alone_re_decides_the_carve_outs(store: SQLiteStore, config: Config) -> None:
    """A target whose new evidence is all clean is not re-decided, but its network is."""
    for i in range(1, 9):
        add(store, f"198.51.100.{i}", Cause.SPAM, 3)
    at = T0 + timedelta(minutes=5)
    evaluate(store, config.policy, config.reputation, at)
    evaluate_new(store, config.policy, config.reputation, at)  # sets the cursors
    before = {x.subject_text for x in store.listings(cause=Cause.NETWORK, active_at=at)}
    assert before == {"198.51.100.0/24"}
    later = T0 + timedelta(hours=1)
    add(store, "198.51.100.25", Cause.CLEAN, 20, at=later)  # a clean mail server, seen now
    outcome = evaluate_new(store, config.policy, config.reputation, later + timedelta(minutes=1))
    assert outcome.targets == 1 and outcome.decisions == []  # nothing of its own to decide
    after = {x.subject_text for x in store.listings(cause=Cause.NETWORK, active_at=later)}
    assert "198.51.100.0/24" not in after and "198.51.100.25" not in after
    assert any(ipaddress.ip_address("198.51.100.25") in ipaddress.ip_network(c) for c in before)
    assert not any(ipaddress.ip_address("198.51.100.25") in ipaddress.ip_network(c) for c in after)
    check = evaluate(store, config.policy, config.reputation, later + timedelta(minutes=1))
    assert check.changes.empty()  # incremental equals full


def test_a_re_probe_that_finds_the_relay_closed_is_not_clean_alone(
    store: SQLiteStore, config: Config
) -> None:
    """Clean evidence from a relay re-probe ends the listing: its target is re-decided."""
    relay = "198.51.100.40"
    store.add_evidence(
        [Evidence(subject=parse_address(relay), cause=Cause.OPEN_RELAY, source="probe:relay",
                  observed_at=T0, detail={"found": "open"})]
    )  # fmt: skip
    at = T0 + timedelta(minutes=5)
    evaluate_new(store, config.policy, config.reputation, at)
    assert [x.cause for x in store.listings(active_at=at)] == [Cause.OPEN_RELAY]
    later = T0 + timedelta(hours=2)
    store.add_evidence(
        [Evidence(subject=parse_address(relay), cause=Cause.CLEAN, source="probe:relay",
                  observed_at=later, detail={"found": "closed"})]
    )  # fmt: skip
    evaluate_new(store, config.policy, config.reputation, later + timedelta(minutes=1))
    assert list(store.listings(active_at=later + timedelta(minutes=1))) == []


@settings(max_examples=300)
@given(
    st.sampled_from(["10.1.2.0/24", "192.0.2.0/24", "0.0.0.0/24", "255.255.255.0/24"]),
    st.lists(
        st.tuples(st.integers(min_value=-300, max_value=555), st.sampled_from([32, 30, 28, 24])),
        max_size=6,
    ),
)
def test_v4_cut_is_the_ipaddress_cut(network: str, offsets: list[tuple[int, int]]) -> None:
    """escalate()'s IPv4 path cuts and writes holes (inside and out) as ipaddress does."""
    net = ipaddress.IPv4Network(network)
    base = int(net.network_address)
    texts = []
    for offset, length in offsets:
        value = min(max(base + offset, 0), (1 << 32) - 1)
        hole = ipaddress.IPv4Network((value, length), strict=False)
        texts.append(str(hole.network_address) if length == 32 else str(hole))
    holes = sorted(
        {ipaddress.ip_network(t, strict=False) for t in texts},
        key=lambda n: (int(n.network_address), n.prefixlen),
    )
    inside = [h for h in holes if h.subnet_of(net)]  # type: ignore[arg-type]
    assert _v4_cut(network, texts) == (_cut(net, inside), [str(h) for h in holes], 4)


def test_v4_cut_leaves_unusual_texts_to_ipaddress() -> None:
    """IPv6, leading zeros and bad lengths take the general path (None)."""
    assert _v4_cut("2001:db8::/48", []) is None
    assert _v4_cut("10.1.2.0/24", ["010.1.2.3"]) is None
    assert _v4_cut("10.1.2.0/24", ["10.1.2.3/33"]) is None
    assert _v4_cut("10.1.2.0/24", ["10.1.2.3/08"]) is None


@given(st.floats(min_value=0, max_value=4e9), st.floats(min_value=0, max_value=4e7))
def test_reason_dates_are_the_datetime_dates(first: float, length: float) -> None:
    """The cached day span writes what datetime writes for the two instants."""
    last = first + length
    a, b = datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(last, UTC)
    if a.date() == b.date():
        want = a.strftime("%Y-%m-%d")
    elif a.year == b.year:
        want = f"{a:%Y-%m-%d}..{b:%m-%d}"
    else:
        want = f"{a:%Y-%m-%d}..{b:%Y-%m-%d}"
    assert _span(first, last) == want

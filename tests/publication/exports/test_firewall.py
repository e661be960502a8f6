"""nftables and ipset exports: pure ranges, and the real nft/ipset dropping listed sources."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from ipaddress import IPv4Address, ip_address, ip_network, summarize_address_range
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.core.errors import InputError
from reputable.listings.model import AllowEntry, Listing
from reputable.publication.exports import ipset, nftables
from reputable.publication.exports.ranges import (
    ListedSpace,
    listed_space,
    listed_space_rows,
    networks,
    parse_span,
    range_text,
)
from tests.publication.exports.netns import namespace, reachable, run_in

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def listing(subject: str, cause: Cause = Cause.SPAM) -> Listing:
    """Return an active listing of *subject*."""
    return Listing(
        subject=parse_subject(subject), cause=cause, reason="r", source="t", listed_at=T0
    )


def allow(subject: str) -> AllowEntry:
    """Return an allowlist entry for *subject*."""
    return AllowEntry(subject=parse_subject(subject), note="ok", source="t", created_at=T0)


def test_ranges_merge_overlaps_and_cut_allowlist_holes() -> None:
    """Overlapping and adjacent listings merge; an allowlisted host splits its range."""
    space = listed_space(
        [listing("10.0.0.0/25"), listing("10.0.0.128/25"), listing("10.0.0.5"), listing("x.test")],
        [allow("10.0.0.77")],
    )
    first = int(ip_address("10.0.0.0"))
    assert space.v4 == ((first, first + 76), (first + 78, first + 255))
    assert space.v6 == ()


def test_ranges_filter_causes_and_never_hold_127_0_0_1() -> None:
    """Only the wanted causes go in, and 127.0.0.1 is never in a firewall set."""
    space = listed_space(
        [listing("127.0.0.0/30"), listing("192.0.2.1", Cause.RDNS)], [], causes={Cause.SPAM}
    )
    low = int(ip_address("127.0.0.0"))
    assert space.v4 == ((low, low), (low + 2, low + 3))


addresses = st.integers(min_value=0, max_value=255).map(lambda n: f"10.0.0.{n}")


@given(st.lists(addresses, max_size=40), st.lists(addresses, max_size=10))
@settings(max_examples=200, deadline=None)
def test_ranges_cover_exactly_the_listed_minus_allowed(
    listed: list[str], allowed: list[str]
) -> None:
    """Every address is in the ranges iff it is listed and not allowlisted (property)."""
    space = listed_space([listing(a) for a in listed], [allow(a) for a in allowed])
    covered = {n for a, b in space.v4 for n in range(a, b + 1)}
    expected = {int(ip_address(a)) for a in listed} - {int(ip_address(a)) for a in allowed}
    assert covered == expected
    assert all(b + 1 < c for (_, b), (c, _) in zip(space.v4, space.v4[1:], strict=False))
    nets = list(networks(space.v4, 4))
    assert {int(a) for n in nets for a in ip_network(n)} == expected


def test_nft_script_replaces_the_table_in_one_file() -> None:
    """The script adds, deletes and redeclares the table so nft -f swaps it atomically."""
    text = nftables.render(listed_space([listing("192.0.2.0/24"), listing("2001:db8::1")], []))
    lines = text.splitlines()
    assert lines.index("add table inet reputable") < lines.index("delete table inet reputable")
    assert "\t\t\t192.0.2.0/24" in lines
    assert "\t\t\t2001:db8::1" in lines
    assert "\t\tip saddr @bl4 drop" in lines


def test_nft_options_are_checked() -> None:
    """A bad table name or hook is refused with the fix named."""
    with pytest.raises(InputError, match="letters, digits"):
        nftables.render(listed_space([], []), nftables.NftOptions(table="a b"))
    with pytest.raises(InputError, match="input or forward"):
        nftables.render(listed_space([], []), nftables.NftOptions(hooks=("output",)))


def test_ipset_script_fills_a_fresh_set_and_swaps() -> None:
    """The restore file fills NAME-new, swaps it with NAME and destroys the old contents."""
    text = ipset.render(listed_space([listing("192.0.2.0/31"), listing("192.0.2.2")], []))
    lines = text.splitlines()
    assert "add reputable-new 192.0.2.0/31" in lines
    assert "add reputable-new 192.0.2.2/32" in lines
    assert lines.index("swap reputable-new reputable") < lines.index("destroy reputable-new")


SOURCES_V4 = ["192.0.2.7/32", "198.51.100.9/32", "203.0.113.1/32"]
SOURCES_V6 = ["2001:db8::7/128 nodad", "2001:db8:1::9/128 nodad", "2001:db8:2::1/128 nodad"]


def _space() -> ListedSpace:
    """Return the listed space the namespace tests load."""
    return listed_space(
        [listing("192.0.2.0/24"), listing("2001:db8::/48"), listing("198.51.100.0/24")],
        [allow("198.51.100.9")],
    )


@pytest.mark.netns
def test_nft_in_a_namespace_drops_listed_and_passes_unlisted(tmp_path: Path) -> None:
    """Loaded by the real nft in a namespace: a listed source is dropped, others connect."""
    if shutil.which("nft") is None:
        pytest.skip("needs nft (Debian package nftables)")
    script = tmp_path / "bl.nft"
    script.write_text(nftables.render(_space()))
    with namespace(SOURCES_V4 + SOURCES_V6) as ns:
        before = reachable(ns, "203.0.113.1", ["192.0.2.7", "198.51.100.9"])
        assert before == {"192.0.2.7": True, "198.51.100.9": True}
        for _ in range(2):  # loading twice replaces the table, it does not add a second one
            done = run_in(ns, ["nft", "-f", str(script)])
            assert done.returncode == 0, done.stderr
        listed = run_in(ns, ["nft", "list", "set", "inet", "reputable", "bl4"]).stdout
        assert "192.0.2.0/24" in listed
        assert run_in(ns, ["nft", "list", "ruleset"]).stdout.count("table inet reputable") == 1
        v4 = reachable(ns, "203.0.113.1", ["192.0.2.7", "198.51.100.9"])
        v6 = reachable(ns, "2001:db8:2::1", ["2001:db8::7", "2001:db8:1::9"])
    assert v4 == {"192.0.2.7": False, "198.51.100.9": True}  # .9 is allowlisted: a hole
    assert v6 == {"2001:db8::7": False, "2001:db8:1::9": True}


@pytest.mark.netns
def test_ipset_in_a_namespace_drops_listed_and_swaps_updates(tmp_path: Path) -> None:
    """Restored by the real ipset and matched by iptables: listed dropped; a swap delists."""
    for tool, package in (("ipset", "ipset"), ("iptables", "iptables")):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} (Debian package {package})")
    first = tmp_path / "first.ipset"
    first.write_text(ipset.render(_space()))
    second = tmp_path / "second.ipset"
    second.write_text(ipset.render(listed_space([listing("198.51.100.0/24")], [])))
    with namespace(SOURCES_V4) as ns:
        done = run_in(ns, ["ipset", "restore", "-file", str(first)])
        assert done.returncode == 0, done.stderr
        rule = ["iptables", "-I", "INPUT", "-m", "set", "--match-set", "reputable", "src"]
        done = run_in(ns, [*rule, "-j", "DROP"])
        assert done.returncode == 0, done.stderr
        assert reachable(ns, "203.0.113.1", ["192.0.2.7", "198.51.100.9"]) == {
            "192.0.2.7": False,
            "198.51.100.9": True,
        }
        done = run_in(ns, ["ipset", "restore", "-file", str(second)])
        assert done.returncode == 0, done.stderr
        after = reachable(ns, "203.0.113.1", ["192.0.2.7", "198.51.100.9"])
        names = run_in(ns, ["ipset", "list", "-name"]).stdout.split()
    assert after == {"192.0.2.7": True, "198.51.100.9": False}
    assert sorted(names) == ["reputable", "reputable6"]


@given(st.integers(0, 2**32 - 1), st.integers(0, 5000))
@settings(max_examples=300, deadline=None)
def test_cidr_cover_is_exact_and_texts_match_ipaddress(first: int, length: int) -> None:
    """Integer CIDR splitting equals ipaddress's, and the range text is the same network."""
    last = min(first + length, 2**32 - 1)
    expected = [str(n) for n in summarize_address_range(IPv4Address(first), IPv4Address(last))]
    assert list(networks([(first, last)], 4)) == expected
    text = range_text(first, last, 4)
    if len(expected) == 1:
        assert text == (str(IPv4Address(first)) if first == last else expected[0])
    else:
        assert text == f"{IPv4Address(first)}-{IPv4Address(last)}"


def test_parse_span_reads_canonical_subjects() -> None:
    """Store subject text becomes (first, last, prefix) for both families."""
    host = int(ip_address("192.0.2.7"))
    assert parse_span("192.0.2.7", 4) == (host, host, 32)
    assert parse_span("192.0.2.0/24", 4)[:2] == (host - 7, host + 248)
    low = int(ip_address("2001:db8::"))
    assert parse_span("2001:db8::/126", 6) == (low, low + 3, 126)


def test_networks_are_exact_for_ipv6() -> None:
    """A range of IPv6 addresses becomes the CIDRs that cover it exactly."""
    low = int(ip_address("2001:db8::"))
    assert list(networks([(low, low + 2)], 6)) == ["2001:db8::/127", "2001:db8::2/128"]


nets = st.sampled_from(
    ["192.0.2.0/24", "192.0.2.7", "192.0.2.128/25", "198.51.100.9", "2001:db8::/48",
     "2001:db8::5", "127.0.0.0/30", "10.0.0.0/8", "x.example"]
)  # fmt: skip


@given(st.lists(nets, max_size=8), st.lists(nets, max_size=3))
@settings(max_examples=200, deadline=None)
def test_rows_and_objects_give_the_same_space(listed: list[str], allowed: list[str]) -> None:
    """The store-row path (used by export and sinks) equals the Listing path (property)."""
    listings = [listing(s) for s in listed]
    allows = [allow(s) for s in allowed]

    def family(text: str) -> int:
        return 0 if text.endswith(".example") else (6 if ":" in text else 4)

    rows = [(x.subject_text, family(x.subject_text), x.cause.value) for x in listings]
    allow_rows = [(a.subject_text, family(a.subject_text)) for a in allows]
    assert listed_space_rows(rows, allow_rows) == listed_space(listings, allows)

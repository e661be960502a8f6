"""Subjects and DNSBL query names."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reputable.core.address import (
    Domain,
    format_subject,
    ipv4_qname,
    ipv6_qname,
    parse_domain,
    parse_subject,
)
from reputable.core.errors import SubjectError


def test_single_address_is_host_network() -> None:
    """A bare IPv4 address parses as a /32 and prints back bare."""
    subject = parse_subject("198.51.100.7")
    assert subject == IPv4Network("198.51.100.7/32")
    assert format_subject(subject) == "198.51.100.7"


def test_cidr_with_host_bits_is_refused() -> None:
    """A CIDR with host bits set is an error that names the input."""
    with pytest.raises(SubjectError, match=r"bad CIDR '10.0.0.1/24'"):
        parse_subject("10.0.0.1/24")


def test_prefix_out_of_range_is_refused() -> None:
    """A prefix length beyond 32 is an error."""
    with pytest.raises(SubjectError, match="bad CIDR"):
        parse_subject("10.0.0.0/33")


def test_ipv4_mapped_network_becomes_ipv4() -> None:
    """::ffff:a.b.c.d/n is stored once, as the IPv4 network a.b.c.d/(n-96)."""
    assert parse_subject("::ffff:198.51.100.0/120") == IPv4Network("198.51.100.0/24")


def test_ipv6_prefix() -> None:
    """An IPv6 prefix parses as an IPv6 network."""
    assert parse_subject("2001:db8:1::/48") == IPv6Network("2001:db8:1::/48")


def test_domain_is_normalised() -> None:
    """Domains are lower-cased, lose the trailing dot and become IDNA."""
    assert parse_subject("Evil.Example.") == Domain("evil.example")
    assert parse_domain("bücher.example") == Domain("xn--bcher-kva.example")


@pytest.mark.parametrize("text", ["-bad.example", "a..b", "x" * 64 + ".example", "sp ace.example"])
def test_bad_domains_are_refused(text: str) -> None:
    """Malformed domain names raise SubjectError."""
    with pytest.raises(SubjectError):
        parse_domain(text)


def test_parents_longest_first() -> None:
    """A domain's parents run from itself to its last label."""
    assert [d.name for d in Domain("a.b.example").parents()] == [
        "a.b.example",
        "b.example",
        "example",
    ]


def test_ipv4_qname_reverses_octets() -> None:
    """RFC 5782 §2.1: 198.51.100.7 is queried as 7.100.51.198.<zone>."""
    assert ipv4_qname(IPv4Address("198.51.100.7"), "bl.test") == "7.100.51.198.bl.test"


def test_ipv6_qname_reverses_nibbles() -> None:
    """RFC 5782 §2.4: IPv6 addresses are queried as 32 reversed nibbles."""
    name = ipv6_qname(IPv6Address("2001:db8::1"), "bl.test")
    assert name.startswith("1.0.0.0.0.0.0.0.")
    assert name.endswith(".8.b.d.0.1.0.0.2.bl.test")
    assert len(name.split(".")) == 32 + 2


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_ipv4_qname_round_trip(value: int) -> None:
    """Reversing the octets of a query name gives back the address."""
    address = IPv4Address(value)
    labels = ipv4_qname(address, "z").split(".")[:4]
    assert IPv4Address(".".join(reversed(labels))) == address

"""The one generic-PTR rule, shared by the checker and the rDNS probe: one table for both."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from reputable.checker import rdns as checker_rdns
from reputable.core.ptrname import generic_reasons, host_part, looks_generic
from reputable.evidence.sources.probes import rdns as probe_rdns

#: (PTR name, address, generic?): every case either side ever disagreed on belongs here.
TABLE = [
    ("198-51-100-7.dyn.example.net", "198.51.100.7", True),
    ("host7.pool.example.net", "198.51.100.7", True),
    ("c-198-51-100-7.hsd1.ca.comcast.example", "198.51.100.7", True),
    ("c-73-15-2-9.hsd1.ma.comcast.test", "73.15.2.9", True),
    ("ip-049-000-002-007.example.test", "49.0.2.7", True),
    ("31000207.dyn.example.test", "49.0.2.7", True),
    ("c0000207.example.test", "192.0.2.7", True),
    ("ppp-customer.example.test", "198.51.100.1", True),
    ("mobile-7.isp.example", "198.51.100.7", True),
    ("subscriber25.isp.example", "198.51.100.25", True),
    ("subscriber25-static.isp.example", "198.51.100.9", True),
    ("2001-db8--1.pool.isp.example", "2001:db8::1", True),
    ("00000001.v6.isp.example", "2001:db8::1", True),
    ("mail.deadbeef00.example", "198.51.100.7", False),
    ("host49000207.example.test", "49.0.2.7", False),
    ("mail.dynamics.test", "198.51.100.1", False),
    ("smtp.cable-news.test", "198.51.100.1", False),
    ("mail.example.net", "198.51.100.7", False),
    ("mx1.mailhost.example", "198.51.100.7", False),
    ("mx1.example.test", "198.51.100.1", False),
    ("mobilemail.example.net", "198.51.100.7", False),
]


@pytest.mark.parametrize(("name", "ip", "generic"), TABLE)
def test_generic_ptr_table(name: str, ip: str, generic: bool) -> None:
    """Address digits or pool words in the host part are generic; the registrable domain is not judged."""
    address = ip_address(ip)
    assert looks_generic(name, address) is generic
    assert bool(generic_reasons(name, address)) is generic


@pytest.mark.parametrize(("name", "ip", "generic"), TABLE)
def test_checker_and_probe_agree(name: str, ip: str, generic: bool) -> None:
    """The checker's and the rDNS probe's verdicts are the shared rule's, row for row."""
    address = ip_address(ip)
    assert checker_rdns.looks_generic(name, address) is generic
    assert bool(probe_rdns.generic_reasons(name, address)) is generic


def test_host_part_drops_the_registrable_domain() -> None:
    """Only the labels left of the registrable domain are judged (public suffix list, offline)."""
    assert host_part("Mail.DeadBeef00.example.") == "mail"
    assert host_part("a.b.example.co.uk") == "a.b"
    assert host_part("example.net") == "example.net"

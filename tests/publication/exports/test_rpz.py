"""The RPZ export: owner names per the RPZ draft, and Unbound enforcing it for real."""

from __future__ import annotations

from datetime import UTC, datetime
from ipaddress import ip_network
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.zone
import pytest

from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.listings.model import AllowEntry, Listing
from reputable.publication.exports.rpz import RpzHeader, render, rpz_ip_owner
from tests.publication.exports.resolvers import nsd, unbound

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def listing(subject: str, cause: Cause = Cause.MALWARE_HOST) -> Listing:
    """Return an active listing of *subject*."""
    return Listing(
        subject=parse_subject(subject), cause=cause, reason="r", source="t", listed_at=T0
    )


def allow(subject: str) -> AllowEntry:
    """Return an allowlist entry for *subject*."""
    return AllowEntry(subject=parse_subject(subject), note="ok", source="t", created_at=T0)


@pytest.mark.parametrize(
    ("network", "owner"),
    [
        ("192.0.2.0/24", "24.0.2.0.192.rpz-ip"),
        ("198.51.100.7/32", "32.7.100.51.198.rpz-ip"),
        ("2001:db8::/48", "48.zz.db8.2001.rpz-ip"),
        ("2001:db8:0:0:1::/80", "80.zz.1.0.0.db8.2001.rpz-ip"),
        ("2001:db8::1:0:0:1/128", "128.1.0.0.1.zz.db8.2001.rpz-ip"),
    ],
)
def test_rpz_ip_owner_names(network: str, owner: str) -> None:
    """rpz-ip owners: prefix length, then octets (v4) or 16-bit groups with zz (v6) reversed."""
    assert rpz_ip_owner(ip_network(network)) == owner


def test_rpz_zone_parses_and_honours_the_allowlist() -> None:
    """The zone is valid master-file text; allowlisted names and hosts become passthru."""
    export = render(
        [listing("bad.example"), listing("192.0.2.0/24", Cause.SPAM), listing("ok.example")],
        [allow("fine.bad.example"), allow("192.0.2.9"), allow("ok.example")],
        header=RpzHeader(serial=42),
    )
    zone = dns.zone.from_text(export.text, origin="rpz.reputable.test.", relativize=False)
    names = {str(n) for n in zone.nodes}
    assert "bad.example.rpz.reputable.test." in names
    assert "*.bad.example.rpz.reputable.test." in names
    assert "ok.example.rpz.reputable.test." not in names  # allowlisted: never listed
    passthru = zone.find_rdataset("fine.bad.example.rpz.reputable.test.", "CNAME")
    assert str(passthru[0].target) == "rpz-passthru."
    assert zone.find_rdataset("32.9.2.0.192.rpz-ip.rpz.reputable.test.", "CNAME")
    assert (export.domains, export.networks, export.passthru) == (1, 1, 2)


def test_rpz_causes_filter() -> None:
    """Only listings of the wanted causes become triggers."""
    export = render(
        [listing("bad.example"), listing("192.0.2.1", Cause.SPAM)], [], causes={Cause.SPAM}
    )
    assert export.domains == 0
    assert export.networks == 1


def ask(port: int, name: str, rdtype: str = "A") -> dns.message.Message:
    """Ask the resolver on 127.0.0.1:*port* with recursion desired."""
    return dns.query.udp(dns.message.make_query(name, rdtype), "127.0.0.1", port=port, timeout=5)


@pytest.mark.slow
def test_unbound_enforces_the_rpz(tmp_path: Path) -> None:
    """Unbound loads the export: listed names and addresses NXDOMAIN, the rest real answers."""
    export = render(
        [listing("bad.example.test"), listing("198.51.100.64/26", Cause.SPAM)],
        [allow("ok.bad.example.test")],
    )
    rpz_file = tmp_path / "bl.rpz"
    rpz_file.write_text(export.text)
    with (
        nsd(tmp_path / "nsd") as upstream,
        unbound(tmp_path / "unbound", rpz_file, "rpz.reputable.test", upstream) as port,
    ):
        good = ask(port, "good.example.test")
        bad = ask(port, "bad.example.test")
        sub = ask(port, "www.bad.example.test")
        shady = ask(port, "shady.example.test")  # answer 198.51.100.66: an rpz-ip trigger
    assert good.rcode() == dns.rcode.NOERROR
    assert [r.address for r in good.answer[0]] == ["192.0.2.80"]
    assert bad.rcode() == dns.rcode.NXDOMAIN
    assert sub.rcode() == dns.rcode.NXDOMAIN
    assert shady.rcode() == dns.rcode.NXDOMAIN

"""The DNSBL responder, checked with dnspython as an independent DNS implementation."""

from __future__ import annotations

import functools
import struct
import tempfile
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
from hypothesis import given, settings
from hypothesis import strategies as st

from reputable.publication.dnsbl.wire import Responder, expand, expansion, txt_rdata

from .conftest import LONG_REASON, make_responder


@functools.cache
def fuzz_responder() -> Responder:
    """One responder for the Hypothesis tests (function-scoped fixtures do not mix with @given)."""
    return make_responder(Path(tempfile.mkdtemp()))


def ask(
    responder: Responder, name: str, rdtype: str = "A", *, tcp: bool = False, **kw: object
) -> dns.message.Message:
    """Send one query (EDNS 1232 unless *kw* says otherwise) through the responder and parse the reply."""
    kw.setdefault("use_edns", 0)
    kw.setdefault("payload", 1232)
    query = dns.message.make_query(name, rdtype, **kw)  # type: ignore[arg-type]
    wire = responder.respond(query.to_wire(), None if tcp else 512)
    assert wire is not None
    reply = dns.message.from_wire(wire)
    assert reply.id == query.id
    return reply


def a_values(reply: dns.message.Message) -> set[str]:
    """Return the A addresses in the answer section."""
    return {r.address for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A for r in rrset}


def txt_values(reply: dns.message.Message) -> list[str]:
    """Return the TXT strings (joined per record) in the answer section."""
    return [
        b"".join(r.strings).decode()
        for rrset in reply.answer
        if rrset.rdtype == dns.rdatatype.TXT
        for r in rrset
    ]


def test_listed_host_gets_all_matching_codes(responder: Responder) -> None:
    """A host listed for spam inside a compromised /24 answers both codes, authoritatively."""
    reply = ask(responder, "7.100.51.198.bl.reputable.test")
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.AA
    assert not reply.flags & dns.flags.RA
    assert a_values(reply) == {"127.0.0.2", "127.0.0.4"}
    assert reply.answer[0].ttl == 900


def test_txt_carries_reason_and_lookup_url(responder: Responder) -> None:
    """TXT is the reason plus the lookup URL with $ replaced by the address."""
    texts = txt_values(ask(responder, "7.100.51.198.bl.reputable.test", "TXT"))
    assert sorted(texts) == [
        "botnet segment http://127.0.0.1:8080/lookup/198.51.100.7",
        "spam trap hits http://127.0.0.1:8080/lookup/198.51.100.7",
    ]


def test_range_member(responder: Responder) -> None:
    """Any address of a listed /24 answers the range's code."""
    assert a_values(ask(responder, "200.100.51.198.bl.reputable.test")) == {"127.0.0.4"}


def test_allowlisted_address_inside_range(responder: Responder) -> None:
    """An allowlisted address inside a listed range is not listed, and is on the allowlist zone."""
    reply = ask(responder, "9.100.51.198.bl.reputable.test")
    assert reply.rcode() == dns.rcode.NXDOMAIN
    allow = ask(responder, "9.100.51.198.wl.reputable.test", "A")
    assert a_values(allow) == {"127.0.2.10"}
    assert txt_values(ask(responder, "9.100.51.198.wl.reputable.test", "TXT")) == ["partner MX"]


def test_nxdomain_has_soa(responder: Responder) -> None:
    """An unlisted address is NXDOMAIN with the zone's SOA in authority (negative caching)."""
    reply = ask(responder, "1.2.0.192.bl.reputable.test")
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.answer == []
    (soa,) = reply.authority
    assert soa.rdtype == dns.rdatatype.SOA
    assert soa.name == dns.name.from_text("bl.reputable.test")
    assert soa.ttl == 300 and soa[0].minimum == 300


def test_empty_non_terminal_is_nodata(responder: Responder) -> None:
    """Partial reversed names (QNAME minimisation) answer NOERROR with no data."""
    for name in (
        "100.51.198.bl.reputable.test",
        "198.bl.reputable.test",
        "8.b.d.0.1.0.0.2.bl.reputable.test",
    ):
        reply = ask(responder, name)
        assert reply.rcode() == dns.rcode.NOERROR, name
        assert reply.answer == [] and reply.authority[0].rdtype == dns.rdatatype.SOA


def test_domain_zone_and_subdomains(responder: Responder) -> None:
    """A listed domain answers 127.0.1.x, and so do its subdomains; its parent is an ENT."""
    assert a_values(ask(responder, "evil.example.dbl.reputable.test")) == {"127.0.1.7"}
    assert a_values(ask(responder, "www.evil.example.dbl.reputable.test")) == {"127.0.1.7"}
    assert ask(responder, "example.dbl.reputable.test").rcode() == dns.rcode.NOERROR
    assert ask(responder, "good.example2.dbl.reputable.test").rcode() == dns.rcode.NXDOMAIN


def test_rfc5782_test_points(responder: Responder) -> None:
    """127.0.0.2, ::FFFF:7F00:2 and TEST are listed; 127.0.0.1, ::FFFF:7F00:1 and INVALID are not."""
    mapped = ".".join(reversed("00000000000000000000ffff7f000002")) + ".bl.reputable.test"
    assert a_values(ask(responder, "2.0.0.127.bl.reputable.test")) == {"127.0.0.2"}
    assert a_values(ask(responder, mapped)) == {"127.0.0.2"}
    assert ask(responder, "test.dbl.reputable.test").rcode() == dns.rcode.NOERROR
    assert ask(responder, "1.0.0.127.bl.reputable.test").rcode() == dns.rcode.NXDOMAIN
    assert (
        ask(responder, mapped.replace("2.0.0.0.0.0.f.7", "1.0.0.0.0.0.f.7", 1)).rcode()
        == dns.rcode.NXDOMAIN
    )
    assert ask(responder, "invalid.dbl.reputable.test").rcode() == dns.rcode.NXDOMAIN


def test_ipv6_prefix_and_mapped_ipv4(responder: Responder) -> None:
    """IPv6 nibble queries match prefixes; IPv4-mapped queries match IPv4 listings."""
    v6 = ".".join(reversed("20010db8000100000000000000000005")) + ".bl.reputable.test"
    assert a_values(ask(responder, v6)) == {"127.0.0.10"}
    mapped = ".".join(reversed("00000000000000000000ffffc6336407")) + ".bl.reputable.test"
    assert a_values(ask(responder, mapped)) == {"127.0.0.2", "127.0.0.4"}
    assert txt_values(ask(responder, mapped, "TXT"))[0].endswith("/lookup/198.51.100.7")


def test_case_insensitive(responder: Responder) -> None:
    """Names match whatever their case, and the question is echoed as asked."""
    reply = ask(responder, "7.100.51.198.BL.Reputable.TEST")
    assert a_values(reply) == {"127.0.0.2", "127.0.0.4"}
    assert str(reply.question[0].name) == "7.100.51.198.BL.Reputable.TEST."


def test_refused_outside_zones(responder: Responder) -> None:
    """Names outside our zones are REFUSED with no recursion offered."""
    reply = ask(responder, "www.example.com")
    assert reply.rcode() == dns.rcode.REFUSED
    assert not reply.flags & dns.flags.RA and not reply.flags & dns.flags.AA


def test_apex_soa_and_ns(responder: Responder) -> None:
    """The apex answers SOA and NS; A at the apex is NODATA."""
    soa = ask(responder, "bl.reputable.test", "SOA")
    assert soa.answer[0].rdtype == dns.rdatatype.SOA
    ns = ask(responder, "bl.reputable.test", "NS")
    assert [str(r.target) for r in ns.answer[0]] == ["ns1.reputable.test."]
    nodata = ask(responder, "bl.reputable.test", "A")
    assert nodata.rcode() == dns.rcode.NOERROR and nodata.answer == []


def test_other_types_on_listed_names_are_nodata(responder: Responder) -> None:
    """AAAA on a listed name is NOERROR/NODATA with SOA."""
    reply = ask(responder, "7.100.51.198.bl.reputable.test", "AAAA")
    assert reply.rcode() == dns.rcode.NOERROR and reply.answer == []
    assert reply.authority[0].rdtype == dns.rdatatype.SOA


def test_long_txt_is_split(responder: Responder) -> None:
    """A TXT over 255 bytes is split into several character-strings of one record."""
    reply = ask(responder, "9.113.0.203.bl.reputable.test", "TXT", use_edns=0)
    (rrset,) = reply.answer
    (record,) = rrset
    assert len(record.strings) == 2 and len(record.strings[0]) == 255
    assert b"".join(record.strings).decode().startswith(LONG_REASON)


def test_truncation_over_udp_and_full_over_tcp(responder: Responder) -> None:
    """Without EDNS a reply over 512 bytes is truncated (TC) on UDP and complete on TCP."""
    name = "50.2.0.192.bl.reputable.test"
    udp = ask(responder, name, "TXT", use_edns=False)
    assert udp.flags & dns.flags.TC and udp.answer == []
    tcp = ask(responder, name, "TXT", tcp=True)
    assert not tcp.flags & dns.flags.TC and len(tcp.answer[0]) == 9


def test_edns_raises_the_udp_limit(responder: Responder) -> None:
    """With EDNS0 (payload 1232) the same reply fits in UDP and carries an OPT record."""
    reply = ask(responder, "50.2.0.192.bl.reputable.test", "TXT", use_edns=0, payload=1232)
    assert not reply.flags & dns.flags.TC
    assert reply.edns == 0 and reply.payload == 1232
    assert len(reply.answer[0]) == 9


def test_unknown_edns_version_is_badvers(responder: Responder) -> None:
    """RFC 6891: a query with EDNS version 1 gets BADVERS."""
    reply = ask(responder, "7.100.51.198.bl.reputable.test", use_edns=1)
    assert reply.rcode() == dns.rcode.BADVERS


def test_formerr_and_silence(responder: Responder) -> None:
    """Garbage with a header gets FORMERR; shorter junk and responses get no reply at all."""
    query = dns.message.make_query("7.100.51.198.bl.reputable.test", "A").to_wire()
    bad = query[:12] + b"\xff\xff"
    reply = dns.message.from_wire(responder.respond(bad, 512) or b"")
    assert reply.rcode() == dns.rcode.FORMERR and reply.id == struct.unpack(">H", query[:2])[0]
    assert responder.respond(b"\x01\x02", 512) is None
    response_bit = query[:2] + bytes([query[2] | 0x80]) + query[3:]
    assert responder.respond(response_bit, 512) is None


def test_zone_transfer_refused_and_other_opcodes(responder: Responder) -> None:
    """AXFR is refused; a NOTIFY/UPDATE opcode gets NOTIMP."""
    assert ask(responder, "bl.reputable.test", "AXFR", tcp=True).rcode() == dns.rcode.REFUSED
    query = dns.message.make_query("bl.reputable.test", "SOA")
    query.set_opcode(dns.opcode.UPDATE)
    reply = dns.message.from_wire(responder.respond(query.to_wire(), 512) or b"")
    assert reply.rcode() == dns.rcode.NOTIMP


def test_counters(responder: Responder) -> None:
    """Hits, misses and refusals are counted per zone."""
    before = list(responder.counters)
    ask(responder, "7.100.51.198.bl.reputable.test")
    ask(responder, "1.2.0.192.bl.reputable.test")
    ask(responder, "www.example.com")
    delta = [a - b for a, b in zip(responder.counters, before, strict=True)]
    assert delta[0] == 1 and delta[1] == 1  # bl: hit, miss
    assert delta[12 + 2] == 1  # outside every zone: refused


def test_expand_dollar_rules() -> None:
    """$ becomes the subject and $$ a literal dollar."""
    assert expand(b"see /$ for $$5", b"1.2.3.4") == b"see /1.2.3.4 for $5"
    assert txt_rdata(b"") == b"\0"


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600))
def test_never_crashes_on_junk(data: bytes) -> None:
    """Any datagram gets a well-formed reply or silence, never an exception."""
    reply = fuzz_responder().respond(data, 512)
    if reply is not None:
        assert len(reply) >= 12 and reply[2] & 0x80


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text(alphabet="0123456789abcdefxyz-", min_size=1, max_size=4), max_size=34),
    st.sampled_from(["A", "TXT", "ANY", "AAAA", "SOA", "NS", "MX"]),
)
def test_any_name_parses_back(labels: list[str], rdtype: str) -> None:
    """Every query name under the zone gets a reply dnspython parses, echoing the question."""
    name = ".".join([*labels, "bl.reputable.test"])
    reply = ask(fuzz_responder(), name, rdtype)
    assert reply.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)
    assert str(reply.question[0].name).rstrip(".") == name


def test_dollar_digit_stays_literal() -> None:
    """$1 is an rbldnsd data-file variable, left as is when undefined (not the subject)."""
    assert expand(b"see $1 and $", b"1.2.3.4") == b"see $1 and 1.2.3.4"


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(
        st.sampled_from([b"$", b"$$", b"$$$", b"$1", b"$$1", b"a", b" ", b"\xff"]), max_size=12
    ),
    st.sampled_from([b"1.2.3.4", b"", b"$", b"$$", b"2001:db8::1"]),
)
def test_expansion_pieces_join_as_expand(chunks: list[bytes], subject: bytes) -> None:
    """The pieces of a template, joined with any subject, are what expand() writes: the
    AXFR path finds them once per template (exports/zone.py)."""
    template = b"".join(chunks)
    assert subject.join(expansion(template)) == expand(template, subject)


def test_expansion_of_a_plain_template_is_itself() -> None:
    """No subject mark: one piece, the template with each $$ a dollar."""
    assert expansion(b"spam source") == (b"spam source",)
    assert expansion(b"pay $$5 or $1") == (b"pay $5 or $1",)
    assert expansion(b"spam source $") == (b"spam source ", b"")

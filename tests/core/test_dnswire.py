"""The hand-rolled A/TXT wire code agrees with dnspython and never crashes on junk."""

from __future__ import annotations

import contextlib

import dns.exception
import dns.message
import dns.rcode
import dns.rrset
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reputable.core import dnswire as wire
from reputable.core.dnsclient import records_of

LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=20)
NAMES = st.lists(LABEL, min_size=1, max_size=6).map(".".join)


@given(name=NAMES, qid=st.integers(0, 65535), txt=st.booleans())
def test_query_matches_dnspython(name: str, qid: int, txt: bool) -> None:
    """Our query bytes equal dnspython's for the same name, type and id."""
    rdtype = "TXT" if txt else "A"
    ours = wire.encode_query(qid, wire.encode_question(name, wire.FAST_TYPES[rdtype]))
    theirs = dns.message.make_query(name, rdtype, use_edns=False)
    theirs.id = qid
    assert ours == theirs.to_wire()


@given(
    name=NAMES,
    answers=st.lists(st.ip_addresses(v=4).map(str), max_size=4, unique=True),
    rcode=st.sampled_from([dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.REFUSED]),
)
def test_a_response_parses_like_dnspython(name: str, answers: list[str], rcode: int) -> None:
    """Records and rcode of a dnspython-built response come back unchanged."""
    question = wire.encode_question(name, wire.TYPE_A)
    query = dns.message.make_query(name, "A", use_edns=False)
    query.id = 4242
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    if answers:
        response.answer.append(dns.rrset.from_text_list(name + ".", 60, "IN", "A", answers))
    data = response.to_wire()
    got = wire.parse_response(data, 4242, question)
    assert got == (rcode, False, records_of(dns.message.from_wire(data), "A"))
    assert sorted(got[2]) == sorted(answers)


def test_txt_strings_are_joined_and_case_randomised_names_accepted() -> None:
    """Multi-string TXT records are joined; 0x20 mixed-case questions still match."""
    question = wire.encode_question("Example.Test", wire.TYPE_TXT)
    query = dns.message.make_query("eXaMpLe.tEsT", "TXT", use_edns=False)
    query.id = 7
    response = dns.message.make_response(query)
    response.answer.append(
        dns.rrset.from_text_list("eXaMpLe.tEsT.", 60, "IN", "TXT", ['"ab" "cd"'])
    )
    assert wire.parse_response(response.to_wire(), 7, question)[2] == ("abcd",)


def test_foreign_response_is_rejected() -> None:
    """A response with another id or question raises WireError."""
    question = wire.encode_question("a.test", wire.TYPE_A)
    query = dns.message.make_query("b.test", "A", use_edns=False)
    query.id = 1
    data = dns.message.make_response(query).to_wire()
    with pytest.raises(wire.WireError):
        wire.parse_response(data, 1, question)
    with pytest.raises(wire.WireError):
        wire.parse_response(data, 2, wire.encode_question("b.test", wire.TYPE_A))


@given(data=st.binary(max_size=80))
def test_junk_never_crashes(data: bytes) -> None:
    """Arbitrary bytes either parse or raise WireError, nothing else."""
    question = wire.encode_question("a.test", wire.TYPE_A)
    with contextlib.suppress(wire.WireError):
        wire.parse_response(b"\x00\x01" + data, 1, question)


def test_overlong_label_is_refused() -> None:
    """A label over 63 octets cannot be encoded."""
    with pytest.raises(wire.WireError, match="1-63"):
        wire.encode_question("a" * 64 + ".test", wire.TYPE_A)


@pytest.mark.parametrize("name", ["a..test", ".a.test", "a" * 64 + ".test"])
def test_empty_or_overlong_labels_are_refused_like_dnspython(name: str) -> None:
    """Names dnspython refuses for an empty or overlong label are refused here too."""
    with pytest.raises(dns.exception.DNSException):
        dns.message.make_query(name, "A")
    with pytest.raises(wire.WireError, match="1-63"):
        wire.encode_question(name, wire.TYPE_A)


@pytest.mark.parametrize("name", ["a.test.", "a.test", "A.Test"])
def test_trailing_dot_and_case_are_kept_as_dnspython_does(name: str) -> None:
    """A final dot changes nothing; letters keep their case on the wire."""
    theirs = dns.message.make_query(name, "TXT", use_edns=False)
    theirs.id = 9
    assert wire.encode_query(9, wire.encode_question(name, wire.TYPE_TXT)) == theirs.to_wire()

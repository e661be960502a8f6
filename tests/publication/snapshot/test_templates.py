"""A host listing whose reason names its address gets a ``$`` template: the same TXT in every
answer, the same reason back, and the same template from the column path as from the row path."""

from __future__ import annotations

from ipaddress import IPv4Address

from hypothesis import given
from hypothesis import strategies as st

from reputable.publication.dnsbl.wire import expand
from reputable.publication.lookup import reason_of
from reputable.publication.snapshot.build import (
    around,
    host_template,
    run_templates,
    txt_template,
)

URLS = ["", "http://127.0.0.1:8080/lookup/$", "see $$ http://x.test/?ip=$"]
addresses = st.integers(0, 2**32 - 1).map(lambda n: str(IPv4Address(n)))
#: Text around the address, rich in what the rule must get right: dollars, digits, dots,
#: spaces at the edges and the address itself again.
pieces = st.lists(
    st.sampled_from(["$", "$$", "1", "9", ".", " ", "spam source ", "x", "é", "\t"]), max_size=6
).map("".join)


@st.composite
def named_reasons(draw: st.DrawFn) -> tuple[str, str]:
    """(subject, reason) where the reason holds the subject once, twice or not at all."""
    subject = draw(addresses)
    before, middle, after = draw(pieces), draw(pieces), draw(pieces)
    shape = draw(st.sampled_from(["once", "twice", "none", "other"]))
    if shape == "once":
        return subject, f"{before}{subject}{after}"
    if shape == "twice":
        return subject, f"{before}{subject}{middle}{subject}{after}"
    if shape == "other":
        return subject, f"{before}{draw(addresses)}{after}"
    return subject, f"{before}{middle}{after}"


@given(named_reasons(), st.sampled_from(URLS))
def test_a_host_template_answers_the_txt_of_its_reason(pair: tuple[str, str], url: str) -> None:
    """DNS expands ``$`` to the queried address, the host's own: the TXT is the one its
    written-out reason gave, and the lookup's reason is the stored one."""
    subject, reason = pair
    new = host_template(subject, reason, url).encode()
    old = txt_template(reason, url).encode()
    assert expand(new, subject.encode()) == expand(old, subject.encode())
    assert reason_of(new, url, subject) == reason_of(old, url, subject)
    if url == "" and reason == reason.strip():
        assert reason_of(new, url, subject) == reason


def test_the_rule_keeps_dollars_and_digits_as_rbldnsd_reads_them() -> None:
    """No ``$`` beside the address, no digit after it (``$1`` is rbldnsd's variable): those
    reasons keep their own template."""
    assert around("192.0.2.1", "spam source 192.0.2.1") == ("spam source ", "")
    assert around("192.0.2.1", "seen 192.0.2.1, twice") == ("seen ", ", twice")
    assert around("192.0.2.1", "192.0.2.15") is None
    assert around("192.0.2.1", "cost $5 for 192.0.2.1") is None
    assert around("192.0.2.1", "192.0.2.1$") is None
    assert around("192.0.2.1", "no address here") is None
    assert host_template("192.0.2.1", "from 192.0.2.1", "http://l/$") == "from $ http://l/$"


@given(st.lists(named_reasons(), min_size=1, max_size=30), st.sampled_from(URLS), st.booleans())
def test_a_run_gets_the_templates_of_its_hosts(
    pairs: list[tuple[str, str]], url: str, one_form: bool
) -> None:
    """The column path's C-level passes give every host the row path's template."""
    if one_form:  # every reason names its host alike: one shared template
        pairs = [(s, f"spam source {s}, see log") for s, _ in pairs]
    subjects = [s for s, _ in pairs]
    reasons = [r for _, r in pairs]
    got = run_templates(subjects, reasons, url)
    expected = [host_template(s, r, url) for s, r in pairs]
    if isinstance(got, str):
        assert expected == [got] * len(pairs)
    else:
        assert list(got) == expected
    if one_form:
        assert got == f"spam source $, see log {url}".strip()

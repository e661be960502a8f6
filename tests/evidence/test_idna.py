"""Domains are IDNA2008 everywhere: faß.example stays faß.example (xn--fa-hia), never fass.example."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reputable.core.address import parse_domain
from reputable.core.errors import SubjectError
from reputable.evidence.parsers.jsonl import parse


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("faß.example", "xn--fa-hia.example"),
        ("FAß.Example.", "xn--fa-hia.example"),
        ("xn--fa-hia.example", "xn--fa-hia.example"),
        ("straße.de", "xn--strae-oqa.de"),
        ("bücher.example", "xn--bcher-kva.example"),
        # the final sigma is kept (IDNA2003 maps it to a medial sigma: xn--kxa6akbbkh)
        ("σίσυφος.example", "xn--kxa6ajbbmh.example"),
    ],
)
def test_non_transitional_idna2008(text: str, want: str) -> None:
    """Names are mapped by UTS #46 without the transitional step, then A-labels."""
    assert str(parse_domain(text)) == want


def test_idna2008_refuses_what_it_forbids() -> None:
    """A joiner outside its allowed context is refused with the name and the reason."""
    with pytest.raises(SubjectError, match="bad domain name"):
        parse_domain("a\u200db.example")


def test_evidence_json_lines_keep_the_eszett() -> None:
    """An evidence line about faß.example is about xn--fa-hia.example, not fass.example."""
    now = datetime(2026, 12, 1, tzinfo=UTC)
    items, errors = parse(['{"subject": "faß.example", "cause": "spam", "source": "t"}'], now=now)
    assert errors == []
    assert [str(e.subject) for e in items] == ["xn--fa-hia.example"]

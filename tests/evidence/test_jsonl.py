"""The JSON-lines evidence parser: good lines land, bad lines are reported, keys are stable."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv6Address, ip_address

from hypothesis import given, settings
from hypothesis import strategies as st

from reputable.core.address import Domain
from reputable.core.cause import Cause
from reputable.evidence.model import Evidence, evidence_key
from reputable.evidence.parsers import jsonl

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def line(**fields: object) -> str:
    """Return one JSON line with *fields*."""
    return json.dumps(fields)


def reference_key(item: Evidence) -> str:
    """The key as first defined: BLAKE2b-128 of one json.dumps of every field."""
    raw = json.dumps(
        [
            str(item.subject),
            item.cause.value,
            item.source,
            item.observed_at.timestamp(),
            item.weight,
            item.related_domain.name if item.related_domain else None,
            item.detail,
        ],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()


def test_good_lines_land_with_every_field() -> None:
    """A complete line gives one Evidence with subject, cause, time, weight, domain and detail."""
    good, bad = jsonl.parse(
        [
            line(
                subject="198.51.100.7",
                cause="spam",
                source="traps",
                at="2026-11-29T07:00:00Z",
                weight=2,
                domain="Shop.Example.",
                detail={"trap": "t1@example.net"},
            ),
            line(subject="2001:db8::1", cause="COMPROMISED", source="sshd"),
            line(subject="evil.example", cause="malware_host", source="urlfeed"),
        ],
        now=NOW,
    )
    assert bad == []
    first, second, third = good
    assert first.subject == IPv4Address("198.51.100.7") and first.cause is Cause.SPAM
    assert first.observed_at == NOW - timedelta(hours=1)
    assert first.weight == 2.0 and isinstance(first.weight, float)
    assert (
        first.related_domain == Domain("shop.example") and first.target == "198.51.100.7"
    )  # sending spam belongs to the IP (issue 18)
    assert first.detail == {"trap": "t1@example.net"}
    assert second.subject == IPv6Address("2001:db8::1") and second.cause is Cause.COMPROMISED
    assert second.observed_at == NOW and second.weight == 1.0 and second.target == "2001:db8::/64"
    assert third.subject == Domain("evil.example") and third.target == "evil.example"


def test_blank_and_comment_lines_are_skipped() -> None:
    """Blank lines and lines starting with # are neither evidence nor errors."""
    good, bad = jsonl.parse(
        ["", "   \n", "# a comment", line(subject="192.0.2.1", cause="spam", source="t")], now=NOW
    )
    assert len(good) == 1 and bad == []


def test_bad_lines_are_reported_by_number_and_good_ones_still_land() -> None:
    """Every bad line is reported with its line number and why; the good lines are kept."""
    lines = [
        line(subject="192.0.2.1", cause="spam", source="t"),  # 1 good
        "{not json",  # 2
        "[1, 2]",  # 3
        line(subject="192.0.2.1", cause="spam"),  # 4 no source
        line(subject="192.0.2.1", cause="nonsense", source="t"),  # 5
        line(subject="192.0.2.999", cause="spam", source="t"),  # 6
        line(subject="192.0.2.1", cause="spam", source="t", weight=0),  # 7
        line(subject="192.0.2.1", cause="spam", source="t", at="yesterday"),  # 8
        line(subject="192.0.2.1", cause="spam", source="t", colour="red"),  # 9
        line(subject="192.0.2.1", cause="spam", source="t", detail=[1]),  # 10
        line(subject="192.0.2.1", cause="spam", source="t", id=""),  # 11
        line(subject="192.0.2.1", cause="spam", source="t", domain="bad..example"),  # 12
        '{"subject": "192.0.2.1"} trailing',  # 13
        line(subject="192.0.2.2", cause="spam", source="t"),  # 14 good
    ]
    good, bad = jsonl.parse(lines, now=NOW)
    assert [str(e.subject) for e in good] == ["192.0.2.1", "192.0.2.2"]
    messages = {e.lineno: e.message for e in bad}
    assert sorted(messages) == list(range(2, 14))
    assert messages[2].startswith("bad JSON: ")
    assert messages[3] == "line is not a JSON object"
    assert "missing required field 'source'" in messages[4]
    assert "unknown cause 'nonsense'" in messages[5]
    assert "192.0.2.999" in messages[6]
    assert "weight must be" in messages[7]
    assert "bad time" in messages[8]
    assert "unknown field(s) ['colour']" in messages[9]
    assert messages[10] == "detail must be a JSON object"
    assert messages[11] == "id must be a non-empty string"
    assert "bad domain name" in messages[12]
    assert messages[13].startswith("bad JSON: Extra data")


def test_bad_json_message_matches_json_loads() -> None:
    """A JSON syntax error is reported with json's own message and column."""
    text = '{"subject": "192.0.2.1", "cause": spam}'
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        expected = f"bad JSON: {exc.msg} at column {exc.colno}"
    _, bad = jsonl.parse([text], now=NOW)
    assert [e.message for e in bad] == [expected]


def test_same_fact_same_key_and_explicit_ids() -> None:
    """The same line always gives the same key, another time another key, an id its own key."""
    a = line(subject="198.51.100.7", cause="spam", source="traps", at="2026-11-29T07:00:00Z")
    b = line(subject="198.51.100.7", cause="spam", source="traps", at="2026-11-29T07:00:01Z")
    c = line(subject="198.51.100.7", cause="spam", source="traps", id="trap-4711")
    (first, second, other, with_id), _ = jsonl.parse([a, a, b, c], now=NOW)
    assert first.key == second.key != other.key
    assert with_id.key == "id:traps:trap-4711"


def test_keys_are_the_ones_earlier_releases_stored() -> None:
    """Keys stay byte-for-byte what earlier releases computed, so re-imports still count once."""
    first = Evidence(
        subject=ip_address("198.51.100.7"),
        cause=Cause.SPAM,
        source="traps",
        observed_at=NOW,
        detail={"trap": "t1@example.net", "n": [1, 2.5, None]},
    )
    second = Evidence(
        subject=ip_address("2001:db8::1"),
        cause=Cause.MALWARE_HOST,
        source='urlfeed "x" é',
        observed_at=NOW.replace(microsecond=123456),
        weight=2.5,
        related_domain=Domain("shop.example"),
    )
    assert first.key == "802d16cac31b9dd9177ddb3573177491"
    assert second.key == "7ed47559f595148aebbbbb67d4fc2a73"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    subject=st.sampled_from(["192.0.2.1", "2001:db8::7", "mail.example", "::ffff:192.0.2.9"]),
    cause=st.sampled_from(list(Cause)),
    source=st.text(max_size=12),
    seconds=st.floats(min_value=-1e9, max_value=4e9, allow_nan=False),
    weight=st.one_of(st.floats(min_value=1e-3, max_value=1000), st.integers(1, 1000)),
    domain=st.none() | st.sampled_from(["a.example", "xn--bcher-kva.example"]),
    detail=st.dictionaries(st.text(max_size=6), _json, max_size=4),
)
def test_property_key_matches_reference_definition(
    subject: str,
    cause: Cause,
    source: str,
    seconds: float,
    weight: float,
    domain: str | None,
    detail: dict[str, object],
) -> None:
    """For any fields, the key equals the one-json.dumps reference definition."""
    item = Evidence(
        subject=Domain(subject) if "." in subject and subject[0].isalpha() else ip_address(subject),
        cause=cause,
        source=source,
        observed_at=datetime.fromtimestamp(seconds, UTC),
        weight=weight,
        related_domain=Domain(domain) if domain else None,
        detail=detail,
    )
    assert item.key == evidence_key(item) == reference_key(item)


_junk_line = st.one_of(
    st.text(max_size=40),
    _json.map(json.dumps),
    st.dictionaries(
        st.sampled_from(
            ["subject", "cause", "source", "at", "weight", "domain", "detail", "id", "x"]
        ),
        _json | st.sampled_from(["192.0.2.1", "spam", "2026-11-29T08:00:00Z", "a.example", "::1"]),
        max_size=8,
    ).map(json.dumps),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_junk_line, max_size=12))
def test_property_junk_never_crashes(lines: list[str]) -> None:
    """Any lines give evidence or a numbered error each, and never an exception."""
    good, bad = jsonl.parse(lines, now=NOW)
    counted = [
        n for n, text in enumerate(lines, 1) if text.strip() and not text.strip().startswith("#")
    ]
    assert len(good) + len(bad) == len(counted)
    assert all(e.lineno in counted and e.message for e in bad)
    assert all(isinstance(e, Evidence) and e.key for e in good)

"""The batch lookup's shortcuts give the same documents and bytes as the general path."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest
from fastapi.responses import JSONResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from reputable.config import Config
from reputable.publication.lookup import Zones, lookup_address
from reputable.publication.snapshot.view import Snapshot
from reputable.web.deps import FastJSON, ipv4_json, lookup_json
from reputable.web.routes.lookup import quick_ipv4_int
from tests.policyd.test_fast import _build


@pytest.fixture(scope="module")
def rich(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, Snapshot]:
    """Overlapping listings, several causes per address, allowlisted addresses."""
    return _build(Path(tmp_path_factory.mktemp("fastjson")))


@given(
    value=st.one_of(
        st.integers(0xC0000200, 0xC00002FF),  # 192.0.2.0/24: hosts, a /28, an allowlisted host
        st.integers(0xC6336400, 0xC63364FF),  # 198.51.100.0/24 with a host and an allow entry
        st.integers(0, 2**32 - 1),
    ),
    score=st.tuples(st.integers(0, 100), st.sampled_from(["unknown", "good", "bad"])),
)
@settings(max_examples=400, deadline=None)
def test_ipv4_json_is_the_lookup_document(
    rich: tuple[Config, Snapshot], value: int, score: tuple[int, str]
) -> None:
    """Listed, allowlisted or neither: the shortcut's document equals lookup_json's."""
    config, snapshot = rich
    zones = Zones.of(config)
    text = str(IPv4Address(value))
    expected = lookup_json(lookup_address(snapshot, IPv4Address(value), zones, text), score)
    assert ipv4_json(snapshot, value, text, zones, score) == expected


def test_shortcut_covers_listed_and_unlisted(rich: tuple[Config, Snapshot]) -> None:
    """The fixture has both kinds, so the property above exercises both branches."""
    config, snapshot = rich
    zones = Zones.of(config)
    listed = ipv4_json(snapshot, int(IPv4Address("192.0.2.66")), "192.0.2.66", zones, (0, "bad"))
    assert listed["listed"] and len(listed["listings"]) == 2
    allowed = ipv4_json(snapshot, int(IPv4Address("192.0.2.5")), "192.0.2.5", zones, (0, "bad"))
    assert allowed["allowlisted"] and not allowed["listed"]  # the allowlist carves it out
    clean = ipv4_json(snapshot, int(IPv4Address("203.0.113.1")), "203.0.113.1", zones, (50, "x"))
    assert not clean["listed"] and not clean["allowlisted"]


@given(
    doc=st.recursive(
        st.none() | st.booleans() | st.integers(-(2**62), 2**62) | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=20,
    )
)
@settings(max_examples=300, deadline=None)
def test_fast_json_writes_what_starlette_writes(doc: object) -> None:
    """Unicode, escapes, nesting: the Rust serialiser's bytes equal Starlette's json.dumps."""
    assert FastJSON(doc).body == JSONResponse(doc).body


def test_quick_ipv4_int_takes_only_plain_dotted_quads() -> None:
    """inet_pton's strictness: what it refuses goes through the full subject parser."""
    assert quick_ipv4_int("192.0.2.1") == 0xC0000201
    for text in ("01.2.3.4", "1.2.3", "1.2.3.4 ", "::1", "1.2.3.4\x00", "example.org", ""):
        assert quick_ipv4_int(text) is None

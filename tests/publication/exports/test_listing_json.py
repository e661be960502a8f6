"""Streamed JSON of listings: the same text as json.dumps of the whole list, flat memory."""

from __future__ import annotations

import io
import json
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from reputable.cli.listing import listing_json
from reputable.config import DEFAULT_TOML, parse_config
from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.listings.model import Batch, Listing
from reputable.publication.exports.listing_json import (
    record_json,
    write_json_array,
    write_listing_records,
)
from reputable.store.dsn import open_dsn

CONFIG = parse_config(DEFAULT_TOML)
JSONABLE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(JSONABLE, max_size=6))
def test_the_text_is_json_dumps_of_the_list(items: list[object]) -> None:
    out = io.StringIO()
    assert write_json_array(out, iter(items)) == len(items)
    assert out.getvalue() == json.dumps(items, indent=2, ensure_ascii=False) + "\n"


def test_rows_from_the_store_match_the_listing_shape(tmp_path: Path, store_dsn: str) -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    listings = (
        Listing(
            subject=parse_subject("192.0.2.1"),
            cause=Cause.SPAM,
            reason="trap",
            source="cli",
            listed_at=now,
        ),
        Listing(
            subject=parse_subject("evil.example"),
            cause=Cause.SPAM,
            reason="phish",
            source="cli",
            listed_at=now,
            expires_at=now + timedelta(days=1),
        ),
    )
    store = open_dsn(store_dsn)
    try:
        store.apply(Batch(listings=listings), actor="t", action="list")
        rows = [r for batch in store.iter_listings(active_at=now, batch=1) for r in batch]
    finally:
        store.close()
    zones = (CONFIG.ip_zone.name, CONFIG.domain_zone.name)
    got = [record_json(r, CONFIG.ip_zone.codes, CONFIG.domain_zone.codes, zones) for r in rows]
    # The same shape, field for field, as `list show --json` builds for a Listing object
    # (the unified vocabulary of docs/cli.md: since/until plus the older names).
    assert got == [listing_json(CONFIG, item) for item in listings]
    assert got[0]["since"] == got[0]["listed_at"] == "2026-01-02T00:00:00Z"
    assert got[1]["zone"] == CONFIG.domain_zone.name
    assert got[1]["until"] == "2026-01-03T00:00:00Z"
    fast, generic = io.StringIO(), io.StringIO()
    write_listing_records(
        fast, [rows[:1], rows[1:]], CONFIG.ip_zone.codes, CONFIG.domain_zone.codes, zones
    )
    write_json_array(generic, got)
    assert fast.getvalue() == generic.getvalue()
    empty = io.StringIO()
    write_listing_records(empty, [], CONFIG.ip_zone.codes, CONFIG.domain_zone.codes)
    assert empty.getvalue() == "[]\n"


REASONS = st.text(st.characters(codec="utf-8"), max_size=20)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(REASONS, REASONS, st.none() | st.floats(0, 4e9)), max_size=5))
def test_fast_rows_text_is_the_generic_text(items: list[tuple[str, str, float | None]]) -> None:
    rows = [
        (f"192.0.2.{i}", 4, "spam", reason, source, 1.5e9 + i, until)
        for i, (reason, source, until) in enumerate(items)
    ]
    ip, dom = CONFIG.ip_zone.codes, CONFIG.domain_zone.codes
    fast, generic = io.StringIO(), io.StringIO()
    write_listing_records(fast, [rows], ip, dom)
    write_json_array(generic, (record_json(r, ip, dom) for r in rows))
    assert fast.getvalue() == generic.getvalue()


def test_memory_stays_flat() -> None:
    def items() -> Iterator[dict[str, object]]:
        for i in range(100_000):
            yield {"subject": f"10.0.{i >> 8 & 255}.{i & 255}", "n": i}

    class Sink(io.TextIOBase):
        written = 0

        def write(self, text: str) -> int:
            self.written += len(text)
            return len(text)

    sink = Sink()
    tracemalloc.start()
    write_json_array(sink, items())  # type: ignore[arg-type]  # a TextIO for the writer
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert sink.written > 4_000_000
    assert peak < 2_000_000, f"peak {peak} bytes"  # the list itself would be ~30 MB

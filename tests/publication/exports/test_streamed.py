"""Streamed enforcement exports: the same text as the in-memory path, in flat memory."""

from __future__ import annotations

import random
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.listings.model import AllowEntry, Batch, Listing
from reputable.publication.sinks import KINDS, Sink, render, stream, write_atomic_stream
from reputable.store.sqlite import SQLiteStore, SQLStore

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _batch(seed: int, hosts: int) -> Batch:
    """Hosts, overlapping ranges, IPv6, domains, several causes, expired and allowlisted ones."""
    rnd = random.Random(seed)
    subjects: list[str] = []
    for _ in range(hosts):
        subjects.append(f"10.{rnd.randrange(4)}.{rnd.randrange(256)}.{rnd.randrange(256)}")
    subjects += ["10.1.0.0/16", "10.1.2.0/24", "10.3.0.0/24", "127.0.0.0/8", "198.51.100.7"]
    subjects += ["2001:db8::/32", "2001:db8::5", "2001:db8:1::/48", "::ffff:127.0.0.0/104"]
    subjects += ["evil.example", "a.evil.example", "bad.test", "z.bad.test", "ok.example"]
    listings = [
        Listing(
            subject=parse_subject(text),
            cause=rnd.choice([Cause.SPAM, Cause.COMPROMISED, Cause.MANUAL]),
            reason="r",
            source=f"s{index % 3}",
            listed_at=NOW - timedelta(days=1),
            expires_at=rnd.choice([None, NOW + timedelta(days=1), NOW - timedelta(hours=1)]),
        )
        for index, text in enumerate(subjects + subjects[: len(subjects) // 4])
    ]
    allows = [
        AllowEntry(subject=parse_subject(text), note="", source="op", created_at=NOW)
        for text in ("10.1.2.128/25", "10.0.0.0/24", "2001:db8::5", "a.evil.example", "ok.example")
    ]
    return Batch(listings=tuple(listings), allows=tuple(allows))


SINKS = [
    Sink(kind="nftables", path=Path("-")),
    Sink(kind="ipset", path=Path("-")),
    Sink(kind="rpz", path=Path("-")),
    Sink(kind="rpz", path=Path("-"), causes=frozenset({Cause.SPAM})),
    Sink(kind="nftables", path=Path("-"), causes=frozenset({Cause.COMPROMISED, Cause.MANUAL})),
]


@pytest.mark.parametrize("sink", SINKS, ids=lambda s: f"{s.kind}-{len(s.causes or ())}")
def test_streamed_text_equals_rendered(any_store: SQLStore, sink: Sink) -> None:
    """Each export streamed from the store's sorted cursors equals `render` of all rows."""
    any_store.apply(_batch(7, 600), actor="test", action="import")
    expected = render(
        sink,
        list(any_store.listing_rows(active_at=NOW)),
        list(any_store.allow_rows(active_at=NOW)),
        serial=any_store.serial(),
    )
    assert "".join(stream(sink, any_store, NOW)) == expected
    assert sink.kind in KINDS


def _peak(store: SQLiteStore, sink: Sink, out: Path) -> int:
    tracemalloc.start()
    try:
        write_atomic_stream(out, stream(sink, store, NOW))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("kind", KINDS)
def test_streamed_memory_stays_flat(tmp_path: Path, kind: str) -> None:
    """Ten times the listings does not raise the export's peak Python memory much."""
    store = SQLiteStore(tmp_path / "s.db")
    try:
        peaks = []
        total = 0
        for size in (5_000, 50_000):
            rnd = random.Random(size)
            rows = [
                (f"{rnd.randrange(1, 224)}.{rnd.randrange(256)}.{rnd.randrange(256)}.{i % 256}",)
                for i in range(size - total)
            ]
            store._db.execute("BEGIN")
            store._db.executemany(
                "INSERT OR IGNORE INTO listings (subject, family, cause, reason, source,"
                " listed_at, expires_at) VALUES (?, 4, 'spam', 'r', 'bench', 1.0, NULL)",
                rows,
            )
            store._db.execute("COMMIT")
            total = size
            peaks.append(_peak(store, Sink(kind=kind, path=Path("-")), tmp_path / "out"))
        assert (tmp_path / "out").stat().st_size > 100_000
        assert peaks[1] < peaks[0] * 2 + 256 * 1024, peaks  # not ten times
    finally:
        store.close()


def test_failed_stream_keeps_the_old_file(tmp_path: Path) -> None:
    """An error part way through a streamed write leaves the previous file in place."""
    target = tmp_path / "bl.nft"
    target.write_text("old\n")

    def pieces() -> object:
        yield "new "
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        write_atomic_stream(target, pieces())  # type: ignore[arg-type]
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["bl.nft"]

"""The snapshot build's chunked read (``SQLiteStore.listing_chunks``) is ``listing_rows`` in the
same order, and the snapshot built from it is byte-identical to the one built from the rows."""

from __future__ import annotations

import random
import sys
import threading
from array import array
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reputable.config import DEFAULT_TOML, parse_config
from reputable.core.errors import StoreError
from reputable.publication.snapshot import build as build_module
from reputable.publication.snapshot import publish as publish_module
from reputable.publication.snapshot.publish import _listings
from reputable.store import sqlite as sqlite_module
from reputable.store.bulk import load_listings
from reputable.store.sqlite import NamedReasons, SQLStore

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _ip(value: int) -> str:
    return ".".join(str(value >> s & 255) for s in (24, 16, 8, 0))


def _fill(store: SQLStore, seed: int) -> None:
    """Windows of plain hosts (one TXT, per-host TXT, a second cause on the same hosts) and
    mixed ones: ranges, IPv6, domains, expired and expiring rows, id gaps, allowlist."""
    rnd = random.Random(seed)
    cut = NOW.timestamp()
    bulk = [
        (_ip(rnd.getrandbits(32)), 4, "spam", "trap", "bulk", cut - 9, None) for _ in range(700)
    ]
    own = [(s, 4, "malware_host", f"bad {s} $", "own", cut - 8, None) for s, *_ in bulk[:300]]
    again = [(s, 4, "harvest", "again", "again", cut - 7, None) for s, *_ in bulk[::3]]
    # rbldnsd's `$` written out by the import: one shared template when every reason of a
    # window names its subject alike, one per form when the forms differ.
    named = [(s, 4, "compromised", f"spam source {s}", "named", cut - 6, None) for s, *_ in bulk]
    forms = ["{s}", "at {s}9", "{s} {s}", "${s}", "{s}.", "x {s} y", "{s}$", "1{s}"]
    odd = [
        (s, 4, "open_proxy", rnd.choice(forms).format(s=s), "odd", cut - 5, None)
        for s, *_ in bulk[::2]
    ]
    mixed: list[tuple[str, int, str, str, str, float, float | None]] = []
    for index in range(400):
        subject, family = _ip(0x0A000000 + rnd.randrange(1 << 12)), 4
        kind = index % 5
        if kind == 1:
            plen = rnd.choice([20, 24, 28])
            subject = (
                f"{_ip(0x0A000000 + rnd.randrange(1 << 12) >> (32 - plen) << (32 - plen))}/{plen}"
            )
        elif kind == 2:
            subject, family = f"2001:db8::{rnd.randrange(1 << 16):x}", 6
        elif kind == 3:
            subject, family = f"d{rnd.randrange(50)}.evil.example", 0
        expires = rnd.choice([None, cut + 1000 + rnd.random(), cut - 1])
        mixed.append((subject, family, "spam", "mixed $", "mixed", cut - rnd.random(), expires))
    # Each names its host at the same place, but some say more after it: not one template.
    suffixed = [
        (s, 4, "rdns", f"seen {s}" if i % 5 else f"seen {s} again", "sfx", cut - 4, None)
        for i, (s, *_) in enumerate(bulk[:300])
    ]
    # An rbldnsd file's ranges among its hosts, with the pieces a `!` line cut a range into
    # (one a host whose reason names the range), another cause's row and a domain: windows
    # of hosts with a few other rows among them (some windows start with a range).
    among: list[tuple[str, int, str, str, str, float, float | None]] = []
    for index, (subject, *_) in enumerate(bulk[:600]):
        among.append((subject, 4, "spam", f"from {subject}", "among", cut - 3, None))
        net = subject.rpartition(".")[0]
        if index % 20 == 0:
            among.append((f"{net}.0/24", 4, "spam", f"from {net}.0/24", "among", cut - 3, None))
        elif index % 60 == 10:
            pieces = [f"{net}.0/31", f"{net}.3", f"{net}.4/30", f"{net}.8/29"]
            among += [(p, 4, "spam", f"from {net}.0/24", "among", cut - 3, None) for p in pieces]
        elif index % 31 == 7:
            among.append((subject, 4, "manual", "op", "among", cut - 3, None))
            among.append((f"h{index}.evil.example", 0, "spam", "x", "among", cut - 3, None))
    # The same with one reason for all that names no host (the shared rule, not the named one).
    shared = [(s, 4, "rdns", "generic", "shared", cut - 2, None) for s, *_ in bulk[:600]]
    shared[40::40] = [(f"{s.rpartition('.')[0]}.0/24", *rest) for s, *rest in shared[40::40]]
    for rows in (bulk, own, again, named, suffixed, odd, among, shared, mixed):  # sfx after named
        load_listings(store, rows, actor="t", action="import")
    # A gap of ids inside the bulk windows.
    store._db.execute("DELETE FROM listings WHERE id % 97 = 5")
    store._db.execute(
        "INSERT INTO allow (subject, family, note, source, created_at, expires_at)"
        " VALUES ('10.0.0.0/22', 4, 'ok', 't', 1.0, NULL), (?, 4, 'ok', 't', 1.0, NULL)",
        (bulk[5][0],),
    )


def _flat(sections: dict[str, Any]) -> dict[str, bytes]:
    return {k: v.tobytes() if isinstance(v, array) else bytes(v) for k, v in sections.items()}


def _rows_of(chunks: Any) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for chunk in chunks:
        if isinstance(chunk, tuple):
            subjects, cause, reasons, listed_at, others = chunk
            if isinstance(reasons, NamedReasons):
                reasons = [f"{reasons.before}{s}{reasons.after}" for s in subjects]
            hosts = [
                (s, 4, cause, r, listed_at, None) for s, r in zip(subjects, reasons, strict=True)
            ]
            for place, row in others:
                assert subjects[place] == row[0]
                hosts[place] = row
            rows.extend(hosts)
        else:
            rows.extend(chunk)
    return rows


@pytest.mark.parametrize("seed", [1, 2])
def test_chunked_build_equals_row_build(
    any_store: SQLStore, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Byte-identical sections and header from the chunks as from ``listing_rows``."""
    monkeypatch.setattr(sqlite_module, "WINDOW", 64)  # many windows from a small store
    _fill(any_store, seed)
    config = parse_config(DEFAULT_TOML, Path("/nonexistent/reputable.toml"))
    zones = {
        "ip_zone": config.ip_zone,
        "domain_zone": config.domain_zone,
        "allow_zone": config.allow_zone,
    }
    allows = list(any_store.allow_rows(active_at=NOW))
    rows = list(any_store.listing_rows(active_at=NOW))
    chunked = build_module.build(_listings(any_store, NOW), allows, serial=1, now=NOW, **zones)
    plain = build_module.build(rows, allows, serial=1, now=NOW, **zones)
    assert chunked.header == plain.header
    assert _flat(chunked.sections) == _flat(plain.sections)
    if hasattr(any_store, "listing_chunks"):
        chunks = list(any_store.listing_chunks(active_at=NOW, around=build_module.around))
        assert _rows_of(chunks) == rows  # the same rows in the same order
        assert sum(isinstance(c, tuple) for c in chunks) >= 10  # hosts came as columns
        named = [c for c in chunks if isinstance(c, tuple) and isinstance(c[2], NamedReasons)]
        assert len(named) >= 3  # windows of hosts named by their reasons: no reason read
        assert _rows_of(any_store.listing_chunks(active_at=NOW)) == rows  # without `around`
        assert sum(isinstance(c, list) for c in chunks) >= 2  # mixed windows as rows
        among = [c for c in chunks if isinstance(c, tuple) and c[4]]
        assert len(among) >= 5  # hosts with ranges among them: the others alone as rows
        assert any(any("/" in row[0] for _, row in c[4]) for c in among)
        assert any(any(row[0] == c[0][0] for _, row in c[4]) for c in among)  # a first range
        assert any(isinstance(c[2], list) for c in among)  # and under one shared reason
        assert not any_store._sqlite.in_transaction  # the read ended


def test_read_ahead_stopped_early_ends_the_read(
    any_store: SQLStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build that stops after one chunk stops the reader thread, which ends its read
    transaction, and the switch interval it lowered is back."""
    if not hasattr(any_store, "listing_chunks"):
        pytest.skip("only the SQLite store reads in chunks")
    monkeypatch.setattr(sqlite_module, "WINDOW", 64)
    monkeypatch.setattr(publish_module, "READ_AHEAD", 1)  # the reader blocks on a full queue
    _fill(any_store, 3)
    interval = sys.getswitchinterval()
    chunks = iter(_listings(any_store, NOW).chunks)
    next(chunks)
    assert sys.getswitchinterval() < interval
    assert any_store._sqlite.in_transaction  # the reader is inside its read
    chunks.close()  # type: ignore[attr-defined]
    assert not any_store._sqlite.in_transaction
    assert sys.getswitchinterval() == interval
    assert not [t for t in threading.enumerate() if t.name == "snapshot-read"]


def test_read_ahead_raises_the_readers_error() -> None:
    """An error in the reader thread is raised in the consumer, after the chunks before it."""

    def chunks() -> Iterator[Any]:
        yield [("192.0.2.1", 4, "spam", "x", 1.0, None)]
        raise StoreError("the disk went away")

    got = publish_module._read_ahead(chunks())
    assert len(next(got)) == 1
    with pytest.raises(StoreError, match="disk went away"):
        next(got)

"""The streamed rbldnsd import (`Stream` + `load_listings`): the same rows as `parse`, flat memory."""

from __future__ import annotations

import sqlite3
import tracemalloc
from collections.abc import Iterator
from ipaddress import IPv4Address, summarize_address_range
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reputable.core.address import Domain, IPNetwork
from reputable.core.errors import DataFileError
from reputable.listings.imports.rbldnsd import (
    BLOCK,
    RUN,
    Row,
    Stream,
    _Holes,
    exclusions,
    parse,
    row_of,
)
from reputable.store import bulk
from reputable.store.bulk import load_listings
from reputable.store.dsn import open_dsn
from reputable.store.sqlite import SQLiteStore
from tests.listings.test_rbldnsd_import import SAMPLES, spec


def streamed(text: str, path: str = "f.ip4set", **changes: object) -> tuple[list[Row], Stream]:
    """Return the rows of *text* as `Stream` yields them, and the stream (count, notes, ttl)."""
    the_spec = spec(path, **changes)
    lines = text.splitlines(keepends=True)
    rows = Stream(lines, the_spec, excluded=exclusions(lines, the_spec))
    return list(rows), rows


def parsed(text: str, path: str = "f.ip4set", **changes: object) -> list[Row]:
    """Return the rows of *text* as `parse` gives them."""
    return [row_of(x) for x in parse(text, spec(path, **changes)).batch.listings]


@pytest.mark.parametrize("name", ["mixed.ip4set", "mixed.ip6trie", "mixed.dnset"])
def test_samples_stream_as_parse(name: str) -> None:
    text = (SAMPLES / name).read_text(encoding="utf-8")
    domain = name.endswith("dnset")
    rows, stream = streamed(text, name, domain=domain)
    whole = parse(text, spec(name, domain=domain))
    assert sorted(rows) == sorted(row_of(x) for x in whole.batch.listings)
    assert rows, "the samples list something"
    assert stream.count == len(rows)
    assert stream.ttl == whole.ttl
    assert stream.notes == list(whole.notes)


def test_bare_hosts_take_the_default_reason_and_exclusions_after_them_cut() -> None:
    text = "192.0.2.1\n192.0.2.2\n198.51.100.0/30\n!198.51.100.1\n!192.0.2.2\n"
    rows, _ = streamed(text)
    subjects = sorted(r[0] for r in rows)
    assert subjects == ["192.0.2.1", "198.51.100.0", "198.51.100.2/31"]
    assert {r[3] for r in rows} == {"listed for spam"}
    assert sorted(rows) == sorted(parsed(text))


def test_a_bad_line_names_file_and_line_when_reached() -> None:
    rows = Stream(["192.0.2.1\n", "192.0.2.300\n"], spec("bad.ip4set"))
    with pytest.raises(DataFileError, match=r"bad\.ip4set:2"):
        list(rows)
    # 127.0.0.1 never takes the fast path: the full path refuses it (RFC 5782).
    with pytest.raises(DataFileError, match=r"f\.ip4set:2: .*RFC 5782"):
        list(Stream(["192.0.2.1\n", "127.0.0.1\n"], spec()))


LINES = st.sampled_from(
    [
        "192.0.2.1",
        "192.0.2.7 :3:spam trap",
        "010.0.0.1",
        "203.0.113.0/24",
        "203.0.113.5-203.0.113.9",
        "!203.0.113.7",
        "!192.0.2.1",
        ":127.0.0.2:listed: $",
        ":127.0.0.3:compromised host",
        "$TTL 1h",
        "# comment",
        "198.51.100.9 ; comment",
        "10.1.2.3",
        "10.1.2.3 :127.0.0.3:",
        "",
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(LINES, max_size=25))
def test_stream_gives_what_parse_gives(lines: list[str]) -> None:
    text = "\n".join(lines) + "\n"
    try:
        expected = parsed(text)
    except DataFileError as exc:
        with pytest.raises(DataFileError) as got:
            streamed(text)
        assert got.value.lineno == exc.lineno
        return
    rows, _ = streamed(text)
    assert sorted(rows) == sorted(expected)


def _hosts(count: int) -> Iterator[str]:
    for i in range(count):
        yield f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}\n"


def test_load_listings_is_all_or_nothing_and_keeps_the_indexes(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "r.db")
    try:
        before = store.serial()
        lines = [*_hosts(60_000), "10.300.0.1\n"]
        with pytest.raises(DataFileError, match=":60001:"):
            load_listings(store, Stream(lines, spec()), actor="t", action="import", expected=60_000)
        assert store.serial() == before
        assert list(store.listing_rows(active_at=spec().now)) == []
        rows = Stream(list(_hosts(60_000)), spec())
        assert load_listings(store, rows, actor="t", action="import", expected=60_000) == 60_000
        assert store.serial() == before + 1
        db = sqlite3.connect(tmp_path / "r.db")
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"listings_expires", "listings_cause", "listings_source"} <= names
        assert db.execute("SELECT COUNT(*) FROM listings").fetchone() == (60_000,)
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        db.close()
        # A second load of the same rows updates them in place.
        load_listings(store, Stream(list(_hosts(10)), spec()), actor="t", action="import")
        assert sum(1 for _ in store.listing_rows(active_at=spec().now)) == 60_000
    finally:
        store.close()


def _peak(lines: int) -> int:
    """Return the peak Python allocations (bytes) while streaming *lines* bare hosts."""
    the_spec = spec()
    tracemalloc.start()
    count = sum(1 for _ in Stream(_hosts(lines), the_spec))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == lines
    return peak


def test_stream_memory_is_flat() -> None:
    """Peak Python allocations stay one run of hosts (RUN lines), however long the file is."""
    small, large = _peak(RUN + 1), _peak(RUN * 3)
    assert large < small * 1.2, f"{small} bytes for {RUN + 1} lines, {large} for {RUN * 3}"
    assert large < RUN * 200, f"peak {large} bytes"  # a str per line would be 3 * RUN * 62+


def test_progress_is_called_every_progress_every_lines() -> None:
    seen: list[int] = []
    rows = Stream(_hosts(250_000), spec(), progress=seen.append)
    assert sum(1 for _ in rows) == 250_000
    assert seen == [100_000, 200_000]


def _mixed_file() -> list[str]:
    """A file of several chunks where the runs of bare hosts meet everything else."""
    lines = [":127.0.0.2:listed: $\n", *_hosts(7_000)]  # templated TXT: reason per host
    lines += ["203.0.113.0/24\n", "!203.0.113.7\n", "!10.0.0.5\n", "10.0.0.5\n"]  # cut host
    lines += ["192.0.2.7 :3:spam trap\n", "010.0.0.1\n", "# comment\n", "10.0.1.1\n"]
    lines += [":127.0.0.3:compromised host\n", *list(_hosts(19_000))[3_000:]]  # again, some
    lines += ["203.0.113.5-203.0.113.9\n", "$TTL 1h\n", "192.0.2.9 ; note\n", "10.0.0.9\n"]
    lines += [":127.0.0.2:listed\n", "198.51.100.1\n", "198.51.100.1\n"]  # a duplicate
    return lines


def _loaded(path: Path, lines: list[str], *, runs: bool, existing: bool) -> list[object]:
    """Load *lines* (runs whole, or every row as a tuple) into a store; return its table."""
    store = SQLiteStore(path)
    try:
        if existing:  # a table larger than the load: the key stays, rows are upserted
            old = [f"10.0.{i}.{i}\n" for i in range(1, 250)]
            load_listings(store, Stream(old, spec()), actor="t", action="i")
        the_spec = spec()
        stream = Stream(lines, the_spec, excluded=exclusions(lines, the_spec))
        items = stream.parts() if runs else list(stream)
        expected = bulk.DEFER_MIN if not existing else 0
        assert load_listings(store, items, actor="t", action="import", expected=expected)
    finally:
        store.close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return db.execute("SELECT * FROM listings ORDER BY id").fetchall()
    finally:
        db.close()


def _spy_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Return the list where each statement that stores run subjects by json_each is noted."""
    ran: list[str] = []
    statement = bulk._run_statement

    def spy(sql: str, templated: bool) -> str:
        ran.append(sql)
        return statement(sql, templated)

    monkeypatch.setattr(bulk, "_run_statement", spy)
    return ran


@pytest.mark.parametrize("existing", [False, True], ids=["empty-store", "upsert"])
def test_runs_load_the_same_table_as_rows(
    tmp_path: Path, existing: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs of hosts written in one statement give the table row-by-row inserts give, ids too."""
    monkeypatch.setattr(bulk, "CHUNK", 5_000)  # runs longer than a chunk, chunks of both kinds
    lines = _mixed_file()
    want = _loaded(tmp_path / "rows.db", lines, runs=False, existing=existing)
    ran = _spy_runs(monkeypatch)
    assert _loaded(tmp_path / "runs.db", lines, runs=True, existing=existing) == want
    assert len(ran) == 3, "the chunks all of one run went in through json_each"
    reasons = {row[1]: row[4] for row in want}  # type: ignore[index]
    assert reasons["10.0.0.8"] == "listed: 10.0.0.8"  # the templated TXT, the host it names
    assert reasons["10.0.24.1"] == "compromised host"  # listed again under the second default
    assert reasons["10.0.0.1"] == "listed: 10.0.0.1"  # "010.0.0.1" is the same host
    assert "10.0.0.5" not in reasons and "203.0.113.7" not in reasons  # cut by the "!" lines
    monkeypatch.setattr(bulk, "_json_each", lambda db: False)  # an SQLite without JSON
    assert _loaded(tmp_path / "plain.db", lines, runs=True, existing=existing) == want


def test_ranges_among_hosts_load_in_segments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A range every few dozen hosts: the runs' subjects between the ranges still go in through
    json_each, segment by segment, and the table (ids too) is the row-by-row one; a chunk where
    a row repeats a run's subject keeps the one list of rows."""
    monkeypatch.setattr(bulk, "CHUNK", 5_000)
    lines = [":127.0.0.2:listed: $\n"]
    for i, host in enumerate(_hosts(12_000)):
        lines.append(host)
        if i % 61 == 30:  # a /31 among the hosts: between them in subject order too
            lines.append(f"10.0.{(i >> 8) & 255}.{i & 254}/31\n")
    lines.append("10.0.40.9 :3:spam trap\n")  # a row of a subject the run has (chunk 3)
    want = _loaded(tmp_path / "rows.db", lines, runs=False, existing=False)
    ran = _spy_runs(monkeypatch)
    assert _loaded(tmp_path / "runs.db", lines, runs=True, existing=False) == want
    assert len(ran) > 150, "segments between the 197 ranges went in through json_each"
    assert len(want) > 12_000


@pytest.mark.parametrize(
    "odd",
    ["10.9.9.9 \n", "\n", "10.9.9.9\r\n", "010.9.9.9\n", "10.9.9.9 :3:spam trap\n", "!10.0.1.7\n"],
    ids=["trailing-blank", "blank", "crlf", "leading-zero", "own-txt", "exclusion"],
)
def test_blocks_of_hosts_give_what_parse_gives(odd: str) -> None:
    """A block of lines read at once with one odd line in it (or none, the last one unended)."""
    lines = [":127.0.0.2:listed: $\n", *_hosts(BLOCK * 3)]
    lines[BLOCK + 7] = odd
    lines[-1] = lines[-1].rstrip("\n")
    text = "".join(lines)
    rows, stream = streamed(text)
    assert sorted(rows) == sorted(parsed(text))
    assert stream.count == len(rows) > BLOCK * 3 - 3


def test_several_odd_lines_in_a_block_give_what_parse_gives() -> None:
    """Ranges, own TXTs, blanks and comments here and there in one block, two in a row, and
    at its first and last line: the hosts between them are taken whole, the rows are parse's."""
    lines = [":127.0.0.2:listed: $\n", *_hosts(BLOCK * 3)]
    odd = ["10.0.2.0/25\n", "10.0.2.9 :3:spam trap\n", "\n", "# note\n", "10.0.3.1-10.0.3.9\n"]
    for k, at in enumerate([BLOCK, BLOCK + 7, BLOCK + 8, BLOCK + 100, 2 * BLOCK - 1, 2 * BLOCK]):
        lines[at] = odd[k % len(odd)]
    text = "".join(lines)
    rows, stream = streamed(text)
    assert sorted(rows) == sorted(parsed(text))
    assert stream.count == len(rows) > BLOCK * 3 - 6


def test_a_bad_exclusion_names_its_line() -> None:
    """The pre-pass finds ``!`` lines block by block and still names the line of a bad one."""
    lines = [*_hosts(BLOCK * 2)]
    lines[7] = "  !10.0.0.0/8\n"
    lines[BLOCK + 9] = "!10.0.0.300\n"
    the_spec = spec()
    with pytest.raises(DataFileError, match=rf"f\.ip4set:{BLOCK + 10}: "):
        exclusions(lines, the_spec)
    lines[BLOCK + 9] = "\t!10.1.0.0/16 \r\n"
    assert [str(x) for x in exclusions(lines, the_spec)] == ["10.0.0.0/8", "10.1.0.0/16"]


def test_a_bad_host_in_a_block_names_its_line() -> None:
    lines = [*_hosts(BLOCK * 2)]
    lines[BLOCK + 9] = "127.0.0.1\n"  # never the fast path: the full path refuses it
    with pytest.raises(DataFileError, match=rf"f\.ip4set:{BLOCK + 10}: .*RFC 5782"):
        streamed("".join(lines))


def test_runs_load_the_same_listings_on_every_store(tmp_path: Path, store_dsn: str) -> None:
    """On PostgreSQL (one Batch, COPY) as on SQLite, runs give what their rows give."""
    lines = _mixed_file()
    the_spec = spec()
    want = _loaded(tmp_path / "rows.db", lines, runs=False, existing=False)
    store = open_dsn(store_dsn)
    try:
        stream = Stream(lines, the_spec, excluded=exclusions(lines, the_spec))
        load_listings(store, stream.parts(), actor="t", action="import", expected=len(lines))
        got = sorted(store.listing_rows(active_at=the_spec.now))
    finally:
        store.close()
    assert got == sorted((r[1], r[2], r[3], r[4], r[6], r[7]) for r in want)  # type: ignore[index]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 300)), max_size=8),
    st.lists(st.integers(0, 2**32 - 1), max_size=40),
    st.booleans(),
)
def test_a_run_is_cut_as_its_hosts_one_by_one(
    spans: list[tuple[int, int]], addresses: list[int], as_text: bool
) -> None:
    """`_Holes.keep4` (a whole run at once, by the excluded addresses' text or by bisection)
    keeps exactly the hosts `host4` keeps."""
    excluded: list[IPNetwork | Domain] = []
    for lo, size in spans:
        excluded.extend(
            summarize_address_range(IPv4Address(lo), IPv4Address(min(lo + size, 2**32 - 1)))
        )
    # hosts at the spans' edges too, where an off-by-one would show
    addresses += [a for lo, size in spans for a in (lo - 1, lo, lo + size, lo + size + 1)]
    subjects = [str(IPv4Address(a)) for a in addresses if 0 <= a < 2**32]
    holes = _Holes(excluded)
    assert holes.texts4 is not None  # a few thousand addresses at most
    if not as_text:
        holes.texts4 = None
    assert holes.keep4(subjects) == [s for s in subjects if not holes.host4(int(IPv4Address(s)))]

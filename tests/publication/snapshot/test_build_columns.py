"""The column-wise host path of the snapshot build gives the same snapshot as the per-row loop."""

from __future__ import annotations

import random
from array import array
from datetime import UTC, datetime
from typing import Any

import pytest

from reputable.config import DEFAULT_TOML, parse_config
from reputable.publication.snapshot import build as build_module

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _rows(seed: int, count: int) -> list[tuple[str, int, str, str, float, float | None]]:
    """Chunks of plain hosts with duplicates, other causes, expiries, ranges and domains."""
    rnd = random.Random(seed)
    cut = NOW.timestamp()
    rows: list[tuple[str, int, str, str, float, float | None]] = []
    for index in range(count):
        address = rnd.choice([rnd.getrandbits(32), 0x0A000000 + rnd.randrange(600), 0x7F000002])
        subject = ".".join(str(address >> s & 255) for s in (24, 16, 8, 0))
        reason = f"spam from {subject} $" if index % 3 else "trap"
        rows.append((subject, 4, "spam", reason, 1e9 + index, None))
    for _ in range(count // 50):  # sprinkled: they break some chunks into the per-row loop
        at = rnd.randrange(len(rows))
        subject = rows[at][0]
        rows.insert(at, (subject, 4, "manual", "op", 5.0, rnd.choice([None, cut + 60, cut - 1])))
    for _ in range(count // 200):  # ranges among the hosts, as a mixed rbldnsd file gives
        at = rnd.randrange(len(rows))
        rows.insert(at, (f"10.0.{rnd.randrange(3)}.0/25", 4, "spam", "range", 6.0, None))
    for index in range(count // 4):  # hosts that expire later, then hosts of another cause
        subject = f"10.9.{index >> 8 & 255}.{index & 255}"
        rows.append((subject, 4, "spam", f"x {subject}", 2e9, cut + 3600 if index % 90 else None))
    rows.insert(count // 3, ("10.0.1.0/24", 4, "network", "net", 7.0, None))
    rows.insert(count // 2, ("evil.example", 0, "malware_host", "bad $", 8.0, None))
    rows.insert(count // 2, ("2001:db8::1", 6, "spam", "six", 9.0, None))
    return rows


def _flat(sections: dict[str, Any]) -> dict[str, bytes]:
    """Return every section as bytes, with each atom's TXT resolved (blob layout may differ)."""
    blob = sections["strings"]
    out = {k: v.tobytes() if isinstance(v, array) else bytes(v) for k, v in sections.items()}
    out["txt"] = b"\0".join(
        blob[o : o + n]
        for o, n in zip(sections["atom_txt_off"], sections["atom_txt_len"], strict=True)
    )
    for name in ("strings", "atom_txt_off", "atom_txt_len"):
        del out[name]
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_column_path_equals_row_path(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hosts packed column by column give the same header and sections as row by row."""
    config = parse_config(DEFAULT_TOML, __import__("pathlib").Path("/nonexistent/reputable.toml"))
    rows = _rows(seed, 3 * build_module.CHUNK)
    allows = [("10.0.0.7", 4, "ok", None), ("10.0.0.64/28", 4, "ok", None)]
    zones = {
        "ip_zone": config.ip_zone,
        "domain_zone": config.domain_zone,
        "allow_zone": config.allow_zone,
    }
    runs: list[int] = []
    pieces = build_module._pieces

    def counted(chunk: Any, cut: float) -> Any:
        for piece in pieces(chunk, cut):
            if isinstance(piece, build_module.HostRun):
                runs.append(len(piece.subjects))
            yield piece

    monkeypatch.setattr(build_module, "_pieces", counted)
    fast = build_module.build(rows, allows, serial=3, now=NOW, **zones)
    monkeypatch.setattr(build_module, "_pieces", lambda chunk, cut: iter([chunk]))
    slow = build_module.build(rows, allows, serial=3, now=NOW, **zones)
    assert fast.header == slow.header
    assert _flat(fast.sections) == _flat(slow.sections)
    assert fast.header["listings"] > 3 * build_module.CHUNK
    assert len(runs) > 3 * 3 and sum(runs) > 3 * build_module.CHUNK // 2  # mixed chunks split


def test_unique_templates_are_not_interned() -> None:
    """A chunk whose TXT all differ is stored without growing the interning dict."""
    table = build_module.ValueTable()
    texts = [f"host {i}" for i in range(2000)]
    assert table.template_ids_of(texts) == list(range(2000))
    assert table.templates == {}
    assert table.template_ids_of(["a", "b", "a"]) == [2000, 2001, 2000]
    assert table.template_blob.endswith(b"ab")
    assert table.key(table.atom(2, "x")) == (2, "x")


def test_net_span_agrees_with_ipaddress() -> None:
    """The inet_pton parse of subjects gives ip_network's span, and its errors, for any text."""
    from ipaddress import ip_network

    rnd = random.Random(7)
    texts = ["0.0.0.0/0", "::/0", "1.2.3.4", "::ffff:1.2.3.4", "1.2.3.4/32", "2001:db8::/129"]
    texts += ["1.2.3.0/2_4", "1.2.3.0/+24", "1.2.3.0/", "1.2.3", "1.2.3.4/33", "x", "1.2.3.0/ 24"]
    texts += ["1.2.3.0/255.255.255.0", "fe80::1%eth0", "1.2.3.4/٢", "01.2.3.4/24", "::1.2.3.4"]
    for _ in range(3000):
        if rnd.random() < 0.5:
            text = ".".join(str(rnd.randrange(256)) for _ in range(4))
            bits = 32
        else:
            text = ":".join(f"{rnd.randrange(65536):x}" for _ in range(8))
            bits = 128
        texts.append(f"{text}/{rnd.randrange(bits + 1)}" if rnd.random() < 0.8 else text)
    for text in texts:
        try:
            net = ip_network(text, strict=False)
        except ValueError:
            with pytest.raises(ValueError):
                build_module._net_span(text)
            continue
        lo = int(net.network_address)
        expected = (net.version, lo, lo + net.num_addresses - 1, net.prefixlen)
        assert build_module._net_span(text) == expected, text


def test_single_answers_of_a_mixed_run() -> None:
    """In a run mixing unique and interned TXTs, interned ones share the first value's answer."""
    table = build_module.ValueTable()
    shared = [table.atom(2, "trap") for _ in range(3)]
    tids = table.template_ids_of([f"host {i}" for i in range(2000)])
    first = len(table.codes)
    table.codes.extend([2] * 2000)
    table.template_ids.extend(tids)
    atoms = array("I", [shared[0], *range(first, first + 2000), *shared[1:]])
    first_value = table.value_count
    for atom in atoms:
        table.fresh_value([atom])
    found = list(table.single_answers(atoms, first_value))
    own = list(range(first_value, first_value + len(atoms)))
    assert found == [first_value, *own[1:2001], first_value, first_value]
    assert found == [table.answer(value) for value in own]


def _runs_with_others(
    rows: list[tuple[str, int, str, str, float, float | None]], size: int, *, named: bool
) -> list[build_module.Chunk]:
    """Cut *rows* into windows of *size*, each a run of its never-expiring "spam" hosts with
    the other rows among them (as ``SQLiteStore.listing_chunks`` gives a mixed window)."""
    chunks: list[build_module.Chunk] = []
    for start in range(0, len(rows), size):
        window = rows[start : start + size]
        others = [
            (place, row)
            for place, row in enumerate(window)
            if row[1] != 4 or "/" in row[0] or row[2] != "spam" or row[5] is not None
            or (named and row[3] != f"seen {row[0]}")
        ]  # fmt: skip
        subjects = [row[0] for row in window]
        listed = array("d", [row[4] for row in window])
        if named:
            run = build_module.HostRun(
                subjects, "spam", (), listed, None, named=("seen ", ""), others=others
            )
        else:
            reasons = [row[3] for row in window]
            run = build_module.HostRun(subjects, "spam", reasons, listed, None, others=others)
        chunks.append(run)
    return chunks


@pytest.mark.parametrize("named", [False, True])
def test_runs_with_others_equal_rows(named: bool) -> None:
    """Runs of hosts with ranges, exclusion pieces and other rows among them (a store's mixed
    windows) give the same header and sections as the same rows row by row."""
    config = parse_config(DEFAULT_TOML, __import__("pathlib").Path("/nonexistent/reputable.toml"))
    zones = {
        "ip_zone": config.ip_zone,
        "domain_zone": config.domain_zone,
        "allow_zone": config.allow_zone,
    }
    rows = _rows(3, 2 * build_module.CHUNK)
    if named:  # every host's reason names it, as an rbldnsd `$` import stores it
        rows = [(s, f, c, f"seen {s}" if "/" not in s else r, t, e) for s, f, c, r, t, e in rows]
    # The pieces a `!` line cuts a range into, one of them a host that names the range.
    rows[5:5] = [("10.1.0.0/31", 4, "spam", "seen 10.1.0.0/24", 3.0, None)]
    rows[6:6] = [("10.1.0.3", 4, "spam", "seen 10.1.0.0/24", 3.0, None)]
    rows.insert(0, ("10.2.0.0/24", 4, "spam", "seen 10.2.0.0/24", 4.0, None))  # first place
    chunks = _runs_with_others(rows, 700, named=named)
    assert all(isinstance(c, build_module.HostRun) and c.others for c in chunks[:-1])
    gaps = [
        b - a - 1
        for c in chunks
        if isinstance(c, build_module.HostRun)
        for (a, _), (b, _) in zip(c.others, c.others[1:], strict=False)
    ]
    assert any(0 < gap < build_module.MIN_SPLIT for gap in gaps)  # hosts that go as rows
    assert any(gap >= build_module.MIN_SPLIT for gap in gaps)  # and hosts that go as runs
    allows = [("10.0.0.7", 4, "ok", None)]
    fast = build_module.build(
        build_module.ListingChunks(chunks), allows, serial=4, now=NOW, **zones
    )
    slow = build_module.build(rows, allows, serial=4, now=NOW, **zones)
    assert fast.header == slow.header
    assert _flat(fast.sections) == _flat(slow.sections)

"""The compiled host packing and sort (``_fastbuild``) give the same snapshot as Python."""

from __future__ import annotations

import random
import socket
from array import array
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reputable.config import DEFAULT_TOML, parse_config
from reputable.publication.snapshot import build as build_module
from tests.publication.snapshot.test_build_columns import _flat, _rows

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
fast = pytest.importorskip("reputable.publication.snapshot._fastbuild")


@pytest.mark.parametrize("seed", [3, 4])
def test_compiled_build_equals_python_build(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hosts packed and sorted in C give the same header and sections as the Python code."""
    config = parse_config(DEFAULT_TOML, Path("/nonexistent/reputable.toml"))
    rows = _rows(seed, 3 * build_module.CHUNK)
    allows = [("10.0.0.7", 4, "ok", None), ("10.0.0.64/28", 4, "ok", None)]
    zones = {
        "ip_zone": config.ip_zone,
        "domain_zone": config.domain_zone,
        "allow_zone": config.allow_zone,
    }
    assert build_module.FAST is fast
    compiled = build_module.build(rows, allows, serial=3, now=NOW, **zones)
    monkeypatch.setattr(build_module, "FAST", None)
    python = build_module.build(rows, allows, serial=3, now=NOW, **zones)
    assert compiled.header == python.header
    assert _flat(compiled.sections) == _flat(python.sections)
    assert len(compiled.sections["v4_host_addr"]) > build_module.CHUNK


def test_pack_hosts_matches_inet_aton() -> None:
    """Each subject becomes address << 32 | atom, as socket.inet_aton reads it (legacy forms too)."""
    subjects = ["1.2.3.4", "255.255.255.255", "0.0.0.0", "10.1", "0x7f.1", "127.0.0.2"]
    keys = array("Q", fast.pack_hosts(subjects, 40))
    expected = [
        int.from_bytes(socket.inet_aton(s), "big") << 32 | 40 + i for i, s in enumerate(subjects)
    ]
    assert keys.tolist() == expected


@pytest.mark.parametrize("text", ["1.2.3.256", "x", "", "1.2.3.4/32", "::1", "1.2.3.4x"])
def test_pack_hosts_refuses_what_inet_aton_refuses(text: str) -> None:
    """A subject inet_aton refuses raises the OSError socket.inet_aton raises."""
    with pytest.raises(OSError) as python_error:
        socket.inet_aton(text)
    with pytest.raises(OSError) as c_error:
        fast.pack_hosts(["1.2.3.4", text], 0)
    assert str(c_error.value) == str(python_error.value)


def test_pack_hosts_refuses_atoms_past_32_bits() -> None:
    """Atom ids must fit the key's low 32 bits."""
    with pytest.raises(OverflowError):
        fast.pack_hosts(["1.2.3.4", "1.2.3.5"], 0xFFFFFFFF)


@pytest.mark.parametrize("size", [0, 1, 2, 1000, 70_000])
def test_sort_u64_sorts_like_sorted(size: int) -> None:
    """The radix sort orders any u64 values, shared high digits and duplicates included."""
    rnd = random.Random(size)
    values = [rnd.getrandbits(64) for _ in range(size // 2)]
    values += [(rnd.choice([7, 0xFFFF0000]) << 32) | rnd.randrange(50) for _ in range(size // 2)]
    keys = array("Q", values)
    fast.sort_u64(keys)
    assert keys.tolist() == sorted(values)


def test_sort_u64_refuses_other_buffers() -> None:
    """Only a writable buffer of 8-byte unsigned ints is sorted."""
    with pytest.raises(TypeError):
        fast.sort_u64(array("I", [2, 1]))
    with pytest.raises(BufferError):
        fast.sort_u64(b"\0" * 16)


def test_split_hosts_flags_busy_and_repeated_hosts() -> None:
    """Addresses, atoms, intervals and flags of sorted keys; unsorted keys are refused."""
    keys = array("Q", [5 << 32 | 1, 9 << 32 | 2, 9 << 32 | 3, 20 << 32 | 4, 31 << 32 | 5])
    starts = array("I", [0, 10, 30])  # intervals 1: [0, 10), 2: [10, 30), 3: [30, ...)
    addresses, atoms, where, flags = fast.split_hosts(keys, starts, bytes([0, 0, 1, 0]))
    assert array("I", addresses).tolist() == [5, 9, 9, 20, 31]
    assert array("I", atoms).tolist() == [1, 2, 3, 4, 5]
    assert array("I", where).tolist() == [1, 1, 1, 2, 3]
    assert list(flags) == [0, 1, 1, 1, 0]
    with pytest.raises(ValueError, match="not sorted"):
        fast.split_hosts(array("Q", [9 << 32, 5 << 32]), starts, bytes(4))
    with pytest.raises(ValueError, match="busy"):
        fast.split_hosts(keys, starts, bytes(3))


def test_take_u32_gathers_and_checks_bounds() -> None:
    """table[index[i]] for each i, as the Python map gives it; IndexError past the end."""
    rnd = random.Random(5)
    table = array("I", (rnd.getrandbits(32) for _ in range(1000)))
    index = array("I", (rnd.randrange(1000) for _ in range(5000)))
    assert array("I", fast.take_u32(table, index)) == array("I", map(table.__getitem__, index))
    assert fast.take_u32(table, array("I")) == b""
    with pytest.raises(IndexError):
        fast.take_u32(table, array("I", [0, 1000]))
    with pytest.raises(ValueError, match="u32"):
        fast.take_u32(b"abc", index)


def test_one_txt_runs_in_ranges_compiled_equal_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs of hosts under one TXT (one answer per run) with hosts inside ranges of other
    codes (the in-range cache): the same sections with and without the C helpers."""
    config = parse_config(DEFAULT_TOML, Path("/nonexistent/reputable.toml"))
    rnd = random.Random(9)
    runs: list[build_module.Chunk] = []
    for cause, reason in (("spam", "trap"), ("harvest", "trap"), ("spam", "other $")):
        addresses = (0x0A000000 + rnd.randrange(1 << 14) for _ in range(3001))
        subjects = [socket.inet_ntoa(a.to_bytes(4, "big")) for a in addresses]
        listed = array("d", [1e9]) * len(subjects)
        runs.append(build_module.HostRun(subjects, cause, [reason] * len(subjects), listed, None))
    runs.append(
        [
            (f"10.0.{i * 4}.0/22", 4, cause, "net", 2e9, None)
            for i, cause in enumerate(["network", "spam", "compromised", "network"] * 4)
        ]
    )
    zones = {
        "ip_zone": config.ip_zone,
        "domain_zone": config.domain_zone,
        "allow_zone": config.allow_zone,
    }
    allows = [("10.0.1.0/24", 4, "ok", None)]
    compiled = build_module.build(
        build_module.ListingChunks(runs), allows, serial=1, now=NOW, **zones
    )
    monkeypatch.setattr(build_module, "FAST", None)
    python = build_module.build(
        build_module.ListingChunks(runs), allows, serial=1, now=NOW, **zones
    )
    assert compiled.header == python.header
    assert _flat(compiled.sections) == _flat(python.sections)
    assert compiled.header["listings"] == 3 * 3001 + 16

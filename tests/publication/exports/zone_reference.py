"""The zone renderer as it was before session 6, kept as the oracle for exports/zone.py.

It builds the whole list of segments and merges neighbours with equal answers over the
whole address space (memory grows with the zone); the node-by-node walk that replaced it
must write the same records. Only the IP trees are here: the rest is shared.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address

from reputable.publication.exports.zone import (
    EXISTS_TYPE,
    Key,
    Record,
    ZoneSettings,
    _data,
    _domains,
    _key,
    soa_record,
)
from reputable.publication.snapshot.layout import NONE
from reputable.publication.snapshot.view import Snapshot


def reference_records(snapshot: Snapshot, settings: ZoneSettings) -> Iterator[Record]:
    """Yield the zone's records as the renderer before session 6 did (no overlay)."""
    yield soa_record(settings, snapshot.serial)
    for ns in settings.nameservers:
        yield Record("", "NS", f"{ns}.")
    if settings.kind == "domain":
        yield from _domains(snapshot, allow=False)
        return
    allow = settings.kind == "allow"
    yield from _tree(snapshot, _segments4(snapshot, allow=allow), bits=8, levels=4)
    yield from _tree(snapshot, _segments6(snapshot, allow=allow), bits=4, levels=32)
    if allow:
        yield from _domains(snapshot, allow=True)


def _segments4(snapshot: Snapshot, *, allow: bool) -> list[tuple[int, int]]:
    """Return (start, value) of maximal IPv4 segments, host listings laid over ranges."""
    starts, vals = snapshot.intervals(v6=False, allow=allow)
    events: list[tuple[int, int]] = list(zip(starts, vals, strict=True))
    if allow:
        return events
    out: list[tuple[int, int]] = []
    ranges = events
    ri = 0
    for address, value in zip(snapshot.v4_host_addr, snapshot.v4_host_val, strict=True):
        while ri < len(ranges) and ranges[ri][0] <= address:
            out.append(ranges[ri])
            ri += 1
        under = ranges[ri - 1][1]
        if out[-1][0] == address:
            out[-1] = (address, int(value))
        else:
            out.append((address, int(value)))
        if address < 0xFFFFFFFF and (ri >= len(ranges) or ranges[ri][0] != address + 1):
            out.append((address + 1, under))
    out.extend(ranges[ri:])
    return out


def _segments6(snapshot: Snapshot, *, allow: bool) -> list[tuple[int, int]]:
    """Return (start, value) of the IPv6 segments."""
    starts, vals = snapshot.intervals(v6=True, allow=allow)
    return [(int.from_bytes(starts[i], "big"), int(vals[i])) for i in range(len(starts))]


def _tree(
    snapshot: Snapshot, segments: list[tuple[int, int]], *, bits: int, levels: int
) -> Iterator[Record]:
    """Yield the records of one address family (see the module docstring)."""
    keys: dict[int, Key] = {}

    def key(value: int) -> Key:
        found = keys.get(value)
        if found is None:
            found = keys[value] = () if value == NONE else _key(snapshot, value)
        return found

    # Merge neighbours with equal answers (host values are unique ids even when equal).
    starts: list[int] = []
    values: list[int] = []
    for start, value in segments:
        if values and key(values[-1]) == key(value):
            continue
        starts.append(start)
        values.append(value)
    width = bits * levels
    fanout = 1 << bits
    v6 = levels == 32

    def label(part: int) -> str:
        return format(part, "x") if v6 else str(part)

    def children(lo: int, size: int) -> list[tuple[int, int, int | None]]:
        """Return runs (first child, end child, value) of the node at *lo*; None: mixed child.

        Only the segments overlapping the node are visited, so a sparse node costs its
        boundaries, not its 256 children.
        """
        hi = lo + size * fanout
        j = bisect_right(starts, lo) - 1
        runs: list[tuple[int, int, int | None]] = []
        mixed: set[int] = set()
        while j < len(starts) and starts[j] < hi:
            seg_lo = max(starts[j], lo)
            seg_hi = min(starts[j + 1] if j + 1 < len(starts) else 1 << width, hi)
            first = -(-(seg_lo - lo) // size)  # children fully inside [seg_lo, seg_hi)
            end = (seg_hi - lo) // size
            if first < end:
                runs.append((first, end, values[j]))
            if (seg_lo - lo) % size:
                mixed.add((seg_lo - lo) // size)
            j += 1
        runs.extend((c, c + 1, None) for c in mixed)
        runs.sort(key=lambda run: run[0])
        return runs

    def walk(lo: int, depth: int, owner: str) -> Iterator[Record]:
        size = 1 << (width - bits * (depth + 1))  # one child's block
        runs = children(lo, size)
        tally: Counter[Key] = Counter()
        for first, end, value in runs:
            if value is not None:
                tally[key(value)] += end - first
        wild = tally.most_common(1)[0][0] if tally else ()
        suffix = f".{owner}" if owner else ""
        if wild:
            rep = next(v for _, _, v in runs if v is not None and key(v) == wild)
            yield from _data(snapshot, f"*{suffix}", rep, None)
        for first, end, value in runs:
            if value is not None and key(value) == wild:
                continue
            for c in range(first, end):
                name = f"{label(c)}{suffix}"
                child_lo = lo + c * size
                if value is None:
                    yield from walk(child_lo, depth + 1, name)
                elif not key(value):
                    yield Record(name, f"TYPE{EXISTS_TYPE}", r"\# 0")
                elif depth + 1 == levels:
                    text = str(IPv6Address(child_lo) if v6 else IPv4Address(child_lo))
                    yield from _data(snapshot, name, value, text)
                else:
                    yield from _data(snapshot, f"*.{name}", value, None)

    if len(starts) == 1 and not key(values[0]):
        return
    yield from walk(0, 0, "")

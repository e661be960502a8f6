"""A snapshot's zones as standard DNS records (RFC 1035 master file; the data AXFR/IXFR send).

Pure: the records are a function of the snapshot and the zone settings. A DNSBL answers
every address of a listed range, which a standard server can only do with wildcards
(RFC 4592), so ranges become label-aligned wildcards: octets for IPv4 (``*.2.0.192``),
nibbles for IPv6. At each node the most common answer among its 256 (or 16) children
becomes the node's wildcard and every child answering otherwise is written out: a different
listing as its own wildcard or host records, an unlisted (excluded) child as a name that
exists with no A or TXT (one record of private type 65280, RFC 6895), which stops the
wildcard above it. An exact name inside listed ranges carries every code that covers it, as
the snapshot already merged them. A node's records depend only on the answers inside it
(a wildcard's TXT names the first listing of its run within the node), which lets an IXFR
render just the nodes above the changed addresses (:func:`records_at`). Domain zones write each listed name and ``*.name``, plus
every name between a listed name and a more specific entry (an empty non-terminal would
otherwise hide the listing above it).

Limits, documented in docs/transfer.md: a ``$`` in a TXT template stands for the queried
name in our server; a wildcard cannot say that, so a range's TXT names the listed range;
``::ffff:a.b.c.d`` names (answered as IPv4 by our server) are not written.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv6Address
from operator import itemgetter
from socket import inet_ntoa
from typing import Final

from reputable.publication.dnsbl.wire import expansion
from reputable.publication.settings import PublicationConfig as Config
from reputable.publication.snapshot.layout import NONE
from reputable.publication.snapshot.view import Snapshot

EXISTS_TYPE: Final = 65280  # private use (RFC 6895 §3.1): "this name exists, unlisted"
SOA_TIMERS: Final = (3600, 600, 604800)  # refresh, retry, expire, as our server's SOA


@dataclass(frozen=True, slots=True)
class ZoneSettings:
    """What a zone's records need besides the snapshot."""

    name: str
    kind: str  # "ip", "domain" or "allow"
    ttl: int
    nameservers: tuple[str, ...]
    hostmaster: str
    negative_ttl: int


@dataclass(frozen=True, slots=True, order=True)
class Record:
    """One resource record: owner relative to the zone ("" is the apex), type, rdata text."""

    owner: str
    rtype: str  # "SOA", "NS", "A", "TXT" or "TYPE65280"
    rdata: str


#: Per answer: the (code, TXT template) pairs, as our server compares them.
Key = tuple[tuple[int, bytes], ...]


def zone_settings(config: Config) -> list[ZoneSettings]:
    """Return the record settings of the three zones (ip, domain, allow)."""
    dns_ = config.dns
    return [
        ZoneSettings(
            z.name, kind, z.ttl, dns_.nameservers, dns_.hostmaster, min(dns_.negative_ttl, z.ttl)
        )
        for z, kind in (
            (config.ip_zone, "ip"),
            (config.domain_zone, "domain"),
            (config.allow_zone, "allow"),
        )
    ]


def soa_record(settings: ZoneSettings, serial: int) -> Record:
    """Return the zone's SOA record with *serial* (as our server answers it)."""
    mname = settings.nameservers[0] if settings.nameservers else f"ns.{settings.name}"
    refresh, retry, expire = SOA_TIMERS
    return Record(
        "",
        "SOA",
        f"{mname}. {settings.hostmaster}. {serial & 0xFFFFFFFF} {refresh} {retry} {expire}"
        f" {settings.negative_ttl}",
    )


def records(snapshot: Snapshot, settings: ZoneSettings) -> Iterator[Record]:
    """Yield the zone's records: SOA and NS at the apex, then the data (sorted per part).

    The data are the snapshot's answers with its overlay's (what our server answers), written
    as the tree is walked: nothing is held per entry, so memory stays flat at any size.
    """
    yield soa_record(settings, snapshot.effective_serial)
    for ns in settings.nameservers:
        yield Record("", "NS", f"{ns}.")
    if settings.kind == "domain":
        yield from _domains(snapshot, allow=False)
        return
    allow = settings.kind == "allow"
    yield from _tree(snapshot, v6=False, allow=allow)
    yield from _tree(snapshot, v6=True, allow=allow)
    if allow:
        yield from _domains(snapshot, allow=True)


def zone_entries(snapshot: Snapshot, settings: ZoneSettings) -> int:
    """Return about how many entries the zone holds (IPv4 hosts, range boundaries, domains,
    and the overlay's addresses), from table lengths: O(1), without walking the zone.

    An IP zone renders about two records (A and TXT) per entry; what a caller weighs with it
    is the cost of rendering the zone, which follows these counts.
    """
    overlay = 0 if snapshot.overlay is None else len(snapshot.overlay)
    if settings.kind == "domain":
        return snapshot.domain_count() + overlay
    allow = settings.kind == "allow"
    v4 = len(snapshot.intervals(v6=False, allow=allow)[0])
    v6 = len(snapshot.intervals(v6=True, allow=allow)[0])
    if allow:
        return v4 + v6 + snapshot.domain_count(allow=True) + overlay
    return len(snapshot.v4_host_addr) + v4 + v6 + overlay


def records_at(
    snapshot: Snapshot,
    settings: ZoneSettings,
    v4: Iterable[int],
    v6: Iterable[int],
    nets4: Iterable[tuple[int, int]] = (),
    nets6: Iterable[tuple[int, int]] = (),
) -> set[Record]:
    """Return the zone's records that a change at the IPv4 *v4* and IPv6 *v6* addresses and
    the (first, last) address ranges *nets4* and *nets6* can move (those of the tree nodes
    above them, and of every node inside the smallest node holding a range): what an IXFR
    compares, old against new.

    Costs those nodes, not the zone: the same records :func:`records` writes for them, so
    the difference of two states that differ only there is the difference of their whole
    zones. A domain zone has none (its changes are domains: compared whole).
    """
    if settings.kind == "domain":
        return set()
    allow = settings.kind == "allow"
    found = set(_tree_at(snapshot, v4, nets4, v6=False, allow=allow))
    found.update(_tree_at(snapshot, v6, nets6, v6=True, allow=allow))
    return found


def master_file(settings: ZoneSettings, recs: Iterator[Record]) -> Iterator[str]:
    """Yield the lines of an RFC 1035 master file holding *recs*."""
    yield f"$ORIGIN {settings.name}.\n"
    yield f"$TTL {settings.ttl}\n"
    for rec in recs:
        owner = rec.owner or "@"
        yield f"{owner}\t{rec.rtype}\t{rec.rdata}\n"


# -- IP trees ---------------------------------------------------------------------------------
#: A value of the base snapshot (tag 0) or of its overlay (tag 1).
Ref = tuple[int, int]
#: Children of a node (first, end) with one value and answer; both None: a mixed child.
Run = tuple[int, int, Ref | None, Key | None]
KEY_CACHE: Final = 4096  # answers remembered per address family: a walk reuses them nearby


class _Space:
    """The answers of one address family of one zone, as segments found around any address.

    A segment is a run of addresses with one value: the base snapshot's flattened ranges,
    its IPv4 host listings laid over them, and the overlay's changed addresses laid over
    both. Each is found by bisection, so a walk holds nothing per entry (flat memory) and
    a look at one address costs a few bisections, whatever the zone's size.
    """

    def __init__(self, snapshot: Snapshot, *, v6: bool, allow: bool) -> None:
        overlay = snapshot.overlay
        self.snaps = (snapshot, snapshot if overlay is None else overlay.snapshot)
        self.v6 = v6
        self.allow = allow
        self.top = 1 << (128 if v6 else 32)
        self._starts, self._vals = snapshot.intervals(v6=v6, allow=allow)
        self._hosts = None if v6 or allow else (snapshot.v4_host_addr, snapshot.v4_host_val)
        changed: list[int] = []
        if overlay is not None:
            changed = (
                sorted(int.from_bytes(a, "big") for a in overlay.v6) if v6 else sorted(overlay.v4)
            )
        self._changed = changed
        self._keys: dict[Ref, Key] = {}
        self._last: tuple[int, int, Ref] = (0, 0, (0, NONE))  # the segment found last

    def _start(self, i: int) -> int:
        raw = self._starts[i]
        return int.from_bytes(raw, "big") if self.v6 else int(raw)

    def _changed_value(self, address: int) -> int:
        snap = self.snaps[1]
        if self.v6:
            raw = address.to_bytes(16, "big")
            return snap.wl_v6_value(raw) if self.allow else snap.v6_value(raw)
        return snap.wl_v4_value(address) if self.allow else snap.v4_value(address)

    def raw_at(self, x: int) -> tuple[int, int, Ref]:
        """Return (start, end, value) of the segment holding address *x* (end exclusive)."""
        last = self._last
        if last[0] <= x < last[1]:  # a walk asks about the same segment several times
            return last
        self._last = last = self._find(x)
        return last

    def _find(self, x: int) -> tuple[int, int, Ref]:
        low, high = 0, self.top
        changed = self._changed
        if changed:
            i = bisect_left(changed, x)
            if i < len(changed) and changed[i] == x:
                return x, x + 1, (1, self._changed_value(x))
            low = changed[i - 1] + 1 if i else 0
            high = changed[i] if i < len(changed) else high
        if self._hosts is not None:
            addr, val = self._hosts
            j = bisect_left(addr, x)
            if j < len(addr) and addr[j] == x:
                return x, x + 1, (0, int(val[j]))
            if j:
                low = max(low, int(addr[j - 1]) + 1)
            if j < len(addr):
                high = min(high, int(addr[j]))
        probe: int | bytes = x.to_bytes(16, "big") if self.v6 else x
        r = bisect_right(self._starts, probe) - 1
        end = self._start(r + 1) if r + 1 < len(self._starts) else self.top
        return max(self._start(r), low), min(end, high), (0, int(self._vals[r]))

    def host_runs(self, lo: int, size: int, fanout: int) -> list[Run] | None:
        """Return the runs of the IPv4 node at *lo* from its slice of the host array, or None
        when a range boundary or an overlay address lies inside it (then :func:`_children`
        looks segment by segment).

        Inside such a node every address answers the one range value unless it is a host, so
        the runs follow from the hosts alone: a child without hosts is uniform with the range
        value, a child with hosts is mixed unless all its addresses answer alike. The same
        runs as :meth:`run_end` finds, at two bisections per node and one per child holding
        hosts instead of several per segment: the walk cost 70 % of a 1M-host AXFR (cProfile
        2026-12-06), see docs/benchmarks.md "Zone transfers (2026-12-06)".
        """
        found = self._host_slice(lo, lo + size * fanout)
        if found is None:
            return None
        j, j1, under = found
        addr, val = self._hosts  # type: ignore[misc]  # _host_slice checked it
        key = self.key
        plain = key(under)
        if j == j1:
            return [(0, fanout, under, plain)]
        runs: list[Run] = []

        def add(first: int, end: int, ref: Ref | None, answer: Key | None) -> None:
            if answer is not None and runs and runs[-1][3] == answer:
                runs[-1] = (runs[-1][0], end, runs[-1][2], answer)
            else:
                runs.append((first, end, ref, answer))

        child = 0
        if size == 1:  # a leaf: each host is a child of its own
            for address, value in zip(addr[j:j1], val[j:j1], strict=True):
                c = address - lo
                if c > child:
                    add(child, c, under, plain)
                ref = (0, int(value))
                add(c, c + 1, ref, key(ref))
                child = c + 1
        else:
            shift = size.bit_length() - 1
            while j < j1:
                c = (int(addr[j]) - lo) >> shift
                start = lo + (c << shift)
                end = bisect_left(addr, start + size, j, j1)
                if c > child:
                    add(child, c, under, plain)
                first = (0, int(val[j])) if int(addr[j]) == start else under
                answer = self._hosts_answer(j, end, size, plain)
                add(c, c + 1, None if answer is None else first, answer)
                child, j = c + 1, end
        if child < fanout:
            add(child, fanout, under, plain)
        return runs

    def _host_slice(self, lo: int, hi: int) -> tuple[int, int, Ref] | None:
        """Return the host array's slice [j, j1) inside [lo, hi) and the range value under
        it, or None when a range boundary or an overlay address lies inside."""
        if self._hosts is None:
            return None
        changed = self._changed
        if changed and bisect_left(changed, lo) != bisect_left(changed, hi):
            return None
        starts = self._starts
        r = bisect_right(starts, lo) - 1
        if r < 0 or (r + 1 < len(starts) and starts[r + 1] < hi):
            return None
        addr = self._hosts[0]
        j = bisect_left(addr, lo)
        return j, bisect_left(addr, hi, j), (0, int(self._vals[r]))

    def leaf_hosts(self, lo: int) -> list[tuple[int, Ref]] | None:
        """Return (child, value to write) of each listed host of the IPv4 /24 at *lo* when
        nothing else in it answers (no range under it, no overlay address) and hosts are
        fewer than half: then the /24 has no wildcard and writes exactly its listed hosts,
        each with the value that starts its run of equal answers (as :func:`_write` does
        from the runs); else None. One call per /24 holding a host, 1M of them at 1M hosts:
        the runs, tally and wildcard choice cost a sixth of an AXFR (cProfile 2026-12-06).
        """
        found = self._host_slice(lo, lo + 256)
        if found is None:
            return None
        j, j1, under = found
        key = self.key
        if j1 - j > 127 or key(under):
            return None
        addr, val = self._hosts  # type: ignore[misc]  # _host_slice checked it
        out: list[tuple[int, Ref]] = []
        last = -2
        answer_before: Key = ()
        run: Ref = (0, NONE)
        for address, value in zip(addr[j:j1], val[j:j1], strict=True):
            c = int(address) - lo
            ref = (0, int(value))
            answer = key(ref)
            if answer:
                if c != last + 1 or answer != answer_before:
                    run = ref  # a new run of equal answers starts here
                out.append((c, run))
            last, answer_before = c, answer
        return out

    def _hosts_answer(self, j: int, end: int, size: int, plain: Key) -> Key | None:
        """Return the answer of every address of a child holding hosts *j* to *end* (the
        rest answering *plain*), or None when they differ (a mixed child); stops at the
        first host that tells."""
        _, val = self._hosts  # type: ignore[misc]  # host_runs checked it
        key = self.key
        if end - j < size:  # some addresses answer plain: so must every host
            if any(key((0, int(v))) != plain for v in val[j:end]):
                return None
            return plain
        answer = key((0, int(val[j])))
        if any(key((0, int(v))) != answer for v in val[j + 1 : end]):
            return None
        return answer

    def key(self, ref: Ref) -> Key:
        """Return the answer of *ref* as comparable (code, template) pairs."""
        found = self._keys.get(ref)
        if found is None:
            tag, value = ref
            found = () if value == NONE else _key(self.snaps[tag], value)
            if len(self._keys) >= KEY_CACHE:
                self._keys.clear()
            self._keys[ref] = found
        return found

    def run_end(self, x: int, limit: int) -> tuple[int, Ref, Key]:
        """Return where the run of equal answers holding *x* ends (looked for up to *limit*),
        the value at *x* and its answer."""
        _, end, ref = self.raw_at(x)
        answer = self.key(ref)
        while end < limit:
            _, after, other = self.raw_at(end)
            if self.key(other) != answer:
                break
            end = after
        return end, ref, answer

    def representative(self, x: int, floor: int) -> Ref:
        """Return the first value, from *floor* on, of the run of equal answers holding *x*.

        Its listings' subjects are what a wildcard's TXT names (as the whole-list merge of
        neighbours with equal answers did, within the node being written).
        """
        start, _, ref = self.raw_at(x)
        answer = self.key(ref)
        while start > floor:
            before, _, earlier = self.raw_at(start - 1)
            if self.key(earlier) != answer:
                break
            start, ref = before, earlier
        return ref

    def data(self, owner: str, ref: Ref, subject: str | None) -> list[Record]:
        """Return the A and TXT records of *ref* at *owner*."""
        snapshot = self.snaps[ref[0]]
        return _atom_data(snapshot, owner, snapshot.atoms(ref[1]), subject)


def _key(snapshot: Snapshot, value: int) -> Key:
    """Return the answer of *value* as comparable (code, template) pairs.

    The template of a one-address listing whose TXT names the queried address (``$``, as
    rbldnsd's; every host of an ``import rbldnsd`` under ``spam source $`` shares one) is
    taken expanded with that address: two such hosts answer different TXTs, so a node full of
    them is no wildcard (whose TXT could name only one of them), and a snapshot that wrote the
    address out answers the same as one that wrote ``$``. The expansion is one ``join`` of
    the template's pieces, found once per template (:func:`_marked`).
    """
    atoms = snapshot.atoms(value)
    codes = snapshot.atom_code
    if len(atoms) == 1:  # most values: no pairs to sort
        atom = atoms[0]
        return ((int(codes[atom]), _compared(snapshot, atom)),)
    return tuple(sorted((int(codes[atom]), _compared(snapshot, atom)) for atom in atoms))


def _compared(snapshot: Snapshot, atom: int) -> bytes:
    """Return the template of *atom* as :func:`_key` compares it."""
    template = snapshot.template(atom)
    pieces = _marked(template)
    if pieces is None:
        return template
    subject = snapshot.subject(atom)
    return template if "/" in subject else subject.encode().join(pieces)


@lru_cache(maxsize=4096)
def _marked(template: bytes) -> tuple[bytes, ...] | None:
    """Return the pieces of *template* (:func:`expansion`) when a ``$`` in it names the
    subject (not ``$$``, a dollar), else None."""
    if b"$" not in template or b"$" not in template.replace(b"$$", b""):
        return None
    return expansion(template)


@lru_cache(maxsize=4096)
def _pieces(template: bytes) -> tuple[bytes, ...]:
    """Return the pieces of *template* (:func:`expansion`), found once per template."""
    return expansion(template)


@dataclass(frozen=True, slots=True)
class _Shape:
    """The tree of one family: label bits per level and levels (IPv4 8 x 4, IPv6 4 x 32)."""

    bits: int
    levels: int

    def size(self, depth: int) -> int:
        """Return how many addresses one child of a node at *depth* holds."""
        return 1 << (self.bits * (self.levels - depth - 1))

    def label(self, part: int) -> str:
        return format(part, "x") if self.levels == 32 else str(part)

    def owner(self, lo: int, depth: int) -> str:
        """Return the name (relative to the zone) of the node at *depth* holding *lo*."""
        if self.levels == 4:  # IPv4: the octets (a third of the general way's cost)
            return ".".join(map(str, lo.to_bytes(4, "big")[depth - 1 :: -1])) if depth else ""
        mask = (1 << self.bits) - 1
        width = self.bits * self.levels
        parts = [(lo >> (width - self.bits * (i + 1))) & mask for i in range(depth)]
        return ".".join(self.label(p) for p in reversed(parts))


V4: Final = _Shape(8, 4)
V6: Final = _Shape(4, 32)


def _children(space: _Space, shape: _Shape, lo: int, depth: int) -> list[Run]:
    """Return runs (first child, end child, value, answer) of the node at *lo*; a mixed
    child has None for both.

    Only the runs' boundaries are visited: a mixed child is skipped by one bisection, so a
    node costs its uniform runs and its mixed children, not every segment below it.
    """
    size = shape.size(depth)
    fanout = 1 << shape.bits
    fast = space.host_runs(lo, size, fanout)
    if fast is not None:
        return fast
    hi = lo + size * fanout
    runs: list[Run] = []
    child = 0
    while child < fanout:
        x = lo + child * size
        end, ref, answer = space.run_end(x, hi)
        full = (min(end, hi) - x) // size
        if full:
            runs.append((child, child + full, ref, answer))
            child += full
        else:
            runs.append((child, child + 1, None, None))
            child += 1
    return runs


#: A node's output: lists of records, between them the first addresses of mixed children
#: whose records come there (written by their own :func:`_node`).
Parts = list[list[Record] | int]


def _node(
    space: _Space, shape: _Shape, lo: int, depth: int, *, recurse: bool
) -> Iterator[list[Record]]:
    """Yield the records of the node at *lo* (its mixed children's too when *recurse*), in
    lists: a node and its leaf children are written by plain calls (:func:`_write`), so a
    record passes through one generator per level above the leaves' parents, not one per
    level (the generator chain cost a sixth of a 1M-host AXFR, cProfile 2026-12-06)."""
    first: list[Record] = []
    parts: Parts = [first]
    _write(space, shape, lo, depth, parts, first, recurse=recurse)
    for part in parts:
        if isinstance(part, int):
            yield from _node(space, shape, part, depth + 1, recurse=True)
        elif part:
            yield part


def _write(
    space: _Space,
    shape: _Shape,
    lo: int,
    depth: int,
    parts: Parts,
    out: list[Record],
    *,
    recurse: bool,
) -> list[Record]:
    """Write the records of the node at *lo* to *out*, the list ending *parts*: its own,
    those of its mixed children that are leaves' parents (when *recurse*), and for each
    other mixed child a mark followed by a new list; return the list ending *parts*.

    The most common answer among the node's children becomes its wildcard; every child
    answering otherwise is written out (see the module docstring).
    """
    leaf = depth + 1 == shape.levels
    if leaf and not space.v6:
        hosts = space.leaf_hosts(lo)
        if hosts is not None:
            suffix = f".{shape.owner(lo, depth)}"
            for c, written in hosts:
                out += space.data(f"{c}{suffix}", written, _dotted(lo + c))
            return out
    runs = _children(space, shape, lo, depth)
    size = shape.size(depth)
    tally: dict[Key, int] = {}
    for first, end, _, answer in runs:
        if answer is not None:
            tally[answer] = tally.get(answer, 0) + end - first
    # The most common answer, the first seen among equals (as Counter.most_common(1), whose
    # heap cost 5 % of an AXFR's CPU, py-spy 2026-12-06).
    wild = max(tally.items(), key=itemgetter(1))[0] if tally else ()
    owner = shape.owner(lo, depth)
    suffix = f".{owner}" if owner else ""
    if wild:
        first = next(f for f, _, _, a in runs if a == wild)
        out += space.data(f"*{suffix}", space.representative(lo + first * size, lo), None)
    above_leaves = depth + 2 == shape.levels
    for first, end, ref, answer in runs:
        if ref is None:
            if not recurse:
                continue
            if above_leaves:  # a leaf node: written here, no generator of its own
                out = _write(space, shape, lo + first * size, depth + 1, parts, out, recurse=True)
            else:
                parts.append(lo + first * size)
                out = []
                parts.append(out)
            continue
        if answer == wild:
            continue
        if not answer:
            for c in range(first, end):
                out.append(Record(f"{shape.label(c)}{suffix}", f"TYPE{EXISTS_TYPE}", r"\# 0"))
        elif leaf:
            for c in range(first, end):
                address = lo + c
                text = str(IPv6Address(address)) if space.v6 else _dotted(address)
                out += space.data(f"{shape.label(c)}{suffix}", ref, text)
        else:
            rep = space.representative(lo + first * size, lo)
            for c in range(first, end):
                out += space.data(f"*.{shape.label(c)}{suffix}", rep, None)
    return out


def _tree(snapshot: Snapshot, *, v6: bool, allow: bool) -> Iterator[Record]:
    """Yield the records of one address family, depth first (see the module docstring)."""
    space = _Space(snapshot, v6=v6, allow=allow)
    for part in _node(space, V6 if v6 else V4, 0, 0, recurse=True):
        yield from part


def _tree_at(
    snapshot: Snapshot,
    addresses: Iterable[int],
    nets: Iterable[tuple[int, int]],
    *,
    v6: bool,
    allow: bool,
) -> Iterator[Record]:
    """Yield the records of the nodes above *addresses* only, and of the smallest node
    holding each (first, last) range of *nets* with everything inside it and above it:
    what a change there can move.

    A node's records depend on the answers inside it alone, so between two states that
    differ only at *addresses* and inside *nets*, every other node writes the same records.
    """
    space = _Space(snapshot, v6=v6, allow=allow)
    shape = V6 if v6 else V4
    nodes: dict[tuple[int, int], bool] = {}  # (depth, first address): with its subtree
    width = shape.bits * shape.levels

    def above(address: int, deepest: int) -> None:
        for depth in range(deepest + 1):
            span = shape.bits * (shape.levels - depth)
            node = (depth, (address >> span) << span if span < width else 0)
            nodes.setdefault(node, False)

    for address in addresses:
        above(address, shape.levels - 1)
    for first, last in nets:
        depth = 0
        while depth + 1 < shape.levels:
            span = shape.bits * (shape.levels - depth - 1)
            if first >> span != last >> span:
                break
            depth += 1
        above(first, depth)
        span = shape.bits * (shape.levels - depth)
        nodes[(depth, (first >> span) << span if span < width else 0)] = True
    for (depth, lo), subtree in sorted(nodes.items()):
        hi = lo + shape.size(depth) * (1 << shape.bits)
        if depth and space.run_end(lo, hi)[0] >= hi:
            continue  # uniform: written by its parent, not walked
        for part in _node(space, shape, lo, depth, recurse=subtree):
            yield from part


def _data(snapshot: Snapshot, owner: str, value: int, subject: str | None) -> list[Record]:
    """Return the A and TXT records of *value* at *owner* (``$`` is *subject* or the listing)."""
    return _atom_data(snapshot, owner, snapshot.atoms(value), subject)


def _atom_data(
    snapshot: Snapshot, owner: str, atoms: Sequence[int], subject: str | None
) -> list[Record]:
    """Return one A record per code of *atoms* and one TXT record per atom, as our server.

    A list, not a generator: each record of a 1M-host zone passed through one generator
    frame fewer, and most values hold one atom (no set to sort).
    """
    codes = snapshot.atom_code
    if len(atoms) == 1:
        out = [Record(owner, "A", _dotted(int(codes[atoms[0]])))]
    else:
        out = [Record(owner, "A", _dotted(c)) for c in sorted({int(codes[a]) for a in atoms})]
    for atom in atoms:
        text = subject if subject is not None else snapshot.subject(atom)
        expanded = text.encode().join(_pieces(snapshot.template(atom)))  # expand(), cached
        out.append(Record(owner, "TXT", txt_rdata(expanded)))
    return out


def _dotted(address: int) -> str:
    """Return IPv4 *address* in dotted-quad text (as str(IPv4Address), a quarter the cost)."""
    return inet_ntoa(address.to_bytes(4, "big"))


def txt_rdata(text: bytes) -> str:
    """Return TXT rdata in master-file syntax: quoted strings of at most 255 bytes."""
    parts = [text[i : i + 255] for i in range(0, len(text), 255)] or [b""]
    return " ".join('"' + _escaped(part) + '"' for part in parts)


_PLAIN: Final = re.compile(rb"[\x20\x21\x23-\x5b\x5d-\x7e]*")  # printable, no " or \


def _escaped(part: bytes) -> str:
    # Most TXT is plain printable ASCII: one regex match instead of a call per byte (a third
    # of a 1M-host zone's rendering time went to _char, cProfile 2026-12-06).
    if _PLAIN.fullmatch(part):
        return part.decode("ascii")
    return "".join(_char(b) for b in part)


def _char(byte: int) -> str:
    if byte in (0x22, 0x5C):
        return "\\" + chr(byte)
    if 0x20 <= byte < 0x7F:
        return chr(byte)
    return f"\\{byte:03d}"


# -- domains ----------------------------------------------------------------------------------
def _domains(snapshot: Snapshot, *, allow: bool) -> Iterator[Record]:
    """Yield each listed name and its wildcard, names between listed ones, excluded names."""
    nodes = _domain_nodes(snapshot.domain_names(allow=allow))
    for node in sorted(nodes, key=lambda n: n.split(".")[::-1]):
        atoms, listed = snapshot.domain_match(node, allow=allow)
        if atoms:
            for owner in (node, f"*.{node}"):
                yield from _atom_data(snapshot, owner, atoms, listed)
            continue
        parent = node.partition(".")[2]
        if parent and snapshot.domain_match(parent, allow=allow)[0]:
            yield Record(node, f"TYPE{EXISTS_TYPE}", r"\# 0")  # excluded below a listing


def _domain_nodes(names: Sequence[str]) -> set[str]:
    """Return every name in *names* and each of its parents."""
    nodes: set[str] = set()
    for name in names:
        labels = name.split(".")
        for i in range(len(labels)):
            nodes.add(".".join(labels[i:]))
    return nodes

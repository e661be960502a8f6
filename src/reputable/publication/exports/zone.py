"""A snapshot's zones as standard DNS records (RFC 1035 master file; the data AXFR/IXFR send).

Pure: the records are a function of the snapshot and the zone settings. A DNSBL answers
every address of a listed range, which a standard server can only do with wildcards
(RFC 4592), so ranges become label-aligned wildcards: octets for IPv4 (``*.2.0.192``),
nibbles for IPv6. At each node the most common answer among its 256 (or 16) children
becomes the node's wildcard and every child answering otherwise is written out: a different
listing as its own wildcard or host records, an unlisted (excluded) child as a name that
exists with no A or TXT (one record of private type 65280, RFC 6895), which stops the
wildcard above it. An exact name inside listed ranges carries every code that covers it, as
the snapshot already merged them. Domain zones write each listed name and ``*.name``, plus
every name between a listed name and a more specific entry (an empty non-terminal would
otherwise hide the listing above it).

Limits, documented in docs/transfer.md: a ``$`` in a TXT template stands for the queried
name in our server; a wildcard cannot say that, so a range's TXT names the listed range;
``::ffff:a.b.c.d`` names (answered as IPv4 by our server) are not written.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Final

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
    """Yield the zone's records: SOA and NS at the apex, then the data (sorted per part)."""
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


def master_file(settings: ZoneSettings, recs: Iterator[Record]) -> Iterator[str]:
    """Yield the lines of an RFC 1035 master file holding *recs*."""
    yield f"$ORIGIN {settings.name}.\n"
    yield f"$TTL {settings.ttl}\n"
    for rec in recs:
        owner = rec.owner or "@"
        yield f"{owner}\t{rec.rtype}\t{rec.rdata}\n"


# -- IP trees ---------------------------------------------------------------------------------
def _key(snapshot: Snapshot, value: int) -> Key:
    """Return the answer of *value* as comparable (code, template) pairs."""
    return tuple(
        sorted((int(snapshot.atom_code[a]), snapshot.template(a)) for a in snapshot.atoms(value))
    )


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


def _data(snapshot: Snapshot, owner: str, value: int, subject: str | None) -> Iterator[Record]:
    """Yield the A and TXT records of *value* at *owner* (``$`` is *subject* or the listing)."""
    yield from _atom_data(snapshot, owner, snapshot.atoms(value), subject)


def _atom_data(
    snapshot: Snapshot, owner: str, atoms: Sequence[int], subject: str | None
) -> Iterator[Record]:
    """Yield one A record per code of *atoms* and one TXT record per atom, as our server."""
    for code in sorted({int(snapshot.atom_code[a]) for a in atoms}):
        yield Record(owner, "A", str(IPv4Address(code)))
    for atom in atoms:
        text = subject if subject is not None else snapshot.subject(atom)
        yield Record(owner, "TXT", txt_rdata(_expand(snapshot.template(atom), text.encode())))


def _expand(template: bytes, subject: bytes) -> bytes:
    """Return TXT text as our server expands it (``$`` the subject, ``$$`` a dollar)."""
    from reputable.publication.dnsbl.wire import expand  # the one definition of the rule

    return expand(template, subject)


def txt_rdata(text: bytes) -> str:
    """Return TXT rdata in master-file syntax: quoted strings of at most 255 bytes."""
    parts = [text[i : i + 255] for i in range(0, len(text), 255)] or [b""]
    return " ".join('"' + "".join(_char(b) for b in part) + '"' for part in parts)


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

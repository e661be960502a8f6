"""Build snapshot sections from listings (pure: rows, allowlist, zone config and *now* in).

Every answer is a *value*: a tuple of atoms, one per return code, each atom a (code, TXT
template) pair. IPv4 host listings are a sorted address array; every wider IPv4 listing,
every IPv6 listing and every exclusion is flattened by a sweep into non-overlapping intervals,
so a lookup is one exact search plus one bisect. Where a subject has several listings with
the same code, the most specific subject wins, then the most recent listing.
"""

from __future__ import annotations

import re
import socket
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import import_module
from ipaddress import ip_network
from itertools import accumulate, chain, compress, islice, repeat
from math import isnan
from operator import add, and_, contains, eq, is_, lshift, ne, or_, rshift, sub
from types import ModuleType
from typing import Any, Final, Literal, TypeAlias

from reputable.core.cause import Cause
from reputable.publication.settings import ZoneConfig
from reputable.publication.snapshot.layout import EXCLUDED, NONE, Section

TEST_REASON: Final = "RFC 5782 test point: always listed"


def _compiled() -> ModuleType | None:
    """Return the optional C helpers (``_fastbuild.c``, built by setup.py), or None."""
    try:
        return import_module("reputable.publication.snapshot._fastbuild")
    except ImportError:  # no compiler at install time: the Python code below does the same
        return None


#: Packs and sorts the host keys when built: at 1M hosts 0.065 s CPU instead of 0.26 s
#: for the packing and 0.023 s instead of 0.80 s for the sort (/tmp/build2-micro.py, see
#: docs/benchmarks.md, "Snapshot build (session 6, round 2)"). Tests set it to None to check
#: the Python path.
FAST: ModuleType | None = _compiled()

#: (subject, family, cause, reason, listed_at, expires_at) as the store yields them.
ListingRow: TypeAlias = tuple[str, int, str, str, float, float | None]
#: (subject, family, note, expires_at) of an allowlist entry.
AllowRow: TypeAlias = tuple[str, int, str, float | None]
Atom: TypeAlias = tuple[int, str]  # (code as u32, TXT template)


def txt_template(reason: str, lookup_url: str) -> str:
    """Return the TXT template of a listing: ``$`` stands for the queried subject, ``$$`` for $."""
    text = reason.replace("$", "$$")
    return f"{text} {lookup_url}".strip() if lookup_url else text


def subject_template(before: str, after: str, lookup_url: str) -> str:
    """Return the TXT template of the reason *before* + subject + *after* (see `around`)."""
    text = f"{before}${after}"
    return f"{text} {lookup_url}".strip() if lookup_url else text


#: What may follow a ``$`` that stands for the subject: `expand` leaves ``$1`` alone.
_DIGITS: Final = frozenset("0123456789")
#: A reason can hold an IPv4 subject only if it has a digit, a dot and a digit in a row.
_MAYBE_ADDRESS: Final = re.compile(r"\d\.\d")


def around(subject: str, reason: str) -> tuple[str, str] | None:
    """Return (before, after) when *reason* is before + *subject* + after and ``$`` may stand
    for the subject there (no ``$`` around it, no digit after it), else None.

    An rbldnsd file's ``$`` is the listed address, and `import rbldnsd` stores the reason with
    it written out, so a million hosts under ``:127.0.0.2:spam source $`` had a million TXT
    templates. Written back as ``$`` they share one: the same text in every answer (DNS
    expands ``$`` to the queried address, which for a host listing is its subject), and at
    1M hosts 0.3 s less build CPU and ~40 MB less snapshot (docs/benchmarks.md, "One TXT
    template for rbldnsd's `$`").
    """
    at = reason.find(subject)
    if at < 0:
        return None
    before, after = reason[:at], reason[at + len(subject) :]
    if "$" in before or "$" in after or after[:1] in _DIGITS:
        return None
    return before, after


def host_template(subject: str, reason: str, lookup_url: str) -> str:
    """Return the TXT template of an IPv4 host listing: its subject as ``$`` where `around`
    allows, so that such listings share one template."""
    parts = around(subject, reason) if subject in reason else None
    if parts is None:
        return txt_template(reason, lookup_url)
    return subject_template(*parts, lookup_url)


def run_templates(
    subjects: Sequence[str], reasons: Sequence[str], lookup_url: str
) -> str | Sequence[str]:
    """Return `host_template` of every host of a run: one str when they all share it.

    C-level passes over the run (count, find, concatenation, compare); the Python loop only
    for a run whose reasons hold their subjects in different ways.
    """
    n = len(subjects)
    first = reasons[0]
    if reasons.count(first) == n:
        if not _MAYBE_ADDRESS.search(first) or not any(map(first.__contains__, subjects)):
            return txt_template(first, lookup_url)
    elif not any(map(contains, reasons, subjects)):
        return tuple(txt_templates(reasons, lookup_url))
    parts = around(subjects[0], first)
    if parts is not None:
        before, after = parts
        if list(map(str.find, reasons, subjects)).count(len(before)) == n and list(
            map(add, map(add, repeat(before), subjects), repeat(after))
        ) == list(reasons):
            return subject_template(before, after, lookup_url)
    return [host_template(s, r, lookup_url) for s, r in zip(subjects, reasons, strict=True)]


def txt_templates(reasons: Iterable[str], lookup_url: str) -> Iterator[str]:
    """Return `txt_template` of every reason of *reasons*, mapped in C (no Python per item)."""
    reasons = tuple(reasons)
    if "$" in "".join(reasons):
        reasons = tuple(map(str.replace, reasons, repeat("$"), repeat("$$")))
    if not lookup_url:
        return iter(reasons)
    return map(str.strip, map(add, reasons, repeat(f" {lookup_url}")))


#: Cause of an atom as a small int (the index in this tuple), stored per atom.
CAUSES: Final[tuple[Cause, ...]] = tuple(Cause)
NO_TIME: Final = float("nan")  # atom_until of a listing that never expires


@dataclass(slots=True)
class ValueTable:
    """Atoms (one per listing) and interned values (sorted tuples of atom ids, one per code).

    An atom is what DNS answers for one listing, a (code, TXT template) pair, plus what the
    lookup API shows beside it: cause, since, until and the listed subject. Templates are
    interned, so the TXT strings cost no more than before; the per-listing fields are flat
    arrays (no Python object per listing). Template *i* is the UTF-8 bytes
    ``template_blob[template_off[i]:template_off[i + 1]]``: no Python string per template
    (a million per-subject TXT strings cost ~100 MB more as str objects).

    DNS answers only (code, template) pairs, so every value also has an *answer*: the first
    value with the same (code, template) sequence (`answer`). The host array carries both:
    the value (its listings, for the lookup API) and the answer (for DNS), so that a DNS
    worker reads a handful of shared answers instead of one value and atom per host.
    """

    templates: dict[str, int] = field(default_factory=dict)
    template_blob: bytearray = field(default_factory=bytearray)
    template_off: array[int] = field(default_factory=lambda: array("Q", [0]))
    codes: array[int] = field(default_factory=lambda: array("I"))
    template_ids: array[int] = field(default_factory=lambda: array("I"))
    causes: array[int] = field(default_factory=lambda: array("I"))
    since: array[float] = field(default_factory=lambda: array("d"))
    until: array[float] = field(default_factory=lambda: array("d"))
    subject_off: array[int] = field(default_factory=lambda: array("I", [0]))
    subjects: bytearray = field(default_factory=bytearray)
    values: dict[tuple[int, ...], int] = field(default_factory=lambda: {(): NONE})
    val_index: array[int] = field(default_factory=lambda: array("I", [0, 0]))
    val_atoms: array[int] = field(default_factory=lambda: array("I"))
    #: 1 for a template added without interning (every TXT of its chunk differed): its
    #: values answer for themselves, with no entry in `answers` (one per listing for nothing).
    unique_tids: bytearray = field(default_factory=bytearray)
    #: Answer key -> the first value with it. The key of a one-atom value is the int
    #: ``template id << 32 | code``; of a longer one, the tuple of those ints.
    answers: dict[int | tuple[int, ...], int] = field(default_factory=dict)

    def atom(
        self,
        code: int,
        template: str,
        *,
        cause: Cause = Cause.MANUAL,
        since: float = NO_TIME,
        until: float | None = None,
        subject: str = "",
    ) -> int:
        """Return the id of a new atom: one listing's (code, template) and its facts."""
        tid = self.template_id(template)
        self.codes.append(code)
        self.template_ids.append(tid)
        self.causes.append(CAUSES.index(cause))
        self.since.append(since)
        self.until.append(NO_TIME if until is None else until)
        self.subjects += subject.encode("ascii", "replace")
        self.subject_off.append(len(self.subjects))
        return len(self.codes) - 1

    def template_id(self, template: str) -> int:
        """Return the id of the interned TXT *template*."""
        tid = self.templates.get(template)
        if tid is None:
            tid = self.templates[template] = len(self.template_off) - 1
            self.template_blob += template.encode("utf-8")
            self.template_off.append(len(self.template_blob))
            self.unique_tids.append(0)
        return tid

    def _add_templates(self, templates: Iterable[str], *, unique: bool) -> int:
        """Append *templates* to the blob; return the id of the first.

        *unique*: they are not interned (no other template id holds the same text).
        """
        first = len(self.template_off) - 1
        items = tuple(templates)
        text = "".join(items)
        if text.isascii():  # one byte per character: offsets from the lengths, in C
            lengths: Iterable[int] = map(len, items)
            raw = text.encode("ascii")
        else:
            raws = [item.encode("utf-8") for item in items]
            lengths, raw = map(len, raws), b"".join(raws)
        base = len(self.template_blob)
        self.template_blob += raw
        self.template_off.extend(islice(accumulate(lengths, initial=base), 1, None))
        self.unique_tids.extend(repeat(1 if unique else 0, len(self.template_off) - 1 - first))
        return first

    def template_ids_of(self, templates: Iterable[str]) -> list[int]:
        """Return the ids of *templates*, interning the new ones in order of first sight.

        The same ids as `template_id` called on each in turn, with no Python code per item.
        """
        templates = tuple(templates)
        if len(templates) >= 1024 and len(dict.fromkeys(templates)) == len(templates):
            # Every TXT differs (the subject is in it, as rbldnsd's `$`): interning would
            # grow a dict by one entry per listing for nothing. The bytes are the same.
            first = self._add_templates(templates, unique=True)
            return list(range(first, first + len(templates)))
        known = self.templates
        ids = list(map(known.get, templates))
        if None in ids:
            fresh = dict.fromkeys(compress(templates, map(is_, ids, repeat(None))))
            first = self._add_templates(fresh, unique=False)
            known.update(zip(fresh, range(first, first + len(fresh)), strict=True))
            ids = list(map(known.__getitem__, templates))
        return ids  # type: ignore[return-value]  # every None was replaced above

    def key(self, atom: int) -> tuple[int, str]:
        """Return what DNS answers for *atom*: (code, TXT template)."""
        tid = self.template_ids[atom]
        off = self.template_off
        return self.codes[atom], self.template_blob[off[tid] : off[tid + 1]].decode("utf-8")

    def value(self, atom_ids: Iterable[int]) -> int:
        """Return the id of the value made of *atom_ids* (at most one per code is kept)."""
        atoms = set(atom_ids)
        key = tuple(atoms if len(atoms) < 2 else sorted(atoms, key=lambda a: (*self.key(a), a)))
        found = self.values.get(key)
        if found is None:
            found = self.values[key] = self.fresh_value(key)
        return found

    def fresh_value(self, atom_ids: Iterable[int]) -> int:
        """Return the id of a new value made of *atom_ids*, which no other value holds.

        A host listing's atoms are its own, so its value needs no interning: skipping the
        dict saves one tuple and one entry per listed host.
        """
        atoms = set(atom_ids)
        self.val_atoms.extend(
            atoms if len(atoms) < 2 else sorted(atoms, key=lambda a: (*self.key(a), a))
        )
        self.val_index.append(len(self.val_atoms))
        return len(self.val_index) - 2

    def answer(self, value: int) -> int:
        """Return the first value answering as *value* does in DNS (same codes and TXTs)."""
        atoms = self.atoms_of(value)
        tids = self.template_ids
        if len(atoms) == 1:
            tid = tids[atoms[0]]
            if self.unique_tids[tid]:
                return value
            return self.answers.setdefault((tid << 32) | self.codes[atoms[0]], value)
        codes = self.codes
        return self.answers.setdefault(tuple((tids[a] << 32) | codes[a] for a in atoms), value)

    def single_answers(self, atoms: array[int], first_value: int) -> Iterable[int]:
        """Return `answer` of the values ``first_value + i`` made of the one atom ``atoms[i]``.

        C-level map over the whole run: no Python code per value, except per interned
        template in a run that mixes them with unique ones.
        """
        tids = _take(self.template_ids, atoms)
        own = range(first_value, first_value + len(atoms))
        if tids.count(tids[0]) == len(tids):
            # One TXT for the whole run (an import under one rbldnsd default): the old
            # per-value `setdefault` gave every value the same answer, this one lookup (the map
            # chain was ~5 s of a cProfile of the 10M bench build, load ~3).
            if self.unique_tids[tids[0]]:
                return own  # one value (a unique template belongs to one atom)
            codes = _take(self.codes, atoms)
            if codes.count(codes[0]) == len(codes):
                key = (tids[0] << 32) | codes[0]
                return array("I", [self.answers.setdefault(key, first_value)]) * len(atoms)
        unique = bytes(map(self.unique_tids.__getitem__, tids))
        shared = len(unique) - unique.count(1)
        if shared == 0:
            return own
        setdefault = self.answers.setdefault
        if shared == len(unique):
            keys = map(or_, map(lshift, tids, repeat(32)), map(self.codes.__getitem__, atoms))
            return map(setdefault, keys, own)
        # Mixed (the test point's interned TXT among a million `$`-expanded ones): Python
        # code for the interned ones only; one per value cost 0.45 s at 1M (cProfile).
        found = array("I", own)
        codes = self.codes
        at = unique.find(0)
        while at != -1:
            found[at] = setdefault((tids[at] << 32) | codes[atoms[at]], own[at])
            at = unique.find(0, at + 1)
        return found

    def atoms_of(self, value: int) -> array[int]:
        """Return the atom ids of *value*."""
        return self.val_atoms[self.val_index[value] : self.val_index[value + 1]]

    @property
    def value_count(self) -> int:
        """The number of values so far."""
        return len(self.val_index) - 1

    def sections(self) -> dict[str, Section]:
        """Return the value and atom tables as flat arrays and string blobs."""
        off = self.template_off
        lengths = array("I", map(sub, islice(off, 1, None), off))
        offsets = array("I", off)  # the section's width; a blob past 4 GiB fails here
        ids = self.template_ids
        return {
            "val_index": self.val_index,
            "val_atoms": self.val_atoms,
            "atom_code": self.codes,
            "atom_txt_off": _take(offsets, ids),
            "atom_txt_len": _take(lengths, ids),
            "strings": self.template_blob,
            "atom_cause": self.causes,
            "atom_since": self.since,
            "atom_until": self.until,
            "atom_subject_off": self.subject_off,
            "atom_subjects": self.subjects,
        }


@dataclass(slots=True)
class _Span:
    """One listing or exclusion over [lo, hi] during the sweep."""

    lo: int
    hi: int
    rank: tuple[int, float, str]  # (prefix length, listed_at, TXT): larger wins within a code
    code: int  # -1 for an exclusion
    atom: int


def _sweep(
    spans: list[_Span], table: ValueTable, top: int
) -> tuple[list[int], list[int], list[bool]]:
    """Flatten *spans* into interval starts with value ids and an excluded flag per interval."""
    events: dict[int, list[tuple[bool, int]]] = {}
    for index, span in enumerate(spans):
        events.setdefault(span.lo, []).append((True, index))
        if span.hi < top:
            events.setdefault(span.hi + 1, []).append((False, index))
    starts: list[int] = [0]
    vals: list[int] = [NONE]
    excl: list[bool] = [False]
    active: set[int] = set()
    for point in sorted(events):
        for opening, index in events[point]:
            if opening:
                active.add(index)
            else:
                active.discard(index)
        if len(active) < 2:  # most points of a big list: one range or none (no sorting)
            only = spans[next(iter(active))] if active else None
            excluded = only is not None and only.code == -1
            value = NONE if only is None or excluded else table.value((only.atom,))
        else:
            excluded = any(spans[i].code == -1 for i in active)
            best: dict[int, _Span] = {}
            if not excluded:
                for i in active:
                    span = spans[i]
                    held = best.get(span.code)
                    if held is None or span.rank > held.rank:
                        best[span.code] = span
            value = table.value(s.atom for s in best.values())
        if point == starts[-1]:
            vals[-1], excl[-1] = value, excluded
        elif vals[-1] != value or excl[-1] != excluded:
            starts.append(point)
            vals.append(value)
            excl.append(excluded)
    return starts, vals, excl


@dataclass(slots=True)
class Built:
    """The result of a build: header fields and sections for the snapshot file."""

    header: dict[str, object]
    sections: dict[str, Section]


def _net_span(subject: str) -> tuple[int, int, int, int]:
    """Return (family, lo, hi, prefixlen) of an IP subject text (host bits ignored).

    The store's canonical forms are parsed with ``inet_pton`` (a tenth of ``ip_network``'s
    cost: ipaddress was 3 of a 15 s profile of a build with 50k ranges); anything else goes
    to ``ip_network``, which gives the same result or the same ValueError.
    """
    text, slash, plen_text = subject.partition("/")
    family, bits, af = (6, 128, socket.AF_INET6) if ":" in text else (4, 32, socket.AF_INET)
    try:
        raw = socket.inet_pton(af, text)
    except OSError:
        raw = b""
    if raw and (not slash or (plen_text.isascii() and plen_text.isdigit())):
        plen = int(plen_text) if slash else bits
        if plen <= bits:
            host = (1 << (bits - plen)) - 1
            lo = int.from_bytes(raw, "big") & ~host
            return family, lo, lo | host, plen
    net = ip_network(subject, strict=False)
    lo = int(net.network_address)
    return net.version, lo, lo + net.num_addresses - 1, net.prefixlen


CHUNK: Final = 8192  # rows examined together for the column-wise host path


@dataclass(frozen=True, slots=True)
class HostRun:
    """Active IPv4 host listings (no ``/``) of one cause, column by column, in store order.

    What the column-wise path of `build` takes: from a chunk of rows (`_host_columns`), or
    straight from a store that reads them so (``SQLiteStore.listing_chunks``), with no tuple
    per row. Every sequence has one item per host; *expires* None when none expires.
    """

    subjects: Sequence[str]
    cause: str
    reasons: Sequence[str]
    listed: Sequence[float]
    expires: Sequence[float] | None
    #: (before, after) when every reason is before + its subject + after as `around` splits
    #: it (*reasons* is then empty): the store checked it, so no reason was read.
    named: tuple[str, str] | None = None
    #: Rows among the hosts, in order, each as (its place in the run, the row): the run then
    #: holds every row's subject, and its other columns at those places are not read. A
    #: store's window of hosts with a few ranges among them (``SQLiteStore.listing_chunks``).
    others: Sequence[tuple[int, ListingRow]] = ()


#: What `build` reads: chunks of rows (each takes the per-row loop unless `_host_columns`
#: finds it all plain hosts) and runs of hosts already in columns.
Chunk: TypeAlias = "list[ListingRow] | HostRun"


@dataclass(frozen=True, slots=True)
class ListingChunks:
    """The listings of a build as chunks (`Chunk`): `build` takes it in place of rows."""

    chunks: Iterable[Chunk]


def _chunks(rows: Iterable[ListingRow]) -> Iterator[list[ListingRow]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, CHUNK)):
        yield chunk


def _host_columns(cols: tuple[Any, ...], cut: float) -> HostRun | None:
    """Return a chunk's columns *cols* as a run when it is all active IPv4 hosts of one
    cause, else None.

    Every test is one C-level pass (count, join, min), so a chunk that fails costs little.
    """
    subjects, families, causes, reasons, listed, expires = cols
    n = len(subjects)
    if families.count(4) != n or causes.count(causes[0]) != n or "/" in "".join(subjects):
        return None
    nones = expires.count(None)
    if nones == n:
        return HostRun(subjects, causes[0], reasons, listed, None)
    if nones == 0 and min(expires) > cut:
        return HostRun(subjects, causes[0], reasons, listed, expires)
    return None


#: Hosts in a row that `_pieces` packs as a run; shorter stretches go row by row.
MIN_RUN: Final = 32


def _pieces(chunk: list[ListingRow], cut: float) -> Iterator[HostRun | list[ListingRow]]:
    """Yield *chunk* in order as runs of active IPv4 hosts (one cause, all expiring or none)
    and lists of the other rows.

    A bulk import's ranges among its hosts put a few other rows in every chunk: with the whole
    chunk going row by row, a 1M-host store with a /24 every 100 hosts built in 4.3 s CPU
    against 1.3 s without them (docs/benchmarks.md, "Ranges among the hosts of an import").
    The stretches are found with C-level maps over the columns; Python code runs per
    stretch, not per row.
    """
    cols = tuple(zip(*chunk, strict=False))  # the store's 6-tuples; strict costs 35% here
    whole = _host_columns(cols, cut)
    if whole is not None:
        yield whole
        return
    subjects, families, causes, reasons, listed, expires = cols
    n = len(chunk)
    # odd[i]: row i is no IPv4 host, or has expired; a stretch ends before an odd row, after
    # one, and where the cause or whether the row expires changes.
    odd = bytes(map(or_, map(ne, families, repeat(4)), map(contains, subjects, repeat("/"))))
    live = [until for until in expires if until is not None]
    if live and min(live) <= cut:  # expired rows (a store yields none; tests do)
        gone = bytes(until is not None and until <= cut for until in expires)
        odd = bytes(map(or_, odd, gone))
    nones = bytes(map(is_, expires, repeat(None)))
    ends = map(or_, map(ne, causes[1:], causes[:-1]), map(ne, nones[1:], nones[:-1]))
    cuts = compress(range(1, n), map(or_, map(or_, odd[1:], odd[:-1]), ends))
    rows: list[ListingRow] = []
    at = 0
    for end in chain(cuts, [n]):
        if odd[at] or end - at < MIN_RUN:
            rows.extend(chunk[at:end])
        else:
            if rows:
                yield rows
                rows = []
            until = expires[at:end] if not nones[at] else None
            yield HostRun(subjects[at:end], causes[at], reasons[at:end], listed[at:end], until)
        at = end
    if rows:
        yield rows


#: Hosts between two other rows of a run that `_split` packs as a run; fewer go row by row.
#: Lower than MIN_RUN: a stretch of a run costs no columns of its own (the 1M mixed rbldnsd
#: store: ~0.05 s less CPU than at 32, docs/benchmarks.md).
MIN_SPLIT: Final = 8


def _split(run: HostRun) -> Iterator[HostRun | list[ListingRow]]:
    """Yield a run with *others* in order as runs of its hosts and lists of rows."""
    named = run.named
    rows: list[ListingRow] = []
    at = 0
    for end, row in chain(run.others, [(len(run.subjects), None)]):
        if end - at >= MIN_SPLIT:
            if rows:
                yield rows
                rows = []
            yield HostRun(
                run.subjects[at:end],
                run.cause,
                run.reasons[at:end] if named is None else (),
                run.listed[at:end],
                None if run.expires is None else run.expires[at:end],
                named=named,
            )
        else:
            for i in range(at, end):
                subject = run.subjects[i]
                reason = run.reasons[i] if named is None else f"{named[0]}{subject}{named[1]}"
                until = None if run.expires is None else run.expires[i]
                rows.append((subject, 4, run.cause, reason, run.listed[i], until))
        if row is not None:
            rows.append(row)
        at = end + 1
    if rows:
        yield rows


def _host_chunk(
    table: ValueTable,
    run: HostRun,
    hosts: array[int],
    zone: ZoneConfig,
    cause: Cause,
) -> None:
    """Append a run of active IPv4 host listings of *cause*: atoms and packed hosts.

    The same atoms, templates and packed host ints as the per-row loop of `build`, made
    with map/extend over whole columns.
    """
    subjects, reasons, listed, expires = run.subjects, run.reasons, run.listed, run.expires
    n = len(subjects)
    first = len(table.codes)
    # Runs of one item are arrays multiplied, not repeat(): extending an array from an array
    # is one memcpy, from an iterator ~15 ns per item (six columns at 10M hosts: ~1 s).
    table.codes.extend(array("I", [int(zone.codes[cause])]) * n)
    table.causes.extend(array("I", [CAUSES.index(cause)]) * n)
    table.since.extend(listed)
    table.until.extend(array("d", [NO_TIME]) * n if expires is None else expires)
    templates = (
        run_templates(subjects, reasons, zone.lookup_url)
        if run.named is None
        else subject_template(*run.named, zone.lookup_url)
    )
    if isinstance(templates, str):
        # One TXT for the run (an import under one rbldnsd default, `$` or not): one
        # template, the id `template_ids_of` would give each; mapping n equal strings through
        # it was 3.0 s of a cProfile of the 10M bench build (load ~3).
        tid = table.template_id(templates)
        table.template_ids.extend(array("I", [tid]) * n)
    else:
        table.template_ids.extend(table.template_ids_of(templates))
    blob = table.subjects
    base = len(blob)
    blob += "".join(subjects).encode("ascii", "replace")  # one byte per character either way
    table.subject_off.extend(islice(accumulate(map(len, subjects), initial=base), 1, None))
    if FAST is not None:
        hosts.frombytes(FAST.pack_hosts(subjects, first))
        return
    big: Literal["big"] = "big"
    addresses = map(int.from_bytes, map(socket.inet_aton, subjects), repeat(big))
    hosts.extend(map(or_, map(lshift, addresses, repeat(32)), range(first, first + n)))


def build(
    rows: Iterable[ListingRow] | ListingChunks,
    allows: Iterable[AllowRow],
    *,
    ip_zone: ZoneConfig,
    domain_zone: ZoneConfig,
    allow_zone: ZoneConfig,
    serial: int,
    now: datetime,
) -> Built:
    """Return the snapshot of the active *rows* (or `ListingChunks`) and *allows* at *now*."""
    table = ValueTable()
    cut = now.timestamp()
    next_expiry: float | None = None
    # Host listings packed as one u64 each (address << 32 | atom) so that one sort groups
    # them by address: 8 bytes per host (a list of ints held ~56, 560 MB at ten million).
    hosts = array("Q")
    v4_spans: list[_Span] = []
    v6_spans: list[_Span] = []
    domains: dict[str, dict[int, tuple[float, int]]] = {}
    test_atom = table.atom(
        int(ip_zone.codes[Cause.SPAM]), TEST_REASON, cause=Cause.SPAM, subject="127.0.0.2"
    )
    test_domain_atom = table.atom(
        int(domain_zone.codes[Cause.SPAM]), TEST_REASON, cause=Cause.SPAM, subject="test"
    )
    allow_code = int(allow_zone.codes[Cause.MANUAL])
    test_allow_atom = table.atom(allow_code, TEST_REASON, subject="127.0.0.2")
    never4, never6 = 0x7F000001, int(ip_network("::ffff:127.0.0.1").network_address)
    inet_aton = socket.inet_aton
    count = 0
    # The loop below is the snapshot's hot path. What a listing's (cause, reason, zone) gives
    # -- code, TXT template id, cause index -- is looked up once per distinct triple, and
    # the atom's arrays are appended to inline: `table.atom` and `Cause()` per row cost ~12
    # of the 24 CPU seconds of a 1M-host build (cProfile, 2026-12-05, load ~10). Rows come
    # in chunks: a chunk of active IPv4 hosts of one cause (an import, most of a big list)
    # is packed column by column with C-level map/extend (`_host_chunk`), no Python code per
    # row; any other chunk takes the per-row loop.
    kinds: dict[tuple[object, ...], tuple[Cause, int, int, int]] = {}
    codes_append, tids_append = table.codes.append, table.template_ids.append
    causes_append, since_append = table.causes.append, table.since.append
    until_append, offs_append = table.until.append, table.subject_off.append
    subjects = table.subjects
    atom = len(table.codes) - 1
    chunks = rows.chunks if isinstance(rows, ListingChunks) else _chunks(rows)
    pieces = (
        piece
        for chunk in chunks
        for piece in (
            (_split(chunk) if chunk.others else (chunk,))
            if isinstance(chunk, HostRun)
            else _pieces(chunk, cut)
        )
    )
    for piece in pieces:
        if isinstance(piece, HostRun):
            run = piece
            _host_chunk(table, run, hosts, ip_zone, Cause(run.cause))
            if run.expires is not None:
                soonest = min(run.expires)
                next_expiry = soonest if next_expiry is None else min(next_expiry, soonest)
            count += len(run.subjects)
            atom += len(run.subjects)
            continue
        for subject, family, cause_text, reason, listed_at, expires_at in piece:
            if expires_at is not None:
                if expires_at <= cut:
                    continue
                next_expiry = expires_at if next_expiry is None else min(next_expiry, expires_at)
            count += 1
            kind_key: tuple[object, ...] = (cause_text, reason, family)
            parts = None
            if family == 4 and subject in reason and "/" not in subject:
                parts = around(subject, reason)  # as `host_template`: ``$`` for the subject
                if parts is not None:
                    kind_key = (cause_text, *parts, "$")  # four items: never a reason's key
            kind = kinds.get(kind_key)
            if kind is None:
                cause = Cause(cause_text)
                zone = domain_zone if family == 0 else ip_zone
                template = (
                    txt_template(reason, zone.lookup_url)
                    if parts is None
                    else subject_template(*parts, zone.lookup_url)
                )
                kind = (
                    cause,
                    int(zone.codes[cause]),
                    table.template_id(template),
                    CAUSES.index(cause),
                )
                if len(kinds) > 100_000:
                    kinds.clear()  # many distinct reasons: keep the cache small
                kinds[kind_key] = kind
            cause, code, tid, cause_index = kind
            codes_append(code)
            tids_append(tid)
            causes_append(cause_index)
            since_append(listed_at)
            until_append(NO_TIME if expires_at is None else expires_at)
            subjects += subject.encode("ascii", "replace")
            offs_append(len(subjects))
            atom += 1
            if family == 4 and "/" not in subject:
                address = int.from_bytes(inet_aton(subject), "big")
                hosts.append((address << 32) | atom)
            elif family in (4, 6):
                _, lo, hi, plen = _net_span(subject)
                spans = v4_spans if family == 4 else v6_spans
                spans.append(_Span(lo, hi, (plen, listed_at, table.key(atom)[1]), code, atom))
            else:
                held = domains.setdefault(subject, {})
                if (
                    code not in held
                    or held[code][0] < listed_at
                    or (
                        held[code][0] == listed_at
                        and table.key(held[code][1])[1] < table.key(atom)[1]
                    )
                ):
                    held[code] = (listed_at, atom)
    allow_v4: list[_Span] = []
    allow_v6: list[_Span] = []
    allow_domains: dict[str, int] = {}
    allow_count = 0
    for subject, family, note, expires_at in allows:
        if expires_at is not None:
            if expires_at <= cut:
                continue
            next_expiry = expires_at if next_expiry is None else min(next_expiry, expires_at)
        allow_count += 1
        template = txt_template(note or "allowlisted", allow_zone.lookup_url)
        atom = table.atom(allow_code, template, until=expires_at, subject=subject)
        if family == 0:
            allow_domains[subject] = atom
            continue
        fam, lo, hi, plen = _net_span(subject)
        (v4_spans if fam == 4 else v6_spans).append(_Span(lo, hi, (plen, 0.0, ""), -1, 0))
        allow_rank = (plen, 0.0, template)
        (allow_v4 if fam == 4 else allow_v6).append(_Span(lo, hi, allow_rank, allow_code, atom))
    # RFC 5782 §5: 127.0.0.1 and ::ffff:127.0.0.1 are never listed, whatever covers them.
    v4_spans.append(_Span(never4, never4, (32, 0.0, ""), -1, 0))
    v6_spans.append(_Span(never6, never6, (128, 0.0, ""), -1, 0))

    sections: dict[str, Section] = {}
    starts, vals, excl = _sweep(v4_spans, table, 0xFFFFFFFF)
    sections["v4_range_start"] = array("I", starts)
    sections["v4_range_val"] = array("I", vals)
    sections.update(_hosts(hosts, starts, vals, excl, table, test_atom))
    starts6, vals6, _ = _sweep(v6_spans, table, (1 << 128) - 1)
    sections["v6_range_start"] = b"".join(s.to_bytes(16, "big") for s in starts6)
    sections["v6_range_val"] = array("I", vals6)
    _domain_sections(sections, "dom", domains, allow_domains, table, test_domain_atom)
    # The allowlist zone is a DNSxL too: test point listed, 127.0.0.1 never (RFC 5782 §5).
    allow_v4.append(_Span(0x7F000002, 0x7F000002, (32, 0.0, ""), allow_code, test_allow_atom))
    allow_v4.append(_Span(never4, never4, (32, 0.0, ""), -1, 0))
    allow_v6.append(_Span(never6, never6, (128, 0.0, ""), -1, 0))
    a_starts, a_vals, _ = _sweep(allow_v4, table, 0xFFFFFFFF)
    sections["wl4_range_start"] = array("I", a_starts)
    sections["wl4_range_val"] = array("I", a_vals)
    a6_starts, a6_vals, _ = _sweep(allow_v6, table, (1 << 128) - 1)
    sections["wl6_range_start"] = b"".join(s.to_bytes(16, "big") for s in a6_starts)
    sections["wl6_range_val"] = array("I", a6_vals)
    wl_domains = {name: {allow_code: (0.0, atom)} for name, atom in allow_domains.items()}
    test_allow_domain = table.atom(allow_code, TEST_REASON, subject="test")
    _domain_sections(sections, "wldom", wl_domains, {}, table, test_allow_domain)
    sections.update(table.sections())
    header: dict[str, object] = {
        "serial": serial,
        "built_at": cut,
        "next_expiry": next_expiry,
        "listings": count,
        "allows": allow_count,
        "values": table.value_count,
        "atoms": len(table.codes),
    }
    return Built(header, sections)


def _hosts(
    hosts: array[int],
    starts: list[int],
    vals: list[int],
    excl: list[bool],
    table: ValueTable,
    test_atom: int,
) -> dict[str, Section]:
    """Merge host listings with the ranges around them; drop excluded and redundant hosts.

    Most hosts are plain: one listing, outside every range and exclusion. They are found
    and packed with C-level map/compress over the sorted list (their value is their own
    atom); only the others (several listings of one address, or inside a range) take the
    Python loop. Same output as handling each host in turn.
    """
    hosts.append((0x7F000002 << 32) | test_atom)
    if FAST is not None:
        FAST.sort_u64(hosts)
    else:
        ordered = sorted(hosts)  # a list of ints for the sort only (~40 bytes per host)
        del hosts[:]
        hosts.extend(ordered)
        del ordered
    n = len(hosts)
    # Flat arrays, not lists: 4 bytes per host instead of ~36 (an int object and its pointer).
    # flags[i]: host i is in a busy interval (a range or an exclusion) or shares its address.
    flags: Iterable[int]
    if FAST is not None:
        busy = bytes(chain([0], map(or_, map(ne, vals, repeat(NONE)), excl)))
        split = FAST.split_hosts(hosts, array("I", starts), busy)
        addresses, host_atoms, where = (_u32(raw) for raw in split[:3])
        flags = split[3]
    else:
        addresses = array("I", map(rshift, hosts, repeat(32)))
        host_atoms = array("I", map(and_, hosts, repeat(0xFFFFFFFF)))
        where = array("I", map(bisect_right, repeat(starts), addresses))  # interval index + 1
        busy_at = {i + 1 for i, (v, x) in enumerate(zip(vals, excl, strict=True)) if v != NONE or x}
        same = bytes(map(eq, islice(addresses, 1, None), addresses))  # same[i]: i+1 repeats i
        flags = map(
            or_,
            map(or_, map(busy_at.__contains__, where), chain([False], same)),
            chain(same, [False]),
        )
    addrs = array("I")
    host_vals = array("I")
    host_dns = array("I")
    val_atoms, val_index = table.val_atoms, table.val_index
    key, since = table.key, table.since

    def plain(a: int, b: int) -> None:
        if a >= b:
            return
        first_value = len(val_index) - 1
        first_end = len(val_atoms) + 1
        addrs.extend(addresses[a:b])
        atoms = host_atoms[a:b]
        val_atoms.extend(atoms)
        val_index.extend(range(first_end, first_end + b - a))
        host_vals.extend(range(first_value, first_value + b - a))
        host_dns.extend(table.single_answers(atoms, first_value))

    codes, tids, answers = table.codes, table.template_ids, table.answers
    #: (host code, range value) -> the range's atoms of other codes in value order, where
    #: the host's atom goes among them, and their answer keys.
    merged: dict[tuple[int, int], tuple[list[int], int, tuple[int, ...]]] = {}

    def in_range(address: int, atom: int, range_val: int) -> None:
        """The general merge below for one host listing inside a range, from a cache.

        The range's atoms all have codes other than each other's, and those kept the host's
        one: so the value's order (code, TXT, atom) places the host's atom by its code
        alone, whatever its TXT. With the general merge for the 76k in-range hosts of the
        10M bench store `_hosts` took 4.08 s CPU, with this 2.60 s (docs/benchmarks.md,
        "Snapshot build at 10M with ranges").
        """
        code = codes[atom]
        cached = merged.get((code, range_val))
        if cached is None:
            kept = [a for a in table.atoms_of(range_val) if codes[a] != code]
            others = sorted(kept, key=lambda a: (*key(a), a))
            keys = tuple((tids[a] << 32) | codes[a] for a in others)
            cached = (others, sum(codes[a] < code for a in others), keys)
            merged[(code, range_val)] = cached
        others, at, keys = cached
        value = len(val_index) - 1
        val_atoms.extend(others[:at])
        val_atoms.append(atom)
        val_atoms.extend(others[at:])
        val_index.append(len(val_atoms))
        addrs.append(address)
        host_vals.append(value)
        if others:
            own_key = (tids[atom] << 32) | code
            host_dns.append(answers.setdefault((*keys[:at], own_key, *keys[at:]), value))
        else:
            host_dns.append(table.answer(value))

    done = 0
    for i in compress(range(n), flags):
        if i < done:
            continue  # inside the group handled last
        plain(done, i)
        address = addresses[i]
        hint = where[i] - 1
        j = i + 1
        while j < n and addresses[j] == address:
            j += 1
        done = j
        if excl[hint] and address != 0x7F000002:
            continue
        if vals[hint] == NONE and j == i + 1:
            plain(i, j)
            continue
        if j == i + 1:
            in_range(address, host_atoms[i], vals[hint])
            continue
        # Within one code the most recent host listing wins (then the larger TXT, for a
        # deterministic choice); a host listing beats any range listing with the same code.
        best: dict[int, tuple[int, str, int]] = {}
        for packed in hosts[i:j]:
            atom = packed & 0xFFFFFFFF
            code, template = key(atom)
            listed = since[atom]  # NaN for the test point's atom, which sorts first
            candidate = (0 if isnan(listed) else int(listed * 1e6), template, atom)
            if code not in best or candidate > best[code]:
                best[code] = candidate
        atoms = [entry[2] for entry in best.values()]
        range_val = vals[hint]
        if range_val != NONE:
            atoms.extend(a for a in table.atoms_of(range_val) if key(a)[0] not in best)
        # The group's own atoms belong to no other value: no interning needed.
        addrs.append(address)
        value = table.fresh_value(atoms)
        host_vals.append(value)
        host_dns.append(table.answer(value))
    plain(done, n)
    return {"v4_host_addr": addrs, "v4_host_val": host_vals, "v4_host_dns": host_dns}


def _take(table: array[int], index: array[int]) -> array[int]:
    """Return ``table[i]`` for each i of *index*, both u32 arrays (in C when built)."""
    if FAST is not None:  # `sections()` at 10M atoms: 2.2 s (two maps, cProfile) -> 0.1 s CPU
        return _u32(FAST.take_u32(table, index))
    return array("I", map(table.__getitem__, index))


def _u32(raw: bytes) -> array[int]:
    """Return the native u32 array in *raw*."""
    out = array("I")
    out.frombytes(raw)
    return out


def _domain_sections(
    sections: dict[str, Section],
    prefix: str,
    domains: dict[str, dict[int, tuple[float, int]]],
    excluded: dict[str, int],
    table: ValueTable,
    test_atom: int,
) -> None:
    """Add a sorted domain table: names blob, offsets and values (EXCLUDED for allowlisted)."""
    entries: dict[str, int] = {name: EXCLUDED for name in excluded}
    for name, by_code in domains.items():
        if name not in entries:
            entries[name] = table.value(atom for _, atom in by_code.values())
    entries["test"] = table.value([test_atom])
    entries["invalid"] = EXCLUDED
    # Names are stored with their labels reversed ("evil.example" as "example.evil") so that
    # one bisect finds a name and tells whether anything lies below it (empty non-terminal).
    keyed = {reverse_labels(name): entries[name] for name in entries}
    names = sorted(keyed)
    offsets = array("I", [0])
    blob = bytearray()
    for name in names:
        blob += name.encode("ascii")
        offsets.append(len(blob))
    sections[f"{prefix}_names"] = bytes(blob)
    sections[f"{prefix}_off"] = offsets
    sections[f"{prefix}_val"] = array("I", (keyed[name] for name in names))


def reverse_labels(name: str) -> str:
    """Return *name* with its labels in reverse order."""
    return ".".join(reversed(name.split(".")))

"""Build snapshot sections from listings (pure: rows, allowlist, zone config and *now* in).

Every answer is a *value*: a tuple of atoms, one per return code, each atom a (code, TXT
template) pair. IPv4 host listings are a sorted address array; every wider IPv4 listing,
every IPv6 listing and every exclusion is flattened by a sweep into non-overlapping intervals,
so a lookup is one exact search plus one bisect. Where a subject has several listings with
the same code, the most specific subject wins, then the most recent listing.
"""

from __future__ import annotations

import socket
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import ip_network
from typing import Any, Final, TypeAlias

from reputable.core.cause import Cause
from reputable.publication.settings import ZoneConfig
from reputable.publication.snapshot.layout import EXCLUDED, NONE

TEST_REASON: Final = "RFC 5782 test point: always listed"

#: (subject, family, cause, reason, listed_at, expires_at) as the store yields them.
ListingRow: TypeAlias = tuple[str, int, str, str, float, float | None]
#: (subject, family, note, expires_at) of an allowlist entry.
AllowRow: TypeAlias = tuple[str, int, str, float | None]
Atom: TypeAlias = tuple[int, str]  # (code as u32, TXT template)


def txt_template(reason: str, lookup_url: str) -> str:
    """Return the TXT template of a listing: ``$`` stands for the queried subject, ``$$`` for $."""
    text = reason.replace("$", "$$")
    return f"{text} {lookup_url}".strip() if lookup_url else text


#: Cause of an atom as a small int (the index in this tuple), stored per atom.
CAUSES: Final[tuple[Cause, ...]] = tuple(Cause)
NO_TIME: Final = float("nan")  # atom_until of a listing that never expires


@dataclass(slots=True)
class ValueTable:
    """Atoms (one per listing) and interned values (sorted tuples of atom ids, one per code).

    An atom is what DNS answers for one listing, a (code, TXT template) pair, plus what the
    lookup API shows beside it: cause, since, until and the listed subject. Templates are
    interned, so the TXT strings cost no more than before; the per-listing fields are flat
    arrays (no Python object per listing).
    """

    templates: dict[str, int] = field(default_factory=dict)
    template_list: list[str] = field(default_factory=list)
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
            tid = self.templates[template] = len(self.template_list)
            self.template_list.append(template)
        return tid

    def key(self, atom: int) -> tuple[int, str]:
        """Return what DNS answers for *atom*: (code, TXT template)."""
        return self.codes[atom], self.template_list[self.template_ids[atom]]

    def value(self, atom_ids: Iterable[int]) -> int:
        """Return the id of the value made of *atom_ids* (at most one per code is kept)."""
        key = tuple(sorted(set(atom_ids), key=lambda a: (*self.key(a), a)))
        found = self.values.get(key)
        if found is None:
            found = self.values[key] = self.fresh_value(key)
        return found

    def fresh_value(self, atom_ids: Iterable[int]) -> int:
        """Return the id of a new value made of *atom_ids*, which no other value holds.

        A host listing's atoms are its own, so its value needs no interning: skipping the
        dict saves one tuple and one entry per listed host.
        """
        self.val_atoms.extend(sorted(set(atom_ids), key=lambda a: (*self.key(a), a)))
        self.val_index.append(len(self.val_atoms))
        return len(self.val_index) - 2

    def atoms_of(self, value: int) -> array[int]:
        """Return the atom ids of *value*."""
        return self.val_atoms[self.val_index[value] : self.val_index[value + 1]]

    @property
    def value_count(self) -> int:
        """The number of values so far."""
        return len(self.val_index) - 1

    def sections(self) -> dict[str, bytes | array[Any]]:
        """Return the value and atom tables as flat arrays and string blobs."""
        offsets: list[int] = []
        lengths: list[int] = []
        blob = bytearray()
        for template in self.template_list:
            raw = template.encode("utf-8")
            offsets.append(len(blob))
            lengths.append(len(raw))
            blob += raw
        ids = self.template_ids
        return {
            "val_index": self.val_index,
            "val_atoms": self.val_atoms,
            "atom_code": self.codes,
            "atom_txt_off": array("I", (offsets[t] for t in ids)),
            "atom_txt_len": array("I", (lengths[t] for t in ids)),
            "strings": bytes(blob),
            "atom_cause": self.causes,
            "atom_since": self.since,
            "atom_until": self.until,
            "atom_subject_off": self.subject_off,
            "atom_subjects": bytes(self.subjects),
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
    sections: dict[str, bytes | array[Any]]


def _net_span(subject: str) -> tuple[int, int, int, int]:
    """Return (family, lo, hi, prefixlen) of an IP subject text."""
    net = ip_network(subject, strict=False)
    lo = int(net.network_address)
    return net.version, lo, lo + net.num_addresses - 1, net.prefixlen


def build(
    rows: Iterable[ListingRow],
    allows: Iterable[AllowRow],
    *,
    ip_zone: ZoneConfig,
    domain_zone: ZoneConfig,
    allow_zone: ZoneConfig,
    serial: int,
    now: datetime,
) -> Built:
    """Return the snapshot of the active *rows* and *allows* at *now*."""
    table = ValueTable()
    cut = now.timestamp()
    next_expiry: float | None = None
    # Host listings packed as one int each (address, listed_at in µs, atom) so that one sort
    # groups them by address, oldest first: a dict per address would cost ~10x the memory.
    hosts: list[int] = []
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
    # The loop below is the snapshot's hot path (one pass per listing). What a listing's
    # (cause, reason, zone) gives -- code, TXT template id, cause index -- is looked up once
    # per distinct triple, and the atom's arrays are appended to inline: `table.atom` and
    # `Cause()` per row cost ~12 of the 24 CPU seconds of a 1M-host build (cProfile,
    # 2026-12-05, load ~10).
    kinds: dict[tuple[str, str, int], tuple[Cause, int, int, int]] = {}
    codes_append, tids_append = table.codes.append, table.template_ids.append
    causes_append, since_append = table.causes.append, table.since.append
    until_append, offs_append = table.until.append, table.subject_off.append
    subjects = table.subjects
    atom = len(table.codes) - 1
    for subject, family, cause_text, reason, listed_at, expires_at in rows:
        if expires_at is not None:
            if expires_at <= cut:
                continue
            next_expiry = expires_at if next_expiry is None else min(next_expiry, expires_at)
        count += 1
        kind = kinds.get((cause_text, reason, family))
        if kind is None:
            cause = Cause(cause_text)
            zone = domain_zone if family == 0 else ip_zone
            template = txt_template(reason, zone.lookup_url)
            kind = (cause, int(zone.codes[cause]), table.template_id(template), CAUSES.index(cause))
            if len(kinds) > 100_000:
                kinds.clear()  # many distinct reasons: keep the cache small
            kinds[(cause_text, reason, family)] = kind
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
            hosts.append((address << 96) | (int(listed_at * 1e6) << 32) | atom)
        elif family in (4, 6):
            _, lo, hi, plen = _net_span(subject)
            spans = v4_spans if family == 4 else v6_spans
            spans.append(_Span(lo, hi, (plen, listed_at, table.key(atom)[1]), code, atom))
        else:
            held = domains.setdefault(subject, {})
            if (
                code not in held
                or held[code][0] < listed_at
                or (held[code][0] == listed_at and table.key(held[code][1])[1] < table.key(atom)[1])
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

    sections: dict[str, bytes | array[Any]] = {}
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
    hosts: list[int],
    starts: list[int],
    vals: list[int],
    excl: list[bool],
    table: ValueTable,
    test_atom: int,
) -> dict[str, bytes | array[Any]]:
    """Merge host listings with the ranges around them; drop excluded and redundant hosts."""
    hosts.append((0x7F000002 << 96) | test_atom)
    hosts.sort()
    addrs = array("I")
    host_vals = array("I")
    hint = 0
    i = 0
    n = len(hosts)
    last = len(starts) - 1
    key = table.key
    val_atoms, val_index = table.val_atoms, table.val_index
    while i < n:
        packed = hosts[i]
        address = packed >> 96
        i += 1
        while hint < last and starts[hint + 1] <= address:
            hint += 1
        if excl[hint] and address != 0x7F000002:
            while i < n and hosts[i] >> 96 == address:
                i += 1
            continue
        if vals[hint] == NONE and (i == n or hosts[i] >> 96 != address):
            # The common case: one listing of a host outside every range. Its value is its
            # own atom (fresh_value without the sort).
            addrs.append(address)
            val_atoms.append(packed & 0xFFFFFFFF)
            val_index.append(len(val_atoms))
            host_vals.append(len(val_index) - 2)
            continue
        group = [packed]
        while i < n and hosts[i] >> 96 == address:
            group.append(hosts[i])
            i += 1
        # Within one code the most recent host listing wins (then the larger TXT, for a
        # deterministic choice); a host listing beats any range listing with the same code.
        best: dict[int, tuple[int, str, int]] = {}
        for packed in group:
            atom = packed & 0xFFFFFFFF
            code, template = key(atom)
            candidate = ((packed >> 32) & 0xFFFFFFFFFFFFFFFF, template, atom)
            if code not in best or candidate > best[code]:
                best[code] = candidate
        atoms = [entry[2] for entry in best.values()]
        range_val = vals[hint]
        if range_val != NONE:
            atoms.extend(a for a in table.atoms_of(range_val) if key(a)[0] not in best)
        # The group's own atoms belong to no other value: no interning needed.
        addrs.append(address)
        host_vals.append(table.fresh_value(atoms))
    return {"v4_host_addr": addrs, "v4_host_val": host_vals}


def _domain_sections(
    sections: dict[str, bytes | array[Any]],
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

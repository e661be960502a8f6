"""What each of our zones answers for a subject, read from the snapshot DNS answers from.

The HTTP API, the web pages and the Postfix policy service all ask through :func:`lookup`,
so none of them can disagree with DNS: the answer is found with the same snapshot methods
the DNS responder calls (one exact search plus one bisect for an IPv4 address, one bisect
per label for a domain), and the TXT is expanded by the responder's own ``expand``.

A CIDR has no DNS query name; its lookup gathers every listing that answers for some
address inside it (host listings and the ranges the sweep flattened), capped at
``max_listings`` with ``truncated`` set when the cap cut the list.

A snapshot may carry an overlay (snapshot/overlay.py: the addresses changed since it was
built, each answered from a small snapshot of its own). As in the DNS responder, an overlaid
address answers from the overlay and every other subject from the base: :func:`v4_source`
and :func:`v6_source` pick which (one set membership test), and every consumer that reads a
value id itself (the API's fast IPv4 path, the policy service's memo, exports) asks them
first. The holder (snapshot/holder.py) attaches the newest overlay, so no consumer has its
own reload code.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any, Final, Literal

from reputable.core.address import Domain, Subject, format_subject, parse_subject
from reputable.core.cause import Cause
from reputable.core.errors import SnapshotError
from reputable.publication.dnsbl.wire import expand
from reputable.publication.settings import PublicationConfig as Config
from reputable.publication.settings import ZoneConfig
from reputable.publication.snapshot.build import CAUSES
from reputable.publication.snapshot.view import Snapshot

ZoneKind = Literal["ip", "domain", "allow"]
MAX_LISTINGS: Final = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class Zones:
    """The three published zones, as the lookup needs them (names and TXT URLs)."""

    ip: ZoneConfig
    domain: ZoneConfig
    allow: ZoneConfig

    @classmethod
    def of(cls, config: Config) -> Zones:
        """Return the zones of *config*."""
        return cls(ip=config.ip_zone, domain=config.domain_zone, allow=config.allow_zone)


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """One entry a zone answers: the A record (code) and TXT of one listing, with its facts."""

    zone: str  # the zone's DNS name, e.g. "bl.reputable.test"
    kind: ZoneKind
    cause: Cause  # Cause.MANUAL for allowlist entries
    code: IPv4Address
    since: datetime | None  # when the listing started (None for allowlist entries)
    until: datetime | None  # when it ends by itself (None: no end set)
    reason: str  # the listing's reason (the TXT without the lookup URL)
    txt: str  # the TXT exactly as DNS answers it for this subject
    listed_subject: str  # the listed IP, CIDR or domain the answer comes from


@dataclass(frozen=True, slots=True, kw_only=True)
class Lookup:
    """Everything our zones answer for one subject, from one snapshot."""

    subject: str  # canonical text (bare address, CIDR or lower-case ASCII domain)
    serial: int  # the store serial the answer reflects (the overlay's, when one is attached)
    listings: tuple[Answer, ...]  # block zones (IP or domain)
    allows: tuple[Answer, ...]  # allowlist zone
    truncated: bool = False  # a CIDR's listings were cut at the cap

    @property
    def listed(self) -> bool:
        """True when a block zone answers for the subject."""
        return bool(self.listings)

    @property
    def allowlisted(self) -> bool:
        """True when the allowlist zone answers for the subject."""
        return bool(self.allows)


def v4_source(snapshot: Snapshot, address: int) -> Snapshot:
    """Return the snapshot that answers IPv4 *address* (an int): its overlay's or itself."""
    overlay = snapshot.overlay
    if overlay is None or address not in overlay.v4:
        return snapshot
    return overlay.snapshot


def v6_source(snapshot: Snapshot, address: bytes) -> Snapshot:
    """Return the snapshot that answers IPv6 *address* (16 bytes): its overlay's or itself."""
    overlay = snapshot.overlay
    if overlay is None or address not in overlay.v6:
        return snapshot
    return overlay.snapshot


def lookup_text(snapshot: Snapshot, text: str, zones: Zones) -> Lookup:
    """Return the lookup of *text* (IP, CIDR or domain); raise SubjectError when it is none."""
    return lookup(snapshot, parse_subject(text), zones)


def lookup(
    snapshot: Snapshot, subject: Subject, zones: Zones, *, max_listings: int = MAX_LISTINGS
) -> Lookup:
    """Return what each zone answers for *subject* in *snapshot*."""
    if isinstance(subject, Domain):
        atoms, listed = snapshot.domain_match(subject.name)
        allow_atoms, allow_listed = snapshot.domain_match(subject.name, allow=True)
        return Lookup(
            subject=subject.name,
            serial=snapshot.effective_serial,
            listings=_answers(snapshot, atoms, zones.domain, "domain", listed),
            allows=_answers(snapshot, allow_atoms, zones.allow, "allow", allow_listed),
        )
    text = format_subject(subject)
    if subject.prefixlen == subject.max_prefixlen:
        return _address(snapshot, subject.network_address, zones, text)
    return _network(snapshot, subject, zones, text, max_listings)


def lookup_address(
    snapshot: Snapshot, address: IPv4Address | IPv6Address, zones: Zones, text: str = ""
) -> Lookup:
    """Return what each zone answers for one *address* (*text*: its canonical text, if known)."""
    return _address(snapshot, address, zones, text or str(address))


def _address(
    snapshot: Snapshot, address: IPv4Address | IPv6Address, zones: Zones, text: str
) -> Lookup:
    """Return the lookup of one address, as the responder answers its query name."""
    shown = text
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:a.b.c.d answers as a.b.c.d, as in DNS
        shown = str(address)
    serial = snapshot.effective_serial
    if isinstance(address, IPv4Address):
        snapshot = v4_source(snapshot, int(address))
        value = snapshot.v4_value(int(address))
        allow_value = snapshot.wl_v4_value(int(address))
    else:
        snapshot = v6_source(snapshot, address.packed)
        value = snapshot.v6_value(address.packed)
        allow_value = snapshot.wl_v6_value(address.packed)
    return Lookup(
        subject=text,
        serial=serial,
        listings=_answers(snapshot, snapshot.atoms(value), zones.ip, "ip", shown),
        allows=_answers(snapshot, snapshot.atoms(allow_value), zones.allow, "allow", shown),
    )


def _network(
    snapshot: Snapshot, net: IPv4Network | IPv6Network, zones: Zones, text: str, cap: int
) -> Lookup:
    """Return every listing that answers for some address of *net* (at most *cap*).

    Overlaid addresses inside *net* answer from the overlay; the base's entries that hold
    only overlaid addresses (a host listing, a one-address allowlist cut) are left out.
    """
    lo = int(net.network_address)
    hi = int(net.broadcast_address)
    v6 = isinstance(net, IPv6Network)
    changed = _overlaid(snapshot, lo, hi, v6=v6)
    block: list[int] = []
    allow_values: list[int] = []
    if not v6:
        hosts = snapshot.v4_host_addr
        for i in range(bisect_left(hosts, lo), bisect_right(hosts, hi)):
            if changed and int(hosts[i]) in changed:
                continue
            block.append(int(snapshot.v4_host_val[i]))
            if len(block) > cap:
                break
    key: Any = (lambda n: n.to_bytes(16, "big")) if v6 else (lambda n: n)
    top = (1 << net.max_prefixlen) - 1
    for allow, into in ((False, block), (True, allow_values)):
        starts, vals = snapshot.intervals(v6=v6, allow=allow)
        first = bisect_right(starts, key(lo)) - 1
        last = min(bisect_right(starts, key(hi)), first + cap + 1)
        for i in range(first, last):
            if changed and _all_overlaid(starts, i, top, changed, v6=v6):
                continue
            into.append(int(vals[i]))
    groups = [(snapshot, block, allow_values)]
    if changed:
        layer = snapshot.overlay.snapshot  # type: ignore[union-attr]  # changed: one exists
        if v6:
            raw = [n.to_bytes(16, "big") for n in changed]
            groups.insert(
                0, (layer, [layer.v6_value(a) for a in raw], [layer.wl_v6_value(a) for a in raw])
            )
        else:
            groups.insert(
                0,
                (
                    layer,
                    [layer.v4_value(a) for a in changed],
                    [layer.wl_v4_value(a) for a in changed],
                ),
            )
    listings, cut = _distinct([(s, b) for s, b, _ in groups], zones.ip, "ip", cap)
    allows, cut_allow = _distinct([(s, a) for s, _, a in groups], zones.allow, "allow", cap)
    return Lookup(
        subject=text,
        serial=snapshot.effective_serial,
        listings=listings,
        allows=allows,
        truncated=cut or cut_allow,
    )


def _overlaid(snapshot: Snapshot, lo: int, hi: int, *, v6: bool) -> set[int]:
    """Return the overlay's addresses within [*lo*, *hi*] (as ints; none without an overlay)."""
    overlay = snapshot.overlay
    if overlay is None:
        return set()
    if v6:
        return {n for n in (int.from_bytes(a, "big") for a in overlay.v6) if lo <= n <= hi}
    return {n for n in overlay.v4 if lo <= n <= hi}


def _all_overlaid(starts: Any, i: int, top: int, changed: set[int], *, v6: bool) -> bool:
    """True when every address of interval *i* of *starts* is an overlaid one."""
    first = int.from_bytes(starts[i], "big") if v6 else int(starts[i])
    if i + 1 < len(starts):
        nxt = starts[i + 1]
        end = (int.from_bytes(nxt, "big") if v6 else int(nxt)) - 1
    else:
        end = top
    if end - first + 1 > len(changed):
        return False
    return all(n in changed for n in range(first, end + 1))


def _distinct(
    groups: list[tuple[Snapshot, list[int]]], zone: ZoneConfig, kind: ZoneKind, cap: int
) -> tuple[tuple[Answer, ...], bool]:
    """Return the answers of the distinct atoms of the values of each (snapshot, values) group.

    Each is shown with its own subject; an entry in two groups (a range covering an overlaid
    address is in both the overlay and the base) counts once, from the first group.
    """
    seen: dict[tuple[str, int, int], tuple[Snapshot, int]] = {}
    for snapshot, values in groups:
        for value in values:
            for atom in snapshot.atoms(value):
                code = int(snapshot.atom_code[atom])
                key = (snapshot.subject(atom), code, int(snapshot.atom_cause[atom]))
                seen.setdefault(key, (snapshot, atom))
    ordered = sorted(seen)
    found = tuple(_answer(*seen[key], zone, kind, key[0]) for key in ordered[:cap])
    return found, len(ordered) > cap


def _answers(
    snapshot: Snapshot, atoms: tuple[int, ...], zone: ZoneConfig, kind: ZoneKind, shown: str
) -> tuple[Answer, ...]:
    """Return the answers of *atoms* in code order, with ``$`` expanded to *shown*."""
    if not atoms:
        return ()
    if len(atoms) == 1:
        return (_answer(snapshot, atoms[0], zone, kind, shown),)
    ordered = sorted(atoms, key=lambda a: int(snapshot.atom_code[a]))
    return tuple(_answer(snapshot, atom, zone, kind, shown) for atom in ordered)


def _answer(snapshot: Snapshot, atom: int, zone: ZoneConfig, kind: ZoneKind, shown: str) -> Answer:
    """Return one atom as an answer; ``$`` in its TXT stands for *shown*, as in DNS."""
    if not snapshot.has_facts:
        raise SnapshotError(
            f"{snapshot.file.path} predates per-listing facts; run `reputable snapshot build`"
        )
    template = snapshot.template(atom)
    listed = snapshot.subject(atom)
    return Answer(
        zone=zone.name,
        kind=kind,
        cause=CAUSES[snapshot.atom_cause[atom]],
        code=_code(int(snapshot.atom_code[atom])),
        since=_time(snapshot.atom_since[atom]),
        until=_time(snapshot.atom_until[atom]),
        reason=reason_of(template, zone.lookup_url, listed),
        txt=expand(template, shown.encode()).decode("utf-8", "replace"),
        listed_subject=listed,
    )


@lru_cache(maxsize=256)
def _code(value: int) -> IPv4Address:
    """Return return code *value* as an address (a handful of codes, built once each)."""
    return IPv4Address(value)


def reason_of(template: bytes, lookup_url: str, subject: str) -> str:
    """Return the reason a TXT template was made from, for a listing of *subject* (inverse
    of ``txt_template`` and of ``host_template``, whose ``$`` stands for the subject)."""
    text = template.decode("utf-8", "replace")
    if lookup_url:
        text = "" if text == lookup_url else text.removesuffix(" " + lookup_url)
    return expand(text.encode(), subject.encode()).decode("utf-8", "replace")


def _time(stamp: float) -> datetime | None:
    """Return a stored timestamp as UTC time (NaN: none)."""
    return None if math.isnan(stamp) else datetime.fromtimestamp(stamp, UTC)

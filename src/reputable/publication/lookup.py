"""What each of our zones answers for a subject, read from the snapshot DNS answers from.

The HTTP API, the web pages and the Postfix policy service all ask through :func:`lookup`,
so none of them can disagree with DNS: the answer is found with the same snapshot methods
the DNS responder calls (one exact search plus one bisect for an IPv4 address, one bisect
per label for a domain), and the TXT is expanded by the responder's own ``expand``.

A CIDR has no DNS query name; its lookup gathers every listing that answers for some
address inside it (host listings and the ranges the sweep flattened), capped at
``max_listings`` with ``truncated`` set when the cap cut the list.
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
    serial: int  # the snapshot's serial
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
            serial=snapshot.serial,
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
    if isinstance(address, IPv4Address):
        value = snapshot.v4_value(int(address))
        allow_value = snapshot.wl_v4_value(int(address))
    else:
        value = snapshot.v6_value(address.packed)
        allow_value = snapshot.wl_v6_value(address.packed)
    return Lookup(
        subject=text,
        serial=snapshot.serial,
        listings=_answers(snapshot, snapshot.atoms(value), zones.ip, "ip", shown),
        allows=_answers(snapshot, snapshot.atoms(allow_value), zones.allow, "allow", shown),
    )


def _network(
    snapshot: Snapshot, net: IPv4Network | IPv6Network, zones: Zones, text: str, cap: int
) -> Lookup:
    """Return every listing that answers for some address of *net* (at most *cap*)."""
    lo = int(net.network_address)
    hi = int(net.broadcast_address)
    block: list[int] = []
    allow_values: list[int] = []
    v6 = isinstance(net, IPv6Network)
    if not v6:
        hosts = snapshot.v4_host_addr
        for i in range(bisect_left(hosts, lo), bisect_right(hosts, hi)):
            block.append(int(snapshot.v4_host_val[i]))
            if len(block) > cap:
                break
    key: Any = (lambda n: n.to_bytes(16, "big")) if v6 else (lambda n: n)
    for allow, into in ((False, block), (True, allow_values)):
        starts, vals = snapshot.intervals(v6=v6, allow=allow)
        first = bisect_right(starts, key(lo)) - 1
        last = min(bisect_right(starts, key(hi)), first + cap + 1)
        into.extend(int(vals[i]) for i in range(first, last))
    listings, cut = _distinct(snapshot, block, zones.ip, "ip", cap)
    allows, cut_allow = _distinct(snapshot, allow_values, zones.allow, "allow", cap)
    return Lookup(
        subject=text,
        serial=snapshot.serial,
        listings=listings,
        allows=allows,
        truncated=cut or cut_allow,
    )


def _distinct(
    snapshot: Snapshot, values: list[int], zone: ZoneConfig, kind: ZoneKind, cap: int
) -> tuple[tuple[Answer, ...], bool]:
    """Return the answers of the distinct atoms of *values* (each shown with its own subject)."""
    seen: dict[int, None] = {}
    for value in values:
        for atom in snapshot.atoms(value):
            seen.setdefault(atom)
    atoms = sorted(seen, key=lambda a: (snapshot.subject(a), int(snapshot.atom_code[a])))
    found = tuple(
        _answer(snapshot, atom, zone, kind, snapshot.subject(atom)) for atom in atoms[:cap]
    )
    return found, len(atoms) > cap


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
    return Answer(
        zone=zone.name,
        kind=kind,
        cause=CAUSES[snapshot.atom_cause[atom]],
        code=_code(int(snapshot.atom_code[atom])),
        since=_time(snapshot.atom_since[atom]),
        until=_time(snapshot.atom_until[atom]),
        reason=reason_of(template.decode("utf-8", "replace"), zone.lookup_url),
        txt=expand(template, shown.encode()).decode("utf-8", "replace"),
        listed_subject=snapshot.subject(atom),
    )


@lru_cache(maxsize=256)
def _code(value: int) -> IPv4Address:
    """Return return code *value* as an address (a handful of codes, built once each)."""
    return IPv4Address(value)


def reason_of(template: str, lookup_url: str) -> str:
    """Return the reason a TXT template was made from (inverse of ``txt_template``)."""
    if lookup_url:
        template = "" if template == lookup_url else template.removesuffix(" " + lookup_url)
    return template.replace("$$", "$")


def _time(stamp: float) -> datetime | None:
    """Return a stored timestamp as UTC time (NaN: none)."""
    return None if math.isnan(stamp) else datetime.fromtimestamp(stamp, UTC)

"""The incremental overlay: a small snapshot of the subjects changed since the base snapshot.

A full snapshot takes seconds at a million listings; a listing added or removed must answer
within 2 s. So the publisher writes, beside the base snapshot, an *overlay*: a snapshot file
built by the same :func:`build` from the current rows of just the changed IP addresses and of
every range and allowlist entry that covers them (so listed, ranges covering, allowlist cuts
and TXT come out exactly as in a full build), plus the list of addresses it answers for. DNS
workers answer those addresses from the overlay and every other name from the base. The
overlay always holds *every* change since its base (it is recomputed from the base's audit
cursor each time), so one overlay file replaces the previous one atomically, and a full
rebuild in the background makes it empty again.

Changes are learned from the store's audit log (every listing and allowlist write records its
subject in the same transaction). Whatever the overlay cannot express exactly -- a range or a
domain changed, a bulk import (``*``), a policy run (which may drop or retime listings by
source without naming them), more changes than :data:`MAX_SUBJECTS`, or serial moves the audit
log does not account for -- returns None, and the caller rebuilds the whole snapshot.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeGuard, cast

from reputable.core.errors import SnapshotError
from reputable.publication.snapshot.layout import MappedFile, write_snapshot

if TYPE_CHECKING:
    from reputable.publication.snapshot.view import Snapshot

#: Changed subjects an overlay holds at most; beyond that a full rebuild is cheaper to serve.
MAX_SUBJECTS: Final = 2000
#: Audit actions that change exactly the named subject's listings or allowlist entries (an
#: import of a few rows names each, store/bulk.py; a bigger one names ``*``: unnamed).
CHANGES: Final = frozenset({"list", "delist", "allow", "unallow", "import"})
#: Audit actions that change no listing (removal requests, API tokens).
HARMLESS_PREFIXES: Final = ("delist_", "token_")
#: The policy engine's actor: its transactions also drop and retime listings by source.
POLICY_ACTOR: Final = "policy"

ListingRow = tuple[str, int, str, str, float, float | None]
AllowRow = tuple[str, int, str, float | None]


class ChangeSource(Protocol):
    """What the overlay reads from the store (``store/sqlite_changes.py``)."""

    def serial(self) -> int: ...

    def audit_cursor(self) -> int: ...

    def audit_after(self, after: int, limit: int) -> list[tuple[int, str, str, str]]: ...

    def subject_rows(
        self, subjects: Collection[str], *, active_at: datetime
    ) -> tuple[list[ListingRow], list[AllowRow]]: ...


def overlay_path(snapshot_path: Path) -> Path:
    """Return where the overlay of the snapshot at *snapshot_path* is written."""
    return snapshot_path.with_name(snapshot_path.name + ".overlay")


def supports(source: object) -> TypeGuard[ChangeSource]:
    """True when *source* can tell the overlay what changed (the SQL stores can)."""
    return all(hasattr(source, m) for m in ("audit_cursor", "audit_after", "subject_rows"))


def changed_addresses(
    rows: Iterable[tuple[int, str, str, str]], serial_moves: int
) -> list[IPv4Address | IPv6Address] | None:
    """Return the IP addresses the audit *rows* changed, or None when an overlay cannot say.

    *serial_moves*: how far the store's serial moved since the base. Each change transaction
    writes at least one audit row, so more moves than rows means some change went unrecorded.
    """
    found: dict[IPv4Address | IPv6Address, None] = {}
    count = 0
    for _id, actor, action, subject in rows:
        count += 1
        if action.startswith(HARMLESS_PREFIXES):
            continue
        if action not in CHANGES or actor == POLICY_ACTOR or "/" in subject:
            return None
        try:
            found[ip_address(subject)] = None
        except ValueError:
            return None  # a domain (or "*", a bulk write): the full build answers those
    if serial_moves > count or len(found) > MAX_SUBJECTS:
        return None
    return list(found)


def covering(address: IPv4Address | IPv6Address) -> list[str]:
    """Return the subject texts that can cover *address*: itself and each prefix holding it."""
    bits = address.max_prefixlen
    texts = [str(address)]
    texts.extend(str(ip_network(f"{address}/{plen}", strict=False)) for plen in range(bits + 1))
    return texts


def changed_since(
    source: ChangeSource, base: dict[str, Any], serial: int
) -> list[IPv4Address | IPv6Address] | None:
    """Return the addresses changed since the snapshot with header *base*, the store being
    at *serial*; None when its audit cursor is missing or the changes are beyond an overlay."""
    cursor = base.get("audit_cursor")
    if not isinstance(cursor, int):
        return None
    rows = source.audit_after(cursor, MAX_SUBJECTS * 4)
    if len(rows) >= MAX_SUBJECTS * 4:
        return None
    return changed_addresses(rows, serial - int(base["serial"]))


#: Audit rows a rebuild reads to say what changed since the base before it; beyond that
#: (a bulk import's worth), comparing whole zones costs no more than naming every change.
MAX_SINCE_ROWS: Final = 100_000
#: Changed subjects a rebuilt base names at most, for the same reason.
MAX_SINCE_SUBJECTS: Final = 200_000
#: Audit action of a policy transaction's row naming every subject it touched (its detail).
MOVED: Final = "moved"
#: A base older than this has no say across its rebuild: the store deletes ``moved`` rows
#: after a day (store/sqlite_evidence.py), so half a day leaves a margin for clocks.
MOVED_KEPT: Final = 43_200.0


class RebuildSource(ChangeSource, Protocol):
    """What a full rebuild reads to say what changed since the base before it."""

    def moved_after(self, after: int) -> list[str]: ...

    def expired_subjects(self, after: float, until: float) -> list[str]: ...


def rebuild_since(
    source: ChangeSource, base: dict[str, Any], serial: int, now: datetime
) -> dict[str, Any] | None:
    """Return the ``since`` header of a base rebuilt at *now* (the store at *serial*) on the
    previous base with header *base*: every subject whose answers may have moved, or None
    when the audit cannot say (then an IXFR across the rebuild compares whole zones).

    Unlike an overlay, a rebuild can name any change the audit names: hosts, ranges (their
    names are the nodes they cover), domains (a flag: the domain zones are compared whole),
    policy runs (each writes a ``moved`` row naming the subjects it touched, read only when
    the previous base was built by code that knows them: its header has ``moves``), and
    listings or allowlist entries that expired in between (by their expiry index). So a
    policy run every minute on a big zone still gives IXFRs the size of the change. A base
    older than :data:`MOVED_KEPT` gets None: the store deletes ``moved`` rows after a day.
    """
    cursor = base.get("audit_cursor")
    if not isinstance(cursor, int) or not hasattr(source, "moved_after"):
        return None
    if float(base["built_at"]) < now.timestamp() - MOVED_KEPT:
        return None  # policy runs' moved rows may be gone
    rows = source.audit_after(cursor, MAX_SINCE_ROWS)
    if len(rows) >= MAX_SINCE_ROWS or serial - int(base["serial"]) > len(rows):
        return None  # too many to name, or a serial move with no audit row
    subjects: set[str] = set()
    moved = False
    for _id, actor, action, subject in rows:
        if action.startswith(HARMLESS_PREFIXES):
            continue
        if action == MOVED:
            moved = True
            continue
        if action not in CHANGES or (actor == POLICY_ACTOR and not base.get("moves")):
            return None  # a bulk write ("*"), or a policy run that named nothing it moved
        subjects.add(subject)
    extra = cast("RebuildSource", source)
    if moved:
        subjects.update(extra.moved_after(cursor))
    next_expiry = base.get("next_expiry")
    if isinstance(next_expiry, int | float) and next_expiry <= now.timestamp():
        subjects.update(extra.expired_subjects(float(base["built_at"]), now.timestamp()))
    if len(subjects) > MAX_SINCE_SUBJECTS:
        return None
    return _since_of(base, subjects)


def _since_of(base: dict[str, Any], subjects: Iterable[str]) -> dict[str, Any] | None:
    """Return the ``since`` header naming *subjects* (IPs, CIDRs, domains); None on "*"."""
    v4: list[int] = []
    v6: list[int] = []
    nets4: list[list[int]] = []
    nets6: list[list[str]] = []
    domains = False
    for subject in subjects:
        try:
            if "/" in subject:
                net = ip_network(subject, strict=False)
                first, last = int(net.network_address), int(net.broadcast_address)
                if net.version == 4:
                    nets4.append([first, last])
                else:
                    nets6.append([f"{first:032x}", f"{last:032x}"])
            else:
                address = ip_address(subject)
                (v4 if address.version == 4 else v6).append(int(address))
        except ValueError:
            if not subject or subject == "*":
                return None
            domains = True  # a domain: only the domain zones' records move
    return {
        "serial": base["serial"],
        "built_at": base["built_at"],
        "v4": sorted(v4),
        "v6": [f"{a:032x}" for a in sorted(v6)],
        "nets4": sorted(nets4),
        "nets6": sorted(nets6),
        "domains": domains,
    }


@dataclass(slots=True)
class Changed:
    """Where two states may answer otherwise: addresses, ranges (first, last) and whether
    any domain moved (then the zones holding domains are compared whole)."""

    v4: set[int] = field(default_factory=set)
    v6: set[int] = field(default_factory=set)
    nets4: set[tuple[int, int]] = field(default_factory=set)
    nets6: set[tuple[int, int]] = field(default_factory=set)
    domains: bool = False

    def add(self, since: dict[str, Any]) -> None:
        """Add what a base's ``since`` header names."""
        self.v4.update(int(a) for a in since["v4"])
        self.v6.update(int(str(a), 16) for a in since["v6"])
        self.nets4.update((int(a), int(b)) for a, b in since.get("nets4", ()))
        self.nets6.update((int(str(a), 16), int(str(b), 16)) for a, b in since.get("nets6", ()))
        self.domains = self.domains or bool(since.get("domains", False))


def changed_between(old: Snapshot, new: Snapshot, known: Iterable[Snapshot]) -> Changed | None:
    """Return where *new* may answer otherwise than *old*.

    Both are bases with their overlays. On one base, the overlays' addresses; across bases,
    those plus what each newer base's ``since`` names, followed back to *old*'s base through
    the headers of *known* snapshots. None when a link is missing (a base built after a
    change the audit cannot name, or history gone): then only whole zones can tell.
    """
    changed = Changed()
    for snapshot in (old, new):
        if snapshot.overlay is not None:
            changed.v4.update(snapshot.overlay.v4)
            changed.v6.update(int.from_bytes(a, "big") for a in snapshot.overlay.v6)
    headers = {_base_id(s.file.header): s.file.header for s in known}
    target = _base_id(old.file.header)
    header = new.file.header
    for _ in range(len(headers) + 1):
        if _base_id(header) == target:
            return changed
        since = header.get("since")
        if not isinstance(since, dict):
            return None
        changed.add(since)
        previous = (since["serial"], since["built_at"])
        if previous == target:
            return changed
        found = headers.get(previous)
        if found is None:
            return None
        header = found
    return None


def _base_id(header: dict[str, Any]) -> tuple[Any, Any]:
    return header.get("serial"), header.get("built_at")


@dataclass(frozen=True, slots=True)
class OverlayInput:
    """The rows an overlay is built from and the addresses it answers for."""

    serial: int
    addresses: list[IPv4Address | IPv6Address]
    listings: list[ListingRow]
    allows: list[AllowRow]


def gather(source: ChangeSource, base: dict[str, Any], now: datetime) -> OverlayInput | None:
    """Return what an overlay on the base snapshot with header *base* needs, or None.

    None: the base has no audit cursor (an older build), or the changes since it are beyond
    what an overlay expresses (see :func:`changed_addresses`); rebuild in full then.
    """
    serial = source.serial()
    addresses = changed_since(source, base, serial)
    if addresses is None:
        return None
    listings: dict[ListingRow, None] = {}
    allows: dict[AllowRow, None] = {}
    for address in addresses:
        got, allowed = source.subject_rows(covering(address), active_at=now)
        listings.update(dict.fromkeys(got))
        allows.update(dict.fromkeys(allowed))
    return OverlayInput(serial, addresses, list(listings), list(allows))


def write_overlay(
    path: Path,
    base: dict[str, Any],
    data: OverlayInput,
    header: dict[str, Any],
    sections: dict[str, Any],
) -> None:
    """Write the overlay built from *data* on *base* (atomic replace)."""
    v4 = sorted(int(a) for a in data.addresses if a.version == 4)
    v6 = sorted(int(a) for a in data.addresses if a.version == 6)
    header = dict(
        header,
        serial=data.serial,
        overlay={
            "base_serial": base["serial"],
            "base_built_at": base["built_at"],
            "v4": v4,
            "v6": [f"{a:032x}" for a in v6],
        },
    )
    write_snapshot(path, header, sections)


def remove_overlay(snapshot_path: Path) -> None:
    """Delete the overlay of *snapshot_path* (a new base holds all it held)."""
    overlay_path(snapshot_path).unlink(missing_ok=True)


def overlay_of(base: MappedFile, path: Path) -> MappedFile | None:
    """Return the overlay at *path* if it was built on *base*, else None (stale or absent)."""
    try:
        mapped = MappedFile(path)
    except SnapshotError:
        return None
    meta = mapped.header.get("overlay")
    if (
        not isinstance(meta, dict)
        or meta.get("base_serial") != base.header.get("serial")
        or meta.get("base_built_at") != base.header.get("built_at")
    ):
        return None
    return mapped

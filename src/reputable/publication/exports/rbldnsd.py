"""rbldnsd data files of one zone: ip4set, ip6trie and dnset, one dataset per return code (pure).

Our server answers every code that matches a name, and within one code the most specific
subject wins, then the most recent listing (publication/snapshot/build.py). rbldnsd answers
every *dataset* that matches, and inside one ip4set the most specific octet level wins
(rbldnsd_ip4set.c), inside ip6trie the longest prefix, inside dnset the exact name, then the
longest wildcard. So each code gets its own dataset, flattened here into disjoint ranges with
one TXT each; an allowlist entry inside a listed range becomes a ``!`` line strictly inside
it (so it wins in every dataset type), and listings inside an allowlisted range are dropped.
Only ``write`` touches the file system: a temporary file in the same folder, then os.replace.
"""

from __future__ import annotations

import heapq
import os
import tempfile
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    summarize_address_range,
)
from pathlib import Path
from typing import Final

from reputable.config import ZoneConfig
from reputable.core.address import Domain, format_subject
from reputable.core.cause import LISTING_CAUSES, Cause
from reputable.listings.model import AllowEntry, Listing
from reputable.publication.snapshot.build import TEST_REASON, txt_template

NAME: Final = "rbldnsd"
NEVER_V4: Final = int(IPv4Address("127.0.0.1"))
NEVER_V6: Final = int(IPv6Address("::ffff:127.0.0.1"))
TEST_V4: Final = int(IPv4Address("127.0.0.2"))
TXT_MAX: Final = 254  # rbldnsd cuts every TXT to 254 bytes (txtsubst in rbldnsd_packet.c)

Span = tuple[int, int, tuple[int, float, str], str]  # (first, last, rank, TXT line value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    """Zone metadata written at the top of every file ($SOA, $NS, $TTL)."""

    serial: int
    nameservers: tuple[str, ...]
    hostmaster: str
    negative_ttl: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Dataset:
    """One rbldnsd dataset: its type, file suffix (``spam.ip4set``) and text."""

    kind: str  # "ip4set", "ip6trie" or "dnset"
    suffix: str
    text: str
    entries: int
    exclusions: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ZoneExport:
    """Every dataset of one zone, and what rbldnsd will answer differently from us."""

    zone: str
    datasets: tuple[Dataset, ...]
    warnings: tuple[str, ...]


def render(
    listings: Iterable[Listing],
    allows: Iterable[AllowEntry],
    *,
    zone: ZoneConfig,
    domain: bool,
    header: Header,
) -> ZoneExport:
    """Return the rbldnsd datasets answering like our server for the active *listings*."""
    groups = _code_groups(zone)
    warnings: dict[str, str] = {}
    wanted = [x for x in listings if isinstance(x.subject, Domain) == domain]
    allowed = [a for a in allows if isinstance(a.subject, Domain) == domain]
    datasets: list[Dataset] = []
    if domain:
        for code, causes in groups:
            datasets.append(_domain_dataset(wanted, allowed, zone, code, causes, header, warnings))
    else:
        for version, kind in ((4, "ip4set"), (6, "ip6trie")):
            for code, causes in groups:
                datasets.append(
                    _ip_dataset(
                        wanted, allowed, zone, version, kind, code, causes, header, warnings
                    )
                )
    return ZoneExport(zone=zone.name, datasets=tuple(datasets), warnings=tuple(warnings.values()))


def _code_groups(zone: ZoneConfig) -> list[tuple[IPv4Address, tuple[Cause, ...]]]:
    """Return each distinct return code with its causes, in cause order."""
    groups: dict[IPv4Address, list[Cause]] = {}
    for cause in LISTING_CAUSES:
        groups.setdefault(zone.codes[cause], []).append(cause)
    return [(code, tuple(causes)) for code, causes in groups.items()]


def _header(zone: ZoneConfig, header: Header, what: str) -> list[str]:
    ns = " ".join(header.nameservers) or f"ns.{zone.name}"
    first_ns = header.nameservers[0] if header.nameservers else f"ns.{zone.name}"
    return [
        f"# reputable export for rbldnsd: zone {zone.name}, {what}, serial {header.serial}",
        f"$SOA {zone.ttl} {first_ns} {header.hostmaster} {header.serial} 3600 600 604800"
        f" {header.negative_ttl}",
        f"$NS {zone.ttl} {ns}",
        f"$TTL {zone.ttl}",
    ]


def txt_value(template: str, subject: str, warnings: dict[str, str]) -> str:
    """Return *template* as it must appear after ``:A:`` so rbldnsd answers the same TXT."""
    clean = " ".join(template.splitlines()).replace("\0", " ")
    if clean != template:
        warnings.setdefault("newline", f"{subject}: line breaks in a reason are written as spaces")
    if clean != clean.strip(" \t"):
        warnings.setdefault("blank", f"{subject}: rbldnsd drops blanks around a TXT")
    if len(clean.encode("utf-8")) > TXT_MAX:
        warnings.setdefault("long", f"{subject}: rbldnsd cuts TXT answers to {TXT_MAX} bytes")
    if any(clean[i + 1 : i + 2].isdigit() for i in _lone_dollars(clean)):
        warnings.setdefault("var", f"{subject}: rbldnsd reads '$<digit>' as a variable, not $")
    # rbldnsd drops one leading "=" (it marks an entry that skips the $= base template).
    return "=" + clean if clean.startswith("=") else clean


def _lone_dollars(text: str) -> list[int]:
    """Return the offsets of ``$`` that stand for the subject (not part of ``$$``)."""
    found: list[int] = []
    i = 0
    while i < len(text):
        if text[i] == "$":
            if text[i + 1 : i + 2] == "$":
                i += 2
                continue
            found.append(i)
        i += 1
    return found


# -- IP datasets ----------------------------------------------------------------------------


def _ip_dataset(
    listings: Sequence[Listing],
    allows: Sequence[AllowEntry],
    zone: ZoneConfig,
    version: int,
    kind: str,
    code: IPv4Address,
    causes: tuple[Cause, ...],
    header: Header,
    warnings: dict[str, str],
) -> Dataset:
    """Return one ip4set/ip6trie dataset: the listings of *causes*, flattened, with holes."""
    spans: list[Span] = []
    for item in listings:
        net = item.subject
        if item.cause not in causes or isinstance(net, Domain) or net.version != version:
            continue
        template = txt_template(item.reason, zone.lookup_url)
        lo = int(net.network_address)
        rank = (net.prefixlen, item.listed_at.timestamp(), template)
        spans.append((lo, lo + net.num_addresses - 1, rank, template))
    never = NEVER_V4 if version == 4 else NEVER_V6
    holes = [(never, never)]
    for entry in allows:
        net = entry.subject
        if not isinstance(net, Domain) and net.version == version:
            lo = int(net.network_address)
            holes.append((lo, lo + net.num_addresses - 1))
    spam_code = version == 4 and Cause.SPAM in causes
    if spam_code:  # RFC 5782 §5 test point: always listed, host listings of it still win
        spans.append((TEST_V4, TEST_V4, (32, float("-inf"), TEST_REASON), TEST_REASON))
    merged = _merge(holes)
    if spam_code:
        merged = _merge([h for lo, hi in merged for h in _cut((lo, hi), TEST_V4)])
    lines = _header(zone, header, f"{'+'.join(c.value for c in causes)} ({code}), IPv{version}")
    entries = exclusions = 0
    starts = [lo for lo, _ in merged]
    for lo, hi, template in _flatten(spans):
        value = f":{code}:{txt_value(template, _addr_text(version, lo), warnings)}"
        for net in _cidrs(version, lo, hi):
            n_lo = int(net.network_address)
            n_hi = n_lo + net.num_addresses - 1
            pieces = _clip(merged, starts, n_lo, n_hi)
            if pieces and pieces[0] == (n_lo, n_hi):
                continue  # wholly allowlisted
            lines.append(f"{format_subject(net)} {value}")
            entries += 1
            for p_lo, p_hi in pieces:
                for hole in _cidrs(version, p_lo, p_hi):
                    lines.append(f"!{format_subject(hole)}")
                    exclusions += 1
    suffix = f"{'+'.join(c.value for c in causes)}.{kind}"
    return Dataset(
        kind=kind,
        suffix=suffix,
        text="\n".join(lines) + "\n",
        entries=entries,
        exclusions=exclusions,
    )


def _cidrs(version: int, lo: int, hi: int) -> Iterator[IPv4Network | IPv6Network]:
    """Return the fewest CIDR networks covering [lo, hi] of IP *version*."""
    if version == 4:
        return summarize_address_range(IPv4Address(lo), IPv4Address(hi))
    return summarize_address_range(IPv6Address(lo), IPv6Address(hi))


def _addr_text(version: int, value: int) -> str:
    return str(IPv4Address(value) if version == 4 else IPv6Address(value))


def _flatten(spans: list[Span]) -> list[tuple[int, int, str]]:
    """Return disjoint (first, last, TXT) ranges: where spans overlap, the highest rank wins."""
    if not spans:
        return []
    order = sorted(range(len(spans)), key=lambda i: spans[i][2])
    strength = {index: position for position, index in enumerate(order)}
    by_start = sorted(range(len(spans)), key=lambda i: spans[i][0])
    points = sorted({s[0] for s in spans} | {s[1] + 1 for s in spans})
    heap: list[tuple[int, int]] = []
    out: list[tuple[int, int, str]] = []
    k = 0
    for n, point in enumerate(points):
        while k < len(by_start) and spans[by_start[k]][0] == point:
            heapq.heappush(heap, (-strength[by_start[k]], by_start[k]))
            k += 1
        while heap and spans[heap[0][1]][1] < point:
            heapq.heappop(heap)
        if not heap or n + 1 == len(points):
            continue
        template = spans[heap[0][1]][3]
        last = points[n + 1] - 1
        if out and out[-1][1] == point - 1 and out[-1][2] == template:
            out[-1] = (out[-1][0], last, template)
        else:
            out.append((point, last, template))
    return out


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Return the union of *ranges* as sorted disjoint ranges."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _cut(span: tuple[int, int], point: int) -> list[tuple[int, int]]:
    """Return *span* without *point*."""
    lo, hi = span
    if not lo <= point <= hi:
        return [span]
    return [r for r in ((lo, point - 1), (point + 1, hi)) if r[0] <= r[1]]


def _clip(
    merged: list[tuple[int, int]], starts: list[int], lo: int, hi: int
) -> list[tuple[int, int]]:
    """Return the parts of the disjoint *merged* ranges inside [lo, hi]."""
    i = max(bisect_right(starts, lo) - 1, 0)
    out: list[tuple[int, int]] = []
    while i < len(merged) and merged[i][0] <= hi:
        a, b = merged[i]
        if b >= lo:
            out.append((max(a, lo), min(b, hi)))
        i += 1
    return out


# -- domain datasets ------------------------------------------------------------------------


def _domain_dataset(
    listings: Sequence[Listing],
    allows: Sequence[AllowEntry],
    zone: ZoneConfig,
    code: IPv4Address,
    causes: tuple[Cause, ...],
    header: Header,
    warnings: dict[str, str],
) -> Dataset:
    """Return one dnset: ``.name`` per listed domain, ``!.name`` for allowlisted names below."""
    allowed = {a.subject.name for a in allows if isinstance(a.subject, Domain)} | {"invalid"}
    allowed.discard("test")  # RFC 5782 §5: always listed, even when allowlisted
    best: dict[str, tuple[float, str]] = {}
    for item in listings:
        if item.cause not in causes or not isinstance(item.subject, Domain):
            continue
        name = item.subject.name
        if name == "test" or any(p.name in allowed for p in item.subject.parents()):
            continue
        candidate = (item.listed_at.timestamp(), txt_template(item.reason, zone.lookup_url))
        if name not in best or candidate > best[name]:
            best[name] = candidate
    if Cause.SPAM in causes:
        best["test"] = (0.0, TEST_REASON)
    lines = _header(zone, header, f"{'+'.join(c.value for c in causes)} ({code}), domains")
    for name in sorted(best, key=lambda n: n.split(".")[::-1]):
        lines.append(f".{name} :{code}:{txt_value(best[name][1], name, warnings)}")
    holes = sorted(a for a in allowed if any(p.name in best for p in Domain(a).parents()[1:]))
    lines.extend(f"!.{name}" for name in holes)
    suffix = f"{'+'.join(c.value for c in causes)}.dnset"
    return Dataset(
        kind="dnset",
        suffix=suffix,
        text="\n".join(lines) + "\n",
        entries=len(best),
        exclusions=len(holes),
    )


# -- files ----------------------------------------------------------------------------------


def dataset_path(base: Path, dataset: Dataset) -> Path:
    """Return the file of *dataset* for the base name *base* (``BASE.spam.ip4set``)."""
    return base.with_name(f"{base.name}.{dataset.suffix}")


def zone_specs(export: ZoneExport, base: Path) -> list[str]:
    """Return the rbldnsd ``zone:type:file`` arguments that load *export* from *base*."""
    return [f"{export.zone}:{d.kind}:{dataset_path(base, d)}" for d in export.datasets]


def write(export: ZoneExport, base: Path) -> list[Path]:
    """Write every dataset atomically (temporary file in the same folder, then rename)."""
    written: list[Path] = []
    for dataset in export.datasets:
        path = dataset_path(base, dataset)
        write_atomic(path, dataset.text)
        written.append(path)
    return written


def write_atomic(path: Path, text: str) -> None:
    """Replace *path* with *text* so that a reader sees the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; rbldnsd drops root and mirrors rsync it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

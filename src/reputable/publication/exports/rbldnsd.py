"""rbldnsd data files of one zone: one combined ip4set or dnset, ip6trie per code (pure).

Our server answers every code that matches a name, and within one code the most specific
subject wins, then the most recent listing (publication/snapshot/build.py). rbldnsd answers
every *dataset* that matches; inside one ip4set the most specific octet level wins and every
entry on that level is answered (rbldnsd_ip4set.c), inside dnset the exact name, then the
longest wildcard, again with every entry of that name; ip6trie keeps one entry per prefix.
So the IPv4 listings of all codes go into one ip4set, flattened into disjoint ranges that
each carry one line per code (the file the issue's ``bl.reputable.test:ip4set:FILE`` loads);
domains go into one dnset where each listed name also carries the codes of its listed
parents; IPv6 gets one ip6trie per code. An allowlist entry inside a listed range becomes a
``!`` line strictly inside it (so it wins in every dataset type), and listings inside an
allowlisted range are dropped. Only ``write`` touches the file system: a temporary file in
the same folder, then os.replace.
"""

from __future__ import annotations

import heapq
import os
import re
import shutil
import sys
import tempfile
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    summarize_address_range,
)
from itertools import groupby, repeat
from operator import add, itemgetter
from pathlib import Path
from socket import inet_aton
from typing import BinaryIO, Final

from reputable.core.address import Domain, format_subject
from reputable.core.cause import LISTING_CAUSES, Cause
from reputable.core.errors import InputError
from reputable.listings.model import AllowEntry, Listing
from reputable.publication.settings import ZoneConfig
from reputable.publication.snapshot.build import (
    TEST_REASON,
    host_template,
    txt_template,
    txt_templates,
)

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
    """Return the rbldnsd datasets answering like our server for the active *listings*.

    The first dataset is the combined one written to the output path itself (ip4set for the
    IP zone, dnset for the domain zone); the IP zone's ip6trie datasets, one per code, follow.
    """
    groups = _code_groups(zone)
    warnings: dict[str, str] = {}
    wanted = [x for x in listings if isinstance(x.subject, Domain) == domain]
    allowed = [a for a in allows if isinstance(a.subject, Domain) == domain]
    if domain:
        datasets = [_domain_dataset(wanted, allowed, zone, groups, header, warnings)]
    else:
        datasets = [_ip4_dataset(wanted, allowed, zone, groups, header, warnings)]
        for code, causes in groups:
            datasets.append(_ip6_dataset(wanted, allowed, zone, code, causes, header, warnings))
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


_DOLLARS: Final = re.compile(r"\$\$|\$")
#: A TXT that txt_value returns unchanged, warning about nothing, if its UTF-8 fits TXT_MAX:
#: no line break (str.splitlines') or NUL, no blank at either end, no leading "=", and no "$"
#: before a digit (or before a non-ASCII character, which str.isdigit may call one).
_PLAIN: Final = re.compile(
    r"(?![ \t=])(?:[^$\0\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]++|\$(?![^\x20-\x2f\x3a-\x7e]))*+"
    r"(?<![ \t])"  # possessive (Python 3.11): a trailing blank fails at once, no backtracking
)
#: `_PLAIN` of every line of a text of "\n"-ended templates at once ("\n" is no template's).
_PLAIN_LINES: Final = re.compile(
    r"(?:(?![ \t=])(?:[^$\0\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]++|\$(?![^\x20-\x2f\x3a-\x7e\n]))*+"
    r"(?<![ \t])\n)*+"
)


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
    if "$" not in text:
        return []
    # Left to right, "$$" is consumed as a pair before a lone "$" is tried: the scan of
    # rbldnsd's own loop, in C (a Python loop per character cost ~6 s per 1M host lines).
    return [m.start() for m in _DOLLARS.finditer(text) if m.end() - m.start() == 1]


# -- IP datasets ----------------------------------------------------------------------------


Segment = tuple[int, int, tuple[tuple[IPv4Address, str], ...]]  # (first, last, (code, TXT)...)


def _spans(
    listings: Sequence[Listing], zone: ZoneConfig, version: int, causes: tuple[Cause, ...]
) -> list[Span]:
    """Return the listings of *causes* of IP *version* as ranked spans."""
    spans: list[Span] = []
    for item in listings:
        net = item.subject
        if item.cause not in causes or isinstance(net, Domain) or net.version != version:
            continue
        template = txt_template(item.reason, zone.lookup_url)
        lo = int(net.network_address)
        # Ties between host listings of one address go to the larger template, as in the
        # snapshot, which writes a host's own address in its TXT as ``$`` (`host_template`).
        ranked = template
        if version == 4 and net.prefixlen == 32:
            ranked = host_template(str(net.network_address), item.reason, zone.lookup_url)
        rank = (net.prefixlen, item.listed_at.timestamp(), ranked)
        spans.append((lo, lo + net.num_addresses - 1, rank, template))
    if version == 4 and Cause.SPAM in causes:
        # RFC 5782 §5 test point: always listed, host listings of it still win.
        spans.append((TEST_V4, TEST_V4, (32, float("-inf"), TEST_REASON), TEST_REASON))
    return spans


def _holes(allows: Sequence[AllowEntry], version: int) -> list[tuple[int, int]]:
    """Return the allowlisted ranges of IP *version*, 127.0.0.1 included, merged."""
    never = NEVER_V4 if version == 4 else NEVER_V6
    holes = [(never, never)]
    for entry in allows:
        net = entry.subject
        if not isinstance(net, Domain) and net.version == version:
            lo = int(net.network_address)
            holes.append((lo, lo + net.num_addresses - 1))
    return _merge(holes)


def _ip4_dataset(
    listings: Sequence[Listing],
    allows: Sequence[AllowEntry],
    zone: ZoneConfig,
    groups: list[tuple[IPv4Address, tuple[Cause, ...]]],
    header: Header,
    warnings: dict[str, str],
) -> Dataset:
    """Return the one ip4set of every code: disjoint ranges, one line per code on each."""
    holes = _holes(allows, 4)
    starts = [lo for lo, _ in holes]
    test_allowed = bool(_clip(holes, starts, TEST_V4, TEST_V4))
    layers: list[tuple[IPv4Address, list[tuple[int, int, str]]]] = []
    for code, causes in groups:
        flat = [  # ranges wholly allowlisted answer nothing: they must not split the others
            (lo, hi, t)
            for lo, hi, t in _flatten(_spans(listings, zone, 4, causes))
            if _clip(holes, starts, lo, hi) != [(lo, hi)] or lo == hi == TEST_V4
        ]
        if test_allowed and Cause.SPAM not in causes:  # only the test point answers there
            flat = [(a, b, t) for lo, hi, t in flat for a, b in _cut((lo, hi), TEST_V4)]
        layers.append((code, flat))
    holes = _merge([h for lo, hi in holes for h in _cut((lo, hi), TEST_V4)])
    lines = _header(zone, header, "every code, IPv4")
    entries, exclusions = _ip_lines(4, _overlay(layers), holes, lines, warnings)
    return Dataset(
        kind="ip4set",
        suffix="",
        text="\n".join(lines) + "\n",
        entries=entries,
        exclusions=exclusions,
    )


def _ip6_dataset(
    listings: Sequence[Listing],
    allows: Sequence[AllowEntry],
    zone: ZoneConfig,
    code: IPv4Address,
    causes: tuple[Cause, ...],
    header: Header,
    warnings: dict[str, str],
) -> Dataset:
    """Return one ip6trie of *causes* (ip6trie keeps one entry per prefix: one file per code)."""
    segments: list[Segment] = [
        (lo, hi, ((code, template),))
        for lo, hi, template in _flatten(_spans(listings, zone, 6, causes))
    ]
    lines = _header(zone, header, f"{'+'.join(c.value for c in causes)} ({code}), IPv6")
    entries, exclusions = _ip_lines(6, segments, _holes(allows, 6), lines, warnings)
    return Dataset(
        kind="ip6trie",
        suffix=f"{'+'.join(c.value for c in causes)}.ip6trie",
        text="\n".join(lines) + "\n",
        entries=entries,
        exclusions=exclusions,
    )


def _ip_lines(
    version: int,
    segments: Iterable[Segment],
    holes: list[tuple[int, int]],
    lines: list[str],
    warnings: dict[str, str],
) -> tuple[int, int]:
    """Append each segment as CIDR lines (one per code) with ``!`` holes; return the counts."""
    entries = exclusions = 0
    starts = [lo for lo, _ in holes]
    for lo, hi, values in segments:
        subject = _addr_text(version, lo)
        texts = [f":{code}:{txt_value(template, subject, warnings)}" for code, template in values]
        for net in _cidrs(version, lo, hi):
            n_lo = int(net.network_address)
            n_hi = n_lo + net.num_addresses - 1
            pieces = _clip(holes, starts, n_lo, n_hi)
            if pieces and pieces[0] == (n_lo, n_hi):
                continue  # wholly allowlisted
            key = format_subject(net)
            lines.extend(f"{key} {text}" for text in texts)
            entries += len(texts)
            for p_lo, p_hi in pieces:
                for hole in _cidrs(version, p_lo, p_hi):
                    lines.append(f"!{format_subject(hole)}")
                    exclusions += 1
    return entries, exclusions


def _overlay(layers: list[tuple[IPv4Address, list[tuple[int, int, str]]]]) -> list[Segment]:
    """Return disjoint ranges with the (code, TXT) of every layer covering each, in layer order.

    Each layer is one code's disjoint, sorted ranges. A sweep over their end (0) and start (1)
    points, merged in order; at one point, ends come before starts.
    """
    streams = [
        [ev for lo, hi, template in ranges for ev in ((lo, 1, k, template), (hi + 1, 0, k, ""))]
        for k, (_, ranges) in enumerate(layers)
    ]
    active: dict[int, str] = {}
    out: list[Segment] = []
    previous = -1
    for point, kind, k, template in heapq.merge(*streams):
        if point > previous and active:
            values = tuple((layers[j][0], active[j]) for j in sorted(active))
            if out and out[-1][1] == previous - 1 and out[-1][2] == values:
                out[-1] = (out[-1][0], point - 1, values)
            else:
                out.append((previous, point - 1, values))
        if kind:
            active[k] = template
        else:
            del active[k]
        previous = point
    return out


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
    groups: list[tuple[IPv4Address, tuple[Cause, ...]]],
    header: Header,
    warnings: dict[str, str],
) -> Dataset:
    """Return the one dnset: ``.name`` lines per listed domain, ``!.name`` for allowlisted names.

    dnset answers the longest matching wildcard only, with every line of that name, so each
    listed name carries, per code, the TXT of its most specific listed self-or-parent.
    """
    allowed = {a.subject.name for a in allows if isinstance(a.subject, Domain)} | {"invalid"}
    allowed.discard("test")  # RFC 5782 §5: always listed, even when allowlisted
    per_code: list[tuple[IPv4Address, dict[str, tuple[float, str]]]] = []
    for code, causes in groups:
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
        per_code.append((code, best))
    names = {name for _, best in per_code for name in best}
    lines = _header(zone, header, "every code, domains")
    entries = 0
    for name in sorted(names, key=lambda n: n.split(".")[::-1]):
        chain = [p.name for p in Domain(name).parents()]  # the name first, then its parents
        for code, best in per_code:
            found = next((best[n] for n in chain if n in best), None)
            if found is not None:
                lines.append(f".{name} :{code}:{txt_value(found[1], name, warnings)}")
                entries += 1
    holes = sorted(a for a in allowed if any(p.name in names for p in Domain(a).parents()[1:]))
    lines.extend(f"!.{name}" for name in holes)
    return Dataset(
        kind="dnset",
        suffix="",
        text="\n".join(lines) + "\n",
        entries=entries,
        exclusions=len(holes),
    )


# -- files ----------------------------------------------------------------------------------


def dataset_path(base: Path, dataset: Dataset) -> Path:
    """Return the file of *dataset* for the output *base*: itself, or ``BASE.spam.ip6trie``."""
    return base.with_name(f"{base.name}.{dataset.suffix}") if dataset.suffix else base


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
    if not path.parent.is_dir():  # a typo must not leave a tree of new folders behind
        raise InputError(
            f"{path}: the folder {path.parent} does not exist; create it or fix the path"
        )
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


# -- streamed export of a big IP zone ---------------------------------------------------------

#: (subject, cause, reason, listed_at) of one IPv4 host listing, as the store yields them.
HostRow = tuple[str, str, str, float]


def write_ip_streamed(
    base: Path,
    others: Iterable[Listing],
    allows: Iterable[AllowEntry],
    hosts: Callable[[], Iterable[Iterable[HostRow]]],
    *,
    zone: ZoneConfig,
    header: Header,
) -> ZoneExport:
    """Write the IP zone's datasets like `render` + `write`, with IPv4 hosts streamed.

    *others* are every listing but the IPv4 hosts (ranges, IPv6: few, rendered in memory as
    `render` does); *hosts()* returns batches of IPv4 host rows in subject order, so one
    host's listings come together (it is called once). rbldnsd's ip4set answers the most
    specific of its /8, /16, /24 and /32 levels only, with every entry there; a host is
    written as /32 lines, one per code: its best listing per code plus the codes of the
    ranges around it, which answers what `render`'s split ranges answer. Ranges narrower
    than /24 are stored on the /32 level too, where a host line would add to them instead
    of replacing them: the few hosts inside such ranges are kept for `render` with the
    ranges, the others are written one at a time (flat memory at 10M hosts) to a spool file
    beside *base*, which follows render's lines into the dataset at the end.
    """
    if not base.parent.is_dir():  # as write_atomic: a typo must not leave new folders behind
        raise InputError(
            f"{base}: the folder {base.parent} does not exist; create it or fix the path"
        )
    groups = _code_groups(zone)
    others = list(others)
    allowed = list(allows)
    code_of = {cause: code for code, causes in groups for cause in causes}
    order = {code: i for i, (code, _) in enumerate(groups)}
    layers: list[tuple[IPv4Address, list[tuple[int, int, str]]]] = []
    ip4 = [x for x in others if not isinstance(x.subject, Domain)]
    for code, causes in groups:
        layers.append((code, _flatten(_spans(ip4, zone, 4, causes))))
    segments = _overlay(layers)
    fine = _merge(  # the parts of ranges that rbldnsd stores on the /32 level
        [
            (int(n.network_address), int(n.broadcast_address))
            for lo, hi, _ in segments
            for n in _cidrs(4, lo, hi)
            if n.prefixlen > 24
        ]
    )
    fine_starts = [lo for lo, _ in fine]

    def inside(spans: list[tuple[int, int]], starts: list[int], address: int) -> bool:
        i = bisect_right(starts, address) - 1
        return i >= 0 and spans[i][1] >= address

    mixed: list[Listing] = []
    extra: dict[str, str] = {}
    seg_starts = [lo for lo, _, _ in segments]
    holes = _holes(allowed, 4)
    hole_starts = [lo for lo, _ in holes]
    entries = 0

    # The loop below runs once per host (10M at scale): codes are kept as their text, a plain
    # TXT (most) is written as it is (`_plain`), and the rest goes through txt_value once per
    # template (its warnings name the first subject). 1M hosts, each with its own TXT
    # (bench/bulk_pipeline.py, session 6): 10.4 s CPU for the export before, see
    # docs/benchmarks.md for after.
    code_texts = {code: str(code) for code, _ in groups}
    rank = {code_texts[code]: i for code, i in order.items()}
    code_by_cause: dict[str, str] = {}
    url = zone.lookup_url
    plain = _PLAIN.fullmatch
    written: dict[str, str] = {}

    def code_text(cause_text: str) -> str:
        code = code_by_cause.get(cause_text)
        if code is None:  # an unknown cause in the store raises here, as Cause() says
            code = code_by_cause[cause_text] = code_texts[code_of[Cause(cause_text)]]
        return code

    def txt(template: str, subject: str) -> str:
        if plain(template) and (len(template) <= TXT_MAX // 4 or len(template.encode()) <= TXT_MAX):
            return template  # what txt_value returns for it, with no warning
        text = written.get(template)
        if text is None:
            if len(written) > 100_000:
                written.clear()
            text = written[template] = txt_value(template, subject, extra)
        return text

    # Hosts that need more than one line of their own: in a /25-/31 range or the test point
    # (render writes them), allowlisted, 127.0.0.1, or inside a range (its codes join theirs).
    special = _merge(
        [
            *fine,
            *holes,
            *((lo, hi) for lo, hi, _ in segments),
            (TEST_V4, TEST_V4),
            (NEVER_V4, NEVER_V4),
        ]
    )
    special_starts = [lo for lo, _ in special]

    def clear(subjects: Sequence[str]) -> bool:
        """Return whether no host of *subjects* lies in a special range (C loops only)."""
        values = array("I", b"".join(map(inet_aton, subjects)))
        if sys.byteorder == "little":
            values.byteswap()
        low, high = min(values), max(values)  # a block in text order is a narrow span
        ordered: list[int] | None = None
        k = max(bisect_right(special_starts, low) - 1, 0)
        while k < len(special) and special[k][0] <= high:
            s_lo, s_hi = special[k]
            k += 1
            if s_hi < low:
                continue
            ordered = ordered or sorted(values)
            i = bisect_left(ordered, s_lo)
            if i < len(ordered) and ordered[i] <= s_hi:
                return False
        return True

    def block(rows: Sequence[HostRow]) -> str:
        """Return the lines of *rows* (whole hosts): one join if they are a bulk import's.

        Distinct hosts of one cause outside every special range each get the one line
        ``HOST :CODE:TXT`` (shared or per-host reason), so the block is one ``str.join``:
        the per-host loop below took most of the 5.2 s CPU of the 1M bench's export
        (bench/bulk_pipeline.py); with the join 3.4-4.5 s CPU at load 2.5-3, old 5.9-7.5 s
        alternated (docs/benchmarks.md, 2026-12-06, export rbldnsd).
        """
        nonlocal entries
        subjects, causes, reasons, _ = zip(*rows, strict=True)
        n = len(subjects)
        if causes.count(causes[0]) != n or len(set(subjects)) != n or not clear(subjects):
            return "".join(lines(rows))
        code = f" :{code_text(causes[0])}:"
        entries += n
        if reasons.count(reasons[0]) == n:
            reason = reasons[0]
            template = txt_template(reason, url) if "$" in reason or url else reason
            line = f"{code}{txt(template, subjects[0])}\n"
            return line.join(subjects) + line
        templates = list(txt_templates(reasons, url))
        text = "\n".join(templates) + "\n"
        if not (
            text.count("\n") == n  # no template has a line break of its own
            and _PLAIN_LINES.fullmatch(text)
            and (
                max(map(len, templates)) <= TXT_MAX // 4
                or max(map(len, map(str.encode, templates))) <= TXT_MAX
            )
        ):
            templates = list(map(txt, templates, subjects))  # warns, names the first subject
        return "\n".join(map(add, map(add, subjects, repeat(code)), templates)) + "\n"

    def blocks() -> Iterator[str]:
        """Yield the host lines block by block, a host's rows never split across two."""
        carry: list[HostRow] = []
        for batch in hosts():
            rows = [*carry, *batch] if carry else list(batch)
            if not rows:
                continue
            last = rows[-1][0]
            cut = len(rows) - 1
            while cut > 0 and rows[cut - 1][0] == last:
                cut -= 1
            carry = rows[cut:]
            if cut:
                yield block(rows[:cut])
        if carry:
            yield block(carry)

    def lines(stream: Iterable[HostRow]) -> Iterator[str]:
        nonlocal entries
        for subject, rows in groupby(stream, key=itemgetter(0)):
            address = int.from_bytes(inet_aton(subject), "big")
            if fine and inside(fine, fine_starts, address):  # render writes these
                mixed.extend(
                    Listing(
                        subject=IPv4Network(subject),
                        cause=Cause(cause_text),
                        reason=reason,
                        source="",
                        listed_at=datetime.fromtimestamp(listed_at, UTC),
                    )
                    for _, cause_text, reason, listed_at in rows
                )
                continue  # hosts in /25-/31 ranges, the test point
            if address in (TEST_V4, NEVER_V4):
                continue
            h = bisect_right(hole_starts, address) - 1
            if h >= 0 and holes[h][1] >= address:
                continue  # allowlisted: the range's `!` line (if any) covers it
            best: dict[str, tuple[float, str]] = {}
            for _, cause_text, reason, listed_at in rows:
                code = code_by_cause.get(cause_text) or code_text(cause_text)
                template = txt_template(reason, url) if "$" in reason or url else reason
                found = best.get(code)
                if found is None or (listed_at, template) > found:
                    best[code] = (listed_at, template)
            if segments:
                s = bisect_right(seg_starts, address) - 1
                if s >= 0 and segments[s][1] >= address:
                    for c, t in segments[s][2]:
                        best.setdefault(code_texts[c], (0.0, t))
            if len(best) == 1:
                for code, (_, template) in best.items():
                    entries += 1
                    yield f"{subject} :{code}:{txt(template, subject)}\n"
                continue
            for code in sorted(best, key=rank.__getitem__):
                entries += 1
                yield f"{subject} :{code}:{txt(best[code][1], subject)}\n"

    with tempfile.TemporaryFile(dir=base.parent, prefix=f".{base.name}.") as spool:
        for text in blocks():
            spool.write(text.encode("utf-8"))
        export = render([*others, *mixed], allowed, zone=zone, domain=False, header=header)
        first = export.datasets[0]
        entries += first.entries
        spool.seek(0)
        _write_streamed(dataset_path(base, first), first.text, spool)
    datasets = [replace(first, text="", entries=entries), *export.datasets[1:]]
    for other in export.datasets[1:]:
        write_atomic(dataset_path(base, other), other.text)
    more = tuple(w for w in extra.values() if w not in export.warnings)
    return ZoneExport(zone=export.zone, datasets=tuple(datasets), warnings=export.warnings + more)


def _write_streamed(path: Path, head: str, rest: BinaryIO) -> None:
    """Write *head* then the bytes of *rest* to *path* atomically (as write_atomic)."""
    if not path.parent.is_dir():  # as write_atomic: a typo must not leave new folders behind
        raise InputError(
            f"{path}: the folder {path.parent} does not exist; create it or fix the path"
        )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(head.encode("utf-8"))
            shutil.copyfileobj(rest, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

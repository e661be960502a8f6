"""rbldnsd data files (ip4set, ip4trie, ip4tset, ip6trie, ip6tset, dnset) into one Batch (pure).

The syntax follows rbldnsd(8) and its parser (ip4parse.c, rbldnsd_util.c) as shipped in the
Debian package; docs/rbldnsd.md lists every form and where our model differs. Nothing here is
lenient where rbldnsd would skip a line with a warning: a line rbldnsd ignores is an error
naming ``file:line``, so an import is applied completely or not at all.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    summarize_address_range,
)
from itertools import compress, filterfalse, islice, repeat
from operator import gt
from socket import inet_aton, inet_ntoa
from typing import Final, Literal, TypeAlias

from reputable.core.address import Domain, IPNetwork, format_subject, parse_domain, parse_network
from reputable.core.cause import Cause
from reputable.core.errors import DataFileError, InputError, ReputableError
from reputable.listings.model import Batch, Listing
from reputable.listings.rules import Limits, new_listing

NAME: Final = "rbldnsd"
KINDS: Final = ("auto", "ip4set", "ip4trie", "ip4tset", "ip6trie", "ip6tset", "dnset")
PROGRESS_EVERY: Final = 100_000  # lines between two progress calls
BLOCK: Final = 512  # lines read at a time (~7 KB: about what the text file decodes at once)
RUN: Final = 50_000  # hosts per HostRun (up to a BLOCK more): store/bulk.py's CHUNK
DEFAULT_A: Final = IPv4Address("127.0.0.2")  # rbldnsd's A value when a file names none

_TIME: Final = re.compile(r"^(?:(\d+)([smhdw]?))+$", re.IGNORECASE)
_TIME_PART: Final = re.compile(r"(\d+)([smhdw]?)", re.IGNORECASE)
_UNIT: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_HEX4: Final = re.compile(r"^[0-9a-fA-F]{1,4}$")
_OCTET: Final = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED: Final = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")  # canonical dotted quad only
_EXCLUSION: Final = re.compile(r"^[ \t\r\f\v]*!.*$", re.MULTILINE)  # a "!" line
_HOSTS: Final = re.compile(rf"(?:(?:{_OCTET}\.){{3}}{_OCTET}\n)+")  # lines of them, each ended


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportSpec:
    """What an import needs besides the text: the file, its zone and how to read it."""

    path: str  # shown in messages and recorded as source "rbldnsd:PATH"
    kind: str  # one of KINDS; "auto" reads IPv4 and IPv6 lines (IP zone) or domains
    zone: str
    domain: bool  # True for the domain (RHSBL) zone
    codes: Mapping[Cause, IPv4Address]  # the zone's return codes
    lookup_url: str  # the zone's TXT URL template; stripped from TXT where our export put it
    now: datetime
    limits: Limits
    ttl: timedelta | None = None
    cause: Cause | None = None  # force this cause for every entry, whatever its A value
    force: bool = False  # allow ranges broader than the configured maximum


@dataclass(frozen=True, slots=True, kw_only=True)
class Imported:
    """The parsed file: one batch, the file's $TTL, and remarks where our model differs."""

    batch: Batch
    ttl: int | None
    notes: tuple[str, ...]


@dataclass(slots=True)
class _State:
    """Per-file parser state: defaults and $-specials seen so far."""

    default_a: IPv4Address = DEFAULT_A
    default_txt: str | None = None
    ttl: int | None = None
    max_range4: int | None = None
    base: str | None = None
    variables: dict[str, str] = field(default_factory=dict)


def parse(text: str, spec: ImportSpec, progress: Callable[[int], None] | None = None) -> Imported:
    """Return the listings and exclusions in rbldnsd *text*; a bad line raises DataFileError.

    *progress(lines read)* is called every PROGRESS_EVERY lines (the CLI's terminal line).
    """
    _check_kind(spec)
    by_code: dict[IPv4Address, list[Cause]] = {}
    for cause, code in spec.codes.items():
        by_code.setdefault(code, []).append(cause)
    state = _State()
    listings: list[Listing] = []
    excluded: list[IPNetwork | Domain] = []
    notes: list[str] = []
    fast_ok = not spec.domain and not spec.kind.startswith("ip6")
    quick: _Quick | None = None
    for lineno, line in _lines(text.splitlines()):
        if progress is not None and not lineno % PROGRESS_EVERY:
            progress(lineno)
        # Fast path for the bulk of big files: a bare IPv4 address taking the defaults. Any
        # line it does not fully understand goes the general way below (which also words
        # every error), so both give the same listing (tests/listings: the fast path).
        if fast_ok and line[0].isdigit():
            if quick is None:
                quick = _quick(spec, state, by_code)
            if quick.ok:
                host = _fast_host(line)
                if host is not None:
                    listings.append(quick.listing(host, line))
                    continue
        try:
            if line[0] in "$#:;":
                quick = None  # defaults, variables or the base template may change
            if line.startswith("$") or (line[:1] in ("#", ":") and line[1:2] == "$"):
                _special(line[1:] if line[0] == "$" else line[2:], state, strict=line[0] == "$")
            elif line.startswith("#") or line.startswith(";"):
                continue
            elif line.startswith(":") and not line.startswith("::"):
                state.default_a, state.default_txt = _value(line, state)
            else:
                _entry(line, lineno, spec, state, by_code, listings, excluded, notes)
        except DataFileError:
            raise
        except (ReputableError, ValueError) as exc:
            raise DataFileError(spec.path, lineno, str(exc)) from exc
    return Imported(
        batch=Batch(listings=tuple(cut(listings, excluded, notes))),
        ttl=state.ttl,
        notes=tuple(notes),
    )


#: (subject, family, cause, reason, source, listed_at, expires_at): one store row, no objects.
Row: TypeAlias = tuple[str, int, str, str, str, float, float | None]


def row_of(listing: Listing) -> Row:
    """Return *listing* as a store row."""
    subject = listing.subject
    return (
        format_subject(subject),
        0 if isinstance(subject, Domain) else subject.version,
        listing.cause.value,
        listing.reason,
        listing.source,
        listing.listed_at.timestamp(),
        None if listing.expires_at is None else listing.expires_at.timestamp(),
    )


def exclusions(lines: Iterable[str], spec: ImportSpec) -> list[IPNetwork | Domain]:
    """Return the subjects of the ``!`` lines of a file (the pre-pass of `Stream`).

    Read a block of lines at a time, looking for ``!`` with one search of its text: the
    line-by-line pass cost 0.85 s CPU of a 1M-line import (cProfile, session 8).
    """
    state = _State()
    out: list[IPNetwork | Domain] = []
    lines, seen = iter(lines), 0
    while block := list(islice(lines, BLOCK)):
        text = "".join(block)
        if "!" in text:
            for found in _EXCLUSION.finditer(text):
                lineno = seen + text.count("\n", 0, found.start()) + 1
                line = found.group().strip(" \t\r\n\f\v")
                try:
                    _entry(line, lineno, spec, state, {}, [], out, [])
                except DataFileError:
                    raise
                except (ReputableError, ValueError) as exc:
                    raise DataFileError(spec.path, lineno, str(exc)) from exc
        seen += len(block)
    return out


def _lines(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """Yield (line number, stripped line) for every non-empty line of *lines*."""
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip(" \t\r\n\f\v")
        if line:
            yield lineno, line


@dataclass(slots=True)
class HostRun:
    """Consecutive bare IPv4 hosts of a file that share every column but the subject.

    They are the bulk of a big file (`Stream`'s fast path), kept as the subjects' text: a
    bulk writer stores a whole run with one statement (store/bulk.py), where building and
    binding a tuple per row cost ~1.2 s CPU per 1M rows. Every subject is a canonical dotted
    quad (digits and dots only). The reason of subject S is ``head`` when ``tail`` is None,
    else ``head + S + tail`` (the TXT names the subject with ``$``).
    """

    cause: str
    head: str
    tail: str | None
    source: str
    listed_at: float
    expires_at: float | None
    subjects: list[str] = field(default_factory=list)
    family: int = 4

    def rows(self, subjects: Iterable[str]) -> Iterator[Row]:
        """Yield the store rows of *subjects* (this run's, or some of them)."""
        cause, head, tail, source = self.cause, self.head, self.tail, self.source
        family, at, expires = self.family, self.listed_at, self.expires_at
        if tail is None:
            for subject in subjects:
                yield (subject, family, cause, head, source, at, expires)
        else:
            for subject in subjects:
                yield (subject, family, cause, f"{head}{subject}{tail}", source, at, expires)


class Stream:
    """The rows of an rbldnsd file, one at a time: what `parse` returns, in constant memory.

    Iterate it once; afterwards ``count``, ``ttl`` and ``notes`` hold what `parse` puts in
    `Imported`. *excluded* are the file's ``!`` subjects (`exclusions`, a first pass over the
    same lines): rbldnsd applies them whatever their place in the file, so they must be known
    before the first listing is yielded. A bad line raises DataFileError naming ``file:line``
    when the iteration reaches it; a caller that writes while iterating rolls back.

    Profile of 1M bare IPv4 lines before this class (`parse`, 2026-12-05, load ~6):
    36 s CPU and 747 MB, because every line took the general path (the fast path refused a
    file without a default TXT) and became a `Listing` object in one list.
    """

    def __init__(
        self,
        lines: Iterable[str],
        spec: ImportSpec,
        *,
        excluded: list[IPNetwork | Domain] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        _check_kind(spec)
        self.lines = lines
        self.spec = spec
        self.progress = progress
        self.holes = _Holes(excluded or [])
        self.count = 0
        self.ttl: int | None = None
        self.notes: list[str] = []

    def __iter__(self) -> Iterator[Row]:
        for part in self.parts():
            if isinstance(part, HostRun):
                rows = part.rows(part.subjects)
                del part  # one run in memory: the next one is read while this one is yielded
                yield from rows
            else:
                yield part

    def parts(self) -> Iterator[Row | HostRun]:
        """Yield the rows in file order, runs of bare IPv4 hosts as one `HostRun` each.

        A bulk writer takes a run whole (store/bulk.py); iterating the Stream itself gives
        the same rows one at a time.
        """
        spec, holes, progress = self.spec, self.holes, self.progress
        by_code: dict[IPv4Address, list[Cause]] = {}
        for cause, code in spec.codes.items():
            by_code.setdefault(code, []).append(cause)
        state = _State()
        fast_ok = not spec.domain and not spec.kind.startswith("ip6")
        quick: _Quick | None = None
        # HostRun's columns but the subjects while the defaults stay (None: not known yet)
        fast_row: tuple[str, str, str | None, str, float, float | None] | None = None
        run: HostRun | None = None
        subjects: list[str] = []  # run.subjects
        cut_hosts = bool(holes.spans[4])
        listed: set[Domain] = set()
        pending: list[Listing] = []
        ignored: list[IPNetwork | Domain] = []
        count = 0
        dotted = _DOTTED.fullmatch
        hosts = _HOSTS.match
        blanks = " \t\r\n\f\v"
        lines, lineno = iter(self.lines), 0
        while block := list(islice(lines, BLOCK)):
            text = "".join(block)
            at = 0  # where block[index] starts in text
            index = 0
            while index < len(block):
                # Lines of bare canonical hosts under the defaults join the run whole: one
                # regex over the block's text from here instead of one per line (tests/listings:
                # the rows are parse's); a range or another line among them goes line by line
                # below, and the regex takes the hosts after it; exclusions cut them at once.
                if fast_row is not None:
                    found = hosts(text, at)
                    taken = text[at : found.end()] if found else ""
                    local = ("\n" + taken).find("\n127.0.0.1\n")  # never listed: line by line
                    if local >= 0:
                        taken = taken[:local]
                    if taken:
                        n = taken.count("\n")
                        if progress is not None:
                            first = lineno // PROGRESS_EVERY * PROGRESS_EVERY + PROGRESS_EVERY
                            for mark in range(first, lineno + n + 1, PROGRESS_EVERY):
                                progress(mark)
                        lineno += n
                        index += n
                        at += len(taken)
                        if run is None:
                            run = HostRun(*fast_row)
                            subjects = run.subjects
                        kept = taken.split("\n")
                        kept.pop()  # the empty text after the last newline
                        if cut_hosts:
                            kept = holes.keep4(kept)
                        count += len(kept)
                        subjects += kept
                        if len(subjects) >= RUN:
                            yield run
                            run = None
                        continue
                raw = block[index]
                index += 1
                at += len(raw)
                lineno += 1
                line = raw.strip(blanks)
                if not line:
                    continue
                if progress is not None and not lineno % PROGRESS_EVERY:
                    progress(lineno)
                if quick is None and fast_ok and line[0].isdigit():
                    quick = _quick(spec, state, by_code)
                    if quick.ok:
                        expires = quick.expires.timestamp() if quick.expires else None
                        now = quick.now.timestamp()  # type: ignore[union-attr]
                        tail = quick.tail if quick.templated else None
                        fast_row = (quick.cause.value, quick.head, tail, quick.source, now, expires)
                # As in parse: a bare canonical IPv4 host under the defaults joins the current run
                # (one regex match, one list append; tests/listings: the rows are parse's).
                if fast_row is not None and dotted(line) and line != "127.0.0.1":
                    if cut_hosts and holes.host4(int.from_bytes(inet_aton(line), "big")):
                        continue
                    count += 1
                    if run is None:
                        run = HostRun(*fast_row)
                        subjects = run.subjects
                    subjects.append(line)
                    if len(subjects) >= RUN:
                        yield run
                        run = None
                    continue
                if run is not None:
                    yield run
                    run = None
                if quick is not None and quick.ok and line[0].isdigit():
                    host = _fast_host(line)
                    if host is not None:
                        if cut_hosts and holes.host4(host):
                            continue
                        count += 1
                        yield row_of(quick.listing(host, line))
                        continue
                try:
                    if line[0] in "$#:;":
                        quick = fast_row = None  # defaults, variables or the base may change
                    if line.startswith("$") or (line[:1] in ("#", ":") and line[1:2] == "$"):
                        _special(
                            line[1:] if line[0] == "$" else line[2:], state, strict=line[0] == "$"
                        )
                    elif line.startswith("#") or line.startswith(";"):
                        continue
                    elif line.startswith(":") and not line.startswith("::"):
                        state.default_a, state.default_txt = _value(line, state)
                    elif line[0] == "!":
                        continue  # read by the pre-pass (exclusions)
                    else:
                        _entry(line, lineno, spec, state, by_code, pending, ignored, self.notes)
                except DataFileError:
                    raise
                except (ReputableError, ValueError) as exc:
                    raise DataFileError(spec.path, lineno, str(exc)) from exc
                for listing in pending:
                    if holes.names and isinstance(listing.subject, Domain):
                        listed.add(listing.subject)
                    left = holes.pieces(listing) if holes else None
                    for piece in [listing] if left is None else left:
                        count += 1
                        yield row_of(piece)
                pending.clear()
        if run is not None:
            yield run
        if holes.names:
            holes.notes(listed, self.notes)
        self.count = count
        self.ttl = state.ttl


def _check_kind(spec: ImportSpec) -> None:
    """Raise InputError when *spec*'s dataset type is unknown or does not fit its zone."""
    if spec.kind not in KINDS:
        raise InputError(
            f"unknown rbldnsd dataset type {spec.kind!r}; use one of {', '.join(KINDS)}"
        )
    if spec.domain != (spec.kind in ("auto", "dnset")) and spec.kind != "auto":
        want = "dnset" if spec.domain else "an ip4*/ip6* type"
        raise InputError(f"zone {spec.zone} takes {want}, not {spec.kind}")


@dataclass(slots=True)
class _Quick:
    """What every bare IPv4 line shares while the defaults stay: cause, reason, expiry."""

    ok: bool
    cause: Cause = Cause.MANUAL
    head: str = ""
    tail: str = ""
    templated: bool = False
    source: str = ""
    now: datetime | None = None
    expires: datetime | None = None

    def listing(self, address: int, text: str) -> Listing:
        """Return the listing of host *address* (written *text*) under these defaults."""
        reason = f"{self.head}{text}{self.tail}" if self.templated else self.head
        return Listing(
            subject=IPv4Network(address),
            cause=self.cause,
            reason=reason,
            source=self.source,
            listed_at=self.now,  # type: ignore[arg-type]  # set whenever ok is True
            expires_at=self.expires,
        )


def _quick(spec: ImportSpec, state: _State, by_code: dict[IPv4Address, list[Cause]]) -> _Quick:
    """Return the shared facts of bare IPv4 lines, or ok=False when a line needs the full path."""
    try:
        cause = spec.cause or _cause_of(state.default_a, by_code, spec)
        probe = new_listing(
            IPv4Network("255.255.255.255"),
            cause,
            reason=reason_of(state.default_txt, "255.255.255.255", state, spec.lookup_url),
            source=f"rbldnsd:{spec.path}",
            now=spec.now,
            ttl=spec.ttl,
            limits=spec.limits,
            force=spec.force,
        )
    except (ReputableError, ValueError):
        return _Quick(ok=False)
    template = reason_of(state.default_txt, "\0", state, spec.lookup_url)
    head, mark, tail = template.partition("\0")
    if not template:
        template = head = probe.reason  # no TXT: new_listing's default reason, as the full path
    if "\0" in tail or not template.strip() or template != template.strip():
        return _Quick(ok=False)  # several subjects, or stripped edges: the full path words it
    return _Quick(
        ok=True,
        cause=cause,
        head=head,
        tail=tail,
        templated=bool(mark),
        source=probe.source,
        now=spec.now,
        expires=probe.expires_at,
    )


def _fast_host(line: str) -> int | None:
    """Return the address of a line that is exactly a dotted-quad IPv4 host, else None."""
    parts = line.split(".")
    if len(parts) != 4:
        return None
    address = 0
    for part in parts:
        if not (part.isdigit() and part.isascii() and len(part) <= 3) or part[:1] == "0" != part:
            return None  # leading zeros: the full path (and the canonical text) decide
        octet = int(part)
        if octet > 255:
            return None
        address = (address << 8) | octet
    return None if address == 0x7F000001 else address


def _special(body: str, state: _State, *, strict: bool) -> None:
    """Apply one ``$`` special (TTL, MAXRANGE4, variables, base template; SOA/NS are ignored)."""
    keyword, _, rest = body.partition(" ")
    keyword, rest = keyword.strip(), rest.strip()
    if "\t" in keyword:
        keyword, _, tail = keyword.partition("\t")
        rest = (tail + " " + rest).strip()
    upper = keyword.upper()
    if upper == "TTL":
        state.ttl = parse_time(rest)
    elif upper == "MAXRANGE4":
        size = int(rest[1:]) if rest.startswith("/") else None
        if size is not None and not 0 <= size <= 32:
            raise ValueError(f"$MAXRANGE4 {rest}: a prefix length must be /0-/32")
        limit = 1 << (32 - size) if size is not None else int(rest)
        state.max_range4 = limit if state.max_range4 is None else min(state.max_range4, limit)
    elif len(keyword) == 1 and keyword.isdigit():
        if not rest:
            raise ValueError(f"${keyword} needs a text")
        state.variables.setdefault(keyword, rest)  # rbldnsd ignores a second assignment
    elif keyword == "=":
        state.base = rest
    elif upper in ("SOA", "NS", "TIMESTAMP"):
        return  # zone metadata: our SOA/NS come from the configuration
    elif strict:
        raise ValueError(
            f"unknown special entry ${keyword}; rbldnsd knows $TTL, $SOA, $NS,"
            " $TIMESTAMP, $MAXRANGE4, $0-$9 and $="
        )


def parse_time(text: str) -> int:
    """Return rbldnsd time units (``3600``, ``1h``, ``1h30m``, ``2w``) as seconds."""
    if not _TIME.match(text.strip()):
        raise ValueError(f"bad time {text!r}: use seconds or units s, m, h, d, w (e.g. 1h30m)")
    return sum(int(n) * _UNIT[u.lower()] for n, u in _TIME_PART.findall(text))


def _value(text: str, state: _State) -> tuple[IPv4Address, str | None]:
    """Return (A, TXT template) of ``:A:TXT``, ``:A`` or a bare TXT; None means no TXT."""
    text = text.lstrip(" \t")
    if not text.startswith(":"):
        return state.default_a, text
    head, colon, tail = text[1:].partition(":")
    token = head.strip()
    comment = re.search(r"[#;]", token)
    if comment and not colon:
        token = token[: comment.start()].strip()
    address = parse_a(token)
    if colon:
        txt = tail.lstrip(" \t")
        return address, txt or None
    return address, state.default_txt


def parse_a(token: str) -> IPv4Address:
    """Return an rbldnsd A value: ``2`` is 127.0.0.2, ``127.2`` is 127.0.0.2 (inet_aton style)."""
    parts = token.split(".")
    if not token or len(parts) > 4 or not all(p.isdigit() and int(p) <= 255 for p in parts):
        raise ValueError(f"bad A value {token!r}: use 127.0.0.N or N")
    n = [int(p) for p in parts]
    octets = [127, 0, 0, *n] if len(n) == 1 else [*n[:-1], *[0] * (4 - len(n)), n[-1]]
    address = IPv4Address(".".join(map(str, octets)))
    if int(address) == 0:
        raise ValueError("A value 0.0.0.0 is not allowed")
    return address


def _entry(
    line: str,
    lineno: int,
    spec: ImportSpec,
    state: _State,
    by_code: dict[IPv4Address, list[Cause]],
    listings: list[Listing],
    excluded: list[IPNetwork | Domain],
    notes: list[str],
) -> None:
    """Parse one data line into listings or exclusions (cut from this file's listings later)."""
    is_exclusion = line.startswith("!")
    body = line[1:].lstrip(" \t") if is_exclusion else line
    token, rest = _split_token(body, ip6=spec.domain is False and _looks_ip6(body))
    subjects: list[IPNetwork | Domain]
    if spec.domain or spec.kind == "dnset":
        domain, widened = _domain(token)
        subjects = [domain]
        if widened and not is_exclusion:
            notes.append(f"{spec.path}:{lineno}: {widened}")
    elif _looks_ip6(token):
        if spec.kind.startswith("ip4"):
            raise ValueError(f"IPv6 entry {token!r} in an {spec.kind} file")
        net6 = parse_ip6(token)
        if spec.kind == "ip6tset" and not is_exclusion and net6.prefixlen != 64:
            raise ValueError(f"{token!r}: ip6tset entries are /64 prefixes written as four words")
        subjects = [parse_network(str(net6))]
    else:
        if spec.kind.startswith("ip6"):
            raise ValueError(f"IPv4 entry {token!r} in an {spec.kind} file")
        lo, hi = parse_ip4_range(token)
        if state.max_range4 is not None and hi - lo + 1 > state.max_range4 and not is_exclusion:
            raise ValueError(f"{token!r} covers {hi - lo + 1} addresses, more than $MAXRANGE4")
        subjects = list(summarize_address_range(IPv4Address(lo), IPv4Address(hi)))
    if line.startswith("!"):
        excluded.extend(subjects)
        return
    rest = rest.lstrip(" \t")
    if not rest or rest[0] in "#;":
        address, txt = state.default_a, state.default_txt
    else:
        address, txt = _value(rest, state)
    cause = spec.cause or _cause_of(address, by_code, spec)
    for subject in subjects:
        reason = reason_of(txt, format_subject(subject), state, spec.lookup_url)
        listings.append(
            new_listing(
                subject,
                cause,
                reason=reason,
                source=f"rbldnsd:{spec.path}",
                now=spec.now,
                ttl=spec.ttl,
                limits=spec.limits,
                force=spec.force,
            )
        )


#: Excluded IPv4 addresses up to which `_Holes.keep4` looks hosts up in a set of their text.
TEXTS4: Final = 65_536


class _Holes:
    """A file's ``!`` exclusions, merged, for cutting them out of its listings one at a time."""

    def __init__(self, excluded: list[IPNetwork | Domain]) -> None:
        holes: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        self.names: set[Domain] = set()
        for subject in excluded:
            if isinstance(subject, Domain):
                self.names.add(subject)
            else:
                lo = int(subject.network_address)
                holes[subject.version].append((lo, lo + subject.num_addresses - 1))
        self.spans = {family: _merge(spans) for family, spans in holes.items()}
        self.starts = {family: [lo for lo, _ in spans] for family, spans in self.spans.items()}
        #: The last address of each IPv4 span, after a -1 for "before the first span".
        self.ends4 = [-1, *(hi for _, hi in self.spans[4])]
        #: Every excluded IPv4 address as text, when there are at most TEXTS4 of them.
        self.texts4: set[str] | None = None
        if sum(hi - lo + 1 for lo, hi in self.spans[4]) <= TEXTS4:
            self.texts4 = {
                inet_ntoa(a.to_bytes(4, "big"))
                for lo, hi in self.spans[4]
                for a in range(lo, hi + 1)
            }

    def __bool__(self) -> bool:
        return bool(self.names or self.spans[4] or self.spans[6])

    def keep4(self, subjects: list[str]) -> list[str]:
        """Return the canonical dotted quads of *subjects* outside every exclusion, in order.

        `host4` for a whole run of hosts in C-level maps (no Python code per host): a set of
        the excluded addresses' text when they are few (40 ns a host), else a bisection of
        each host's int (600 ns a host).
        """
        if self.texts4 is not None:
            return list(filterfalse(self.texts4.__contains__, subjects))
        ends = self.ends4
        big: Literal["big"] = "big"
        addresses = list(map(int.from_bytes, map(inet_aton, subjects), repeat(big)))
        before = map(bisect_right, repeat(self.starts[4]), addresses)  # the span before + 1
        return list(compress(subjects, map(gt, addresses, map(ends.__getitem__, before))))

    def host4(self, address: int) -> bool:
        """True when IPv4 *address* lies in an exclusion."""
        spans, firsts = self.spans[4], self.starts[4]
        i = bisect_right(firsts, address) - 1
        return i >= 0 and spans[i][1] >= address

    def pieces(self, listing: Listing) -> list[Listing] | None:
        """Return what is left of *listing* after the exclusions, or None when it is untouched."""
        subject = listing.subject
        if isinstance(subject, Domain):
            return [] if subject in self.names else None
        lo = int(subject.network_address)
        hi = lo + subject.num_addresses - 1
        spans, firsts = self.spans[subject.version], self.starts[subject.version]
        i = max(bisect_right(firsts, lo) - 1, 0)
        pieces: list[tuple[int, int]] = []
        at = lo
        while i < len(spans) and spans[i][0] <= hi:
            h_lo, h_hi = spans[i]
            if h_hi >= at:
                if h_lo > at:
                    pieces.append((at, h_lo - 1))
                at = max(at, h_hi + 1)
            i += 1
        if at == lo and not pieces:
            return None
        if at <= hi:
            pieces.append((at, hi))
        make = IPv4Address if subject.version == 4 else IPv6Address
        return [
            replace(listing, subject=net)
            for p_lo, p_hi in pieces
            for net in summarize_address_range(make(p_lo), make(p_hi))
        ]

    def notes(self, listed: set[Domain], notes: list[str]) -> None:
        """Add a note for each excluded name that a listed parent name keeps listed."""
        for name in sorted(self.names - listed, key=str):
            parent = next((p for p in name.parents()[1:] if p in listed), None)
            if parent is not None:
                notes.append(
                    f"!{name}: rbldnsd would answer {name} as unlisted, but {parent} lists every"
                    f" name below it here; {name} stays listed (delist it by hand if it must"
                    " not be)"
                )


def cut(
    listings: list[Listing], excluded: list[IPNetwork | Domain], notes: list[str]
) -> list[Listing]:
    """Return *listings* with this file's exclusions cut out, as rbldnsd answers them.

    An rbldnsd ``!`` line means "not listed by this dataset", not "vouched for": a listed range
    loses the excluded addresses (the rest is re-expressed as CIDRs with the same cause and
    reason), a listed name equal to an excluded one is dropped. A name below a listed name
    cannot be cut from our "name and below" model: that is noted, never turned into an
    allowlist entry.
    """
    if not excluded:
        return listings
    holes = _Holes(excluded)
    out: list[Listing] = []
    for listing in listings:
        left = holes.pieces(listing)
        out.extend([listing] if left is None else left)
    holes.notes({x.subject for x in listings if isinstance(x.subject, Domain)}, notes)
    return out


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Return *spans* sorted with overlapping and adjacent ones joined."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _looks_ip6(text: str) -> bool:
    """True when the address at the start of *text* is IPv6 (it has a colon before any blank)."""
    head = re.split(r"[ \t#;]", text, maxsplit=1)[0]
    return ":" in head


def _split_token(body: str, *, ip6: bool) -> tuple[str, str]:
    """Split a data line into its key and the rest (value, comment)."""
    stops = " \t#;" if ip6 else " \t#;:"
    for i, ch in enumerate(body):
        if ch in stops:
            return body[:i], body[i:]
    return body, ""


def _cause_of(
    address: IPv4Address, by_code: dict[IPv4Address, list[Cause]], spec: ImportSpec
) -> Cause:
    """Return the cause whose configured code is *address*, or say how to fix the file."""
    causes = by_code.get(address, [])
    if len(causes) == 1:
        return causes[0]
    codes = ", ".join(f"{c.value}={a}" for c, a in spec.codes.items())
    if not causes:
        raise ValueError(
            f"A value {address} maps to no cause of zone {spec.zone} ({codes});"
            " fix the value or use --cause C to import the whole file as one cause"
        )
    names = ", ".join(c.value for c in causes)
    raise ValueError(f"A value {address} is the code of several causes ({names}); use --cause C")


def reason_of(txt: str | None, subject: str, state: _State | None, lookup_url: str) -> str:
    """Return our reason for an rbldnsd TXT template (``$`` becomes *subject*, ``$$`` a dollar)."""
    if txt is None:
        return ""
    base = state.base if state else None
    if txt.startswith("="):
        txt = txt[1:]
    elif base is not None:
        txt = base.replace("$=", txt)
    if lookup_url:
        if txt == lookup_url:
            txt = ""
        elif txt.endswith(" " + lookup_url):
            txt = txt[: -len(lookup_url) - 1]
    variables = state.variables if state else {}
    out: list[str] = []
    i = 0
    while i < len(txt):
        ch = txt[i]
        if ch != "$":
            out.append(ch)
            i += 1
            continue
        nxt = txt[i + 1 : i + 2]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt.isdigit() and nxt.isascii():
            out.append(variables.get(nxt, "$" + nxt))
            i += 2
        else:
            out.append(subject)
            i += 1
    return "".join(out).strip()


def _prefix4(text: str) -> tuple[int, int]:
    """Return (value, bits) of an IPv4 prefix of 1-4 octets (``10`` is 10.0.0.0 with 8 bits)."""
    parts = text.split(".")
    if len(parts) > 4 or not all(p.isdigit() and p.isascii() and int(p) <= 255 for p in parts):
        raise ValueError(f"bad IPv4 address or prefix {text!r}")
    value = 0
    for i, part in enumerate(parts):
        value |= int(part) << (24 - 8 * i)
    return value, 8 * len(parts)


def _mask(bits: int) -> int:
    return (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF if bits else 0


def parse_ip4_range(token: str) -> tuple[int, int]:
    """Return (first, last) of an rbldnsd IPv4 key: address, prefix, CIDR or range (ip4parse.c)."""
    if "-" in token:
        first, _, last = token.partition("-")
        a, bits = _prefix4(first)
        b, bbits = _prefix4(last)
        if bbits == 8:  # 127.0.0.1-2 means 127.0.0.1-127.0.0.2: the suffix is the last octet
            b = (b >> (bits - 8)) | (a & _mask(bits - 8))
            bbits = bits
        elif bbits != bits:
            raise ValueError(f"bad range {token!r}: both ends need the same number of octets")
        b |= ~_mask(bbits) & 0xFFFFFFFF
        if a > b:
            raise ValueError(f"bad range {token!r}: the first address is after the last")
        return a, b
    if "/" in token:
        first, _, size = token.partition("/")
        a, _ = _prefix4(first)
        if not size.isdigit() or not size.isascii() or int(size) > 32:
            raise ValueError(f"bad CIDR {token!r}: prefix must be 0-32")
        bits = int(size)
        if a & ~_mask(bits) & 0xFFFFFFFF:
            net = IPv4Network((a, bits), strict=False)
            raise ValueError(f"bad CIDR {token!r}: host bits set; did you mean {net}?")
        return a, a | (~_mask(bits) & 0xFFFFFFFF)
    a, bits = _prefix4(token)
    if bits == 8:
        raise ValueError(f"bare number {token!r}: write {token}/8 or {token}.0.0.0/8")
    return a, a | (~_mask(bits) & 0xFFFFFFFF)


def parse_ip6(token: str) -> IPv6Network:
    """Return an rbldnsd IPv6 key: ``a:b:c:d`` is a /64, ``a::b`` a /128, or ``addr/len``."""
    text, slash, size = token.partition("/")
    if "::" in text:
        try:
            address = IPv6Address(text)
        except ValueError as exc:
            raise ValueError(f"bad IPv6 address {text!r}: {exc}") from exc
        bits = 128
    else:
        groups = text.split(":")
        if not 1 <= len(groups) <= 8 or not all(_HEX4.match(g) for g in groups):
            raise ValueError(f"bad IPv6 address {text!r}")
        address = IPv6Address(":".join(groups + ["0"] * (8 - len(groups))))
        bits = 16 * len(groups)
    if slash:
        if not size.isdigit() or not size.isascii() or int(size) > 128:
            raise ValueError(f"bad CIDR {token!r}: prefix must be 0-128")
        bits = int(size)
    try:
        return IPv6Network((address, bits), strict=True)
    except ValueError as exc:
        net = IPv6Network((address, bits), strict=False)
        raise ValueError(f"bad CIDR {token!r}: host bits set; did you mean {net}?") from exc


def _domain(token: str) -> tuple[Domain, str]:
    """Return (domain, remark) of a dnset key; the remark says how our model widens it."""
    if token.startswith("*."):
        name = parse_domain(token[2:])
        return name, f"*.{name} lists only subdomains in rbldnsd; imported as {name} and below"
    if token.startswith("."):
        return parse_domain(token[1:]), ""
    name = parse_domain(token)
    return name, f"{name} lists only that name in rbldnsd; imported as {name} and below"

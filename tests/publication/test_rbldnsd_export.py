"""The rbldnsd export: datasets that answer like our server, atomic files, round trip."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv4Network, ip_network
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from reputable.config import DEFAULT_TOML, parse_config
from reputable.core.address import Domain, Subject, parse_subject
from reputable.core.cause import Cause
from reputable.listings.imports.rbldnsd import ImportSpec, parse
from reputable.listings.model import AllowEntry, Listing
from reputable.listings.rules import Limits
from reputable.publication.exports.rbldnsd import (
    Dataset,
    Header,
    ZoneExport,
    render,
    txt_value,
    write,
    zone_specs,
)
from reputable.publication.snapshot.build import TEST_REASON, txt_template

CONFIG = parse_config(DEFAULT_TOML)
ZONE = CONFIG.ip_zone
URL = ZONE.lookup_url
T0 = datetime(2026, 1, 1, tzinfo=UTC)
HEADER = Header(
    serial=7, nameservers=("ns1.reputable.test",), hostmaster="h.test", negative_ttl=300
)


def listing(subject: str, cause: Cause, reason: str, minutes: int = 0) -> Listing:
    """Return a listing of *subject* made *minutes* after T0."""
    return Listing(
        subject=parse_subject(subject),
        cause=cause,
        reason=reason,
        source="test",
        listed_at=T0 + timedelta(minutes=minutes),
    )


def allow(subject: str) -> AllowEntry:
    """Return an allowlist entry for *subject*."""
    return AllowEntry(subject=parse_subject(subject), note="ok", source="test", created_at=T0)


def dataset(export: ZoneExport, suffix: str) -> Dataset:
    """Return the dataset of *export* with file suffix *suffix*."""
    return next(d for d in export.datasets if d.suffix == suffix)


def data_lines(ds: Dataset) -> list[str]:
    """Return the entry lines of *ds* (no header, no specials)."""
    return [x for x in ds.text.splitlines() if x and x[0] not in "#$"]


def ip4set_answer(datasets: list[Dataset], address: int) -> set[tuple[str, str]]:
    """Return the (A, TXT template) pairs rbldnsd's ip4set lookup finds for *address*.

    A model of rbldnsd_ip4set.c: entries live on the /32, /24, /16 and /8 levels (a CIDR
    between levels is expanded to the next finer one); the most specific level holding the
    address decides, and an exclusion there hides every value of that dataset.
    """
    found: set[tuple[str, str]] = set()
    for ds in datasets:
        levels: dict[tuple[int, int], list[tuple[str, str] | None]] = {}
        for line in data_lines(ds):
            excluded = line.startswith("!")
            key, _, value = line.lstrip("!").partition(" ")
            net = IPv4Network(key)
            level = min(lv for lv in (8, 16, 24, 32) if lv >= net.prefixlen)
            code, _, txt = value[1:].partition(":")
            entry = None if excluded else (code, txt[1:] if txt.startswith("=") else txt)
            for sub in net.subnets(new_prefix=level):
                levels.setdefault((level, int(sub.network_address)), []).append(entry)
        for level in (32, 24, 16, 8):
            mask = (0xFFFFFFFF << (32 - level)) & 0xFFFFFFFF
            hit = levels.get((level, address & mask))
            if hit is not None:
                if None not in hit:
                    found.update(h for h in hit if h is not None)
                break
    return found


def our_answer(
    listings: list[Listing], allows: list[AllowEntry], address: int
) -> set[tuple[str, str]]:
    """Return what our server answers for *address*: per code the most specific, then newest."""
    point = IPv4Address(address)
    if point == IPv4Address("127.0.0.1") or any(point in a.subject for a in allows):  # type: ignore[operator]  # IP only
        return set()
    best: dict[str, tuple[tuple[int, float, str], str]] = {}
    for x in listings:
        assert isinstance(x.subject, IPv4Network)
        if point in x.subject:
            code = str(ZONE.codes[x.cause])
            template = txt_template(x.reason, URL)
            rank = (x.subject.prefixlen, x.listed_at.timestamp(), template)
            if code not in best or rank > best[code][0]:
                best[code] = (rank, template)
    return {(code, template) for code, (_, template) in best.items()}


def test_most_specific_then_newest_wins_per_code_and_codes_add_up() -> None:
    """A host in a listed /24 keeps both codes; within one code the host beats the range."""
    rows = [
        listing("192.0.2.0/24", Cause.COMPROMISED, "bot net"),
        listing("192.0.2.7", Cause.SPAM, "old", 1),
        listing("192.0.2.7", Cause.SPAM, "new", 2),
        listing("192.0.2.0/25", Cause.SPAM, "spam range", 3),
    ]
    export = render(rows, [], zone=ZONE, domain=False, header=HEADER)
    sets = [d for d in export.datasets if d.kind == "ip4set"]
    got = ip4set_answer(sets, int(IPv4Address("192.0.2.7")))
    assert got == {("127.0.0.2", f"new {URL}"), ("127.0.0.4", f"bot net {URL}")}
    assert ip4set_answer(sets, int(IPv4Address("192.0.2.8"))) == {
        ("127.0.0.2", f"spam range {URL}"),
        ("127.0.0.4", f"bot net {URL}"),
    }


def test_allowlist_inside_a_range_is_an_exclusion_and_covers_inner_listings() -> None:
    """An allowed /28 inside a listed /24 becomes ``!``; a host listed inside it is dropped."""
    rows = [
        listing("198.51.100.0/24", Cause.NETWORK, "net"),
        listing("198.51.100.5", Cause.SPAM, "h"),
    ]
    export = render(rows, [allow("198.51.100.0/28")], zone=ZONE, domain=False, header=HEADER)
    assert data_lines(dataset(export, "")) == [
        f"127.0.0.2 :127.0.0.2:{TEST_REASON}",
        f"198.51.100.0/24 :127.0.0.9:net {URL}",
        "!198.51.100.0/28",
    ]


def test_test_point_is_always_in_the_ipv4_dataset() -> None:
    """127.0.0.2 answers with the RFC 5782 test reason and no URL, exactly like our server."""
    export = render([], [], zone=ZONE, domain=False, header=HEADER)
    combined = dataset(export, "")
    assert combined.kind == "ip4set"
    assert data_lines(combined) == [f"127.0.0.2 :127.0.0.2:{TEST_REASON}"]
    assert "$SOA 900 ns1.reputable.test h.test 7 3600 600 604800 300" in combined.text
    # one ip4set, then one ip6trie per cause: a stable rbldnsd command line
    assert [d.kind for d in export.datasets] == ["ip4set"] + ["ip6trie"] * 9


def test_an_allowlisted_test_point_keeps_only_the_test_answer() -> None:
    """127.0.0.2 inside an allowlisted range listed for another cause answers the test only."""
    rows = [listing("127.0.0.0/30", Cause.MANUAL, "odd")]
    export = render(rows, [allow("127.0.0.0/30")], zone=ZONE, domain=False, header=HEADER)
    sets = [dataset(export, "")]
    assert ip4set_answer(sets, int(IPv4Address("127.0.0.2"))) == {("127.0.0.2", TEST_REASON)}
    assert ip4set_answer(sets, int(IPv4Address("127.0.0.1"))) == set()


def test_txt_escaping_for_rbldnsd() -> None:
    """Dollar escapes pass through, a leading '=' is doubled and line breaks become spaces."""
    warnings: dict[str, str] = {}
    assert txt_value("costs $$5 http://x/$", "s", warnings) == "costs $$5 http://x/$"
    assert txt_value("=x", "s", warnings) == "==x"
    assert txt_value("a\nb", "s", warnings) == "a b"
    assert "newline" in warnings
    txt_value("see $1", "s", warnings)
    assert "var" in warnings


def test_domains_use_wildcard_entries_and_allowlisted_subtrees() -> None:
    """A listed domain covers its subdomains; an allowlisted name below it is a ``!.`` line."""
    dzone = CONFIG.domain_zone
    rows = [
        listing("evil.example", Cause.MALWARE_HOST, "bad"),
        listing("x.good.evil.example", Cause.MALWARE_HOST, "under allow"),
    ]
    export = render(rows, [allow("good.evil.example")], zone=dzone, domain=True, header=HEADER)
    assert data_lines(dataset(export, "")) == [
        f".evil.example :127.0.1.7:bad {dzone.lookup_url}",
        f".test :127.0.1.2:{TEST_REASON}",
        "!.good.evil.example",
    ]
    assert len(export.datasets) == 1


def test_write_is_atomic_and_world_readable(tmp_path: Path) -> None:
    """Files replace old ones by rename, leave no temporary files, and are mode 0644."""
    export = render(
        [listing("192.0.2.1", Cause.SPAM, "x")], [], zone=ZONE, domain=False, header=HEADER
    )
    base = tmp_path / "out" / "bl"
    (tmp_path / "out").mkdir()
    base.write_text("old")
    paths = write(export, base)
    assert len(paths) == 10
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths)
    assert "192.0.2.1 :127.0.0.2:x" in base.read_text()
    assert stat.S_IMODE(os.stat(paths[0]).st_mode) == 0o644
    # the contract: `-o FILE` is an ip4set rbldnsd loads as zone:ip4set:FILE
    assert zone_specs(export, base)[0] == f"bl.reputable.test:ip4set:{base}"
    assert zone_specs(export, base)[1] == f"bl.reputable.test:ip6trie:{base}.spam.ip6trie"


_cause = st.sampled_from([Cause.SPAM, Cause.COMPROMISED, Cause.NETWORK])
_reason = st.sampled_from(["spam", "costs $5", "=eq", "a $ b", "bot"])


@st.composite
def _net(draw: st.DrawFn, low: int) -> str:
    prefix = draw(st.integers(min_value=low, max_value=32))
    offset = draw(st.integers(min_value=0, max_value=(1 << 10) - 1))
    return str(ip_network(f"10.0.{offset >> 8 << 2}.{offset & 255}/{prefix}", strict=False))


_listings = st.lists(
    st.builds(listing, _net(22), _cause, _reason, st.integers(min_value=0, max_value=3)),
    max_size=25,
)
_allows = st.lists(st.builds(allow, _net(26)), max_size=4)


@settings(max_examples=150, deadline=None)
@given(
    rows=_listings, allows=_allows, probes=st.lists(st.integers(0, 1023), min_size=20, max_size=40)
)
def test_ip4set_model_answers_like_our_server(
    rows: list[Listing], allows: list[AllowEntry], probes: list[int]
) -> None:
    """For random overlapping listings and exclusions, ip4set lookup equals our server's rule."""
    export = render(rows, allows, zone=ZONE, domain=False, header=HEADER)
    sets = [d for d in export.datasets if d.kind == "ip4set"]
    edges = {int(x.subject.network_address) for x in rows if not isinstance(x.subject, Domain)}
    base = int(IPv4Address("10.0.0.0"))
    for address in {base + p * 4 + (p & 3) for p in probes} | edges:
        assert ip4set_answer(sets, address) == our_answer(rows, allows, address)


def _reimport(export: ZoneExport) -> tuple[list[Listing], list[AllowEntry]]:
    """Import every dataset of *export* back, as the CLI would."""
    listings: list[Listing] = []
    allows: list[AllowEntry] = []
    for ds in export.datasets:
        spec = ImportSpec(
            path=ds.suffix,
            kind=ds.kind,
            zone=export.zone,
            domain=ds.kind == "dnset",
            codes=ZONE.codes,
            lookup_url=URL,
            now=T0,
            limits=Limits(),
        )
        batch = parse(ds.text, spec).batch
        listings.extend(x for x in batch.listings if x.reason != TEST_REASON)
        allows.extend(batch.allows)
    return listings, allows


@settings(max_examples=100, deadline=None)
@given(
    rows=_listings, allows=_allows, probes=st.lists(st.integers(0, 1023), min_size=20, max_size=40)
)
def test_export_import_export_answers_the_same(
    rows: list[Listing], allows: list[AllowEntry], probes: list[int]
) -> None:
    """Importing an export and exporting again answers every address the same, reasons kept.

    The export's ``!`` lines come back as holes cut in the listings (never as allowlist
    entries), so the files differ when there were exclusions but the answers do not; without
    exclusions the files are a fixed point.
    """
    first = render(rows, allows, zone=ZONE, domain=False, header=HEADER)
    again_rows, again_allows = _reimport(first)
    assert again_allows == []
    second = render(again_rows, again_allows, zone=ZONE, domain=False, header=HEADER)
    sets1 = [d for d in first.datasets if d.kind == "ip4set"]
    sets2 = [d for d in second.datasets if d.kind == "ip4set"]
    edges = {int(x.subject.network_address) for x in rows if not isinstance(x.subject, Domain)}
    base = int(IPv4Address("10.0.0.0"))
    for address in {base + p * 4 + (p & 3) for p in probes} | edges:
        assert ip4set_answer(sets2, address) == ip4set_answer(sets1, address)
    if not allows:
        assert [d.text for d in second.datasets] == [d.text for d in first.datasets]
    reasons = {x.reason for x in again_rows}
    assert reasons <= {x.reason for x in rows}


def test_disjoint_listings_round_trip_exactly() -> None:
    """Non-overlapping listings come back with the same subject, cause and reason."""
    rows = [
        listing("192.0.2.1", Cause.SPAM, "trap $ hits"),
        listing("198.51.100.0/24", Cause.COMPROMISED, "=bots"),
        listing("2001:db8::/48", Cause.MANUAL, "v6 feed"),
    ]
    back, _ = _reimport(render(rows, [], zone=ZONE, domain=False, header=HEADER))
    subjects: list[Subject] = [x.subject for x in back]
    assert sorted(
        zip(map(str, subjects), [x.cause for x in back], [x.reason for x in back], strict=True)
    ) == [
        ("192.0.2.1/32", Cause.SPAM, "trap $ hits"),
        ("198.51.100.0/24", Cause.COMPROMISED, "=bots"),
        ("2001:db8::/48", Cause.MANUAL, "v6 feed"),
    ]


def dnset_answer(ds: Dataset, name: str) -> set[tuple[str, str]]:
    """Return what rbldnsd's dnset answers for *name*: every line of the longest match.

    A model of rbldnsd_dnset.c with wildcard entries only (``.name`` matches the name and
    everything below it); an exclusion on the longest match hides everything.
    """
    entries: dict[str, list[tuple[str, str] | None]] = {}
    for line in data_lines(ds):
        key, _, value = line.partition(" ")
        code, _, txt = value[1:].partition(":")
        entry = None if key.startswith("!") else (code, txt)
        entries.setdefault(key.lstrip("!").lstrip("."), []).append(entry)
    labels = name.split(".")
    for i in range(len(labels)):
        hit = entries.get(".".join(labels[i:]))
        if hit is not None:
            return set() if None in hit else {h for h in hit if h is not None}
    return set()


_dcause = st.sampled_from([Cause.SPAM, Cause.MALWARE_HOST, Cause.MANUAL])
_dname = st.sampled_from(["a.example", "b.a.example", "c.b.a.example", "d.example", "b.d.example"])


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.builds(listing, _dname, _dcause, _reason, st.integers(min_value=0, max_value=3)),
        max_size=12,
    ),
    allowed=st.lists(_dname, max_size=2),
)
def test_dnset_model_answers_like_our_server(rows: list[Listing], allowed: list[str]) -> None:
    """Per code, the most specific listed self-or-parent answers, as our server does."""
    dzone = CONFIG.domain_zone
    allows = [allow(n) for n in allowed]
    export = render(rows, allows, zone=dzone, domain=True, header=HEADER)
    for query in ["x.c.b.a.example", "c.b.a.example", "b.a.example", "z.a.example", "b.d.example"]:
        chain = [p.name for p in Domain(query).parents()]
        expected: set[tuple[str, str]] = set()
        if not set(chain) & set(allowed):
            best: dict[str, tuple[int, float, str]] = {}
            for x in rows:
                assert isinstance(x.subject, Domain)
                if x.subject.name in chain:
                    code = str(dzone.codes[x.cause])
                    template = txt_template(x.reason, dzone.lookup_url)
                    rank = (-chain.index(x.subject.name), x.listed_at.timestamp(), template)
                    if code not in best or rank > best[code]:
                        best[code] = rank
            expected = {(code, value[2]) for code, value in best.items()}
        got = {
            (c, t[1:] if t.startswith("=") else t)
            for c, t in dnset_answer(export.datasets[0], query)
        }
        assert got == expected, query

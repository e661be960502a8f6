"""The rbldnsd importer: annotated samples, errors with file:line, cause mapping, properties."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reputable.config import DEFAULT_TOML, parse_config
from reputable.core.cause import Cause
from reputable.core.errors import DataFileError, ReputableError
from reputable.listings.imports import IMPORTERS
from reputable.listings.imports.rbldnsd import ImportSpec, parse, parse_ip4_range, parse_time
from reputable.listings.rules import Limits

SAMPLES = Path(__file__).parent.parent / "samples" / "rbldnsd"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
CONFIG = parse_config(DEFAULT_TOML)


def spec(path: str = "f.ip4set", *, domain: bool = False, **changes: object) -> ImportSpec:
    """Return an import spec for the default IP (or domain) zone."""
    zone = CONFIG.domain_zone if domain else CONFIG.ip_zone
    base = ImportSpec(
        path=path,
        kind="auto",
        zone=zone.name,
        domain=domain,
        codes=zone.codes,
        lookup_url=zone.lookup_url,
        now=NOW,
        limits=Limits(),
    )
    return replace(base, **changes)  # type: ignore[arg-type]  # test helper: typed by callers


def expectations(text: str) -> list[tuple[str, str, str]]:
    """Return the listings the ``# expect:`` lines of a sample announce, in order.

    An exclusion's line says which listing it cuts (``from``) and the pieces left (``into``),
    which replace that listing where it stood.
    """
    listings: list[tuple[str, str, str]] = []
    for line in text.splitlines():
        if line.startswith("# expect:"):
            for item in json.loads(line.removeprefix("# expect:")) or []:
                if "cut" in item:
                    at = next(i for i, x in enumerate(listings) if x[0] == item["from"])
                    _, cause, reason = listings[at]
                    listings[at : at + 1] = [(p, cause, reason) for p in item["into"]]
                else:
                    listings.append((item["subject"], item["cause"], item["reason"]))
    return listings


@pytest.mark.parametrize(
    ("name", "domain"), [("mixed.ip4set", False), ("mixed.ip6trie", False), ("mixed.dnset", True)]
)
def test_sample_lines_import_as_annotated(name: str, domain: bool) -> None:
    """Every data line of an annotated sample gives exactly the listings its comment expects."""
    text = (SAMPLES / name).read_text()
    result = parse(text, spec(name, domain=domain))
    got = [(x.subject_text, x.cause.value, x.reason) for x in result.batch.listings]
    assert got == expectations(text)
    assert result.batch.allows == ()  # exclusions are cut out, never allowlisted
    assert all(x.source == f"rbldnsd:{name}" for x in result.batch.listings)


def test_ttl_special_is_reported_in_seconds() -> None:
    """``$TTL 1h`` in the sample is read as 3600 seconds."""
    result = parse((SAMPLES / "mixed.ip4set").read_text(), spec())
    assert result.ttl == 3600
    assert parse_time("1h30m") == 5400


def test_exact_and_wildcard_domains_are_noted_as_widened() -> None:
    """dnset entries our model cannot express exactly are imported wider, with a note per line."""
    result = parse((SAMPLES / "mixed.dnset").read_text(), spec("d", domain=True))
    assert len(result.notes) == 3  # the third: !.good.evil.example cannot be cut
    assert result.notes[0].startswith("d:7: *.phish.example lists only subdomains")


def test_registered_in_importer_table() -> None:
    """The importer table names the rbldnsd parser by its key."""
    assert IMPORTERS["rbldnsd"] is parse


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("10.0.0.1/33", "prefix must be 0-32"),
        ("10.0.0.1/24", "host bits set; did you mean 10.0.0.0/24?"),
        ("10", "bare number '10'"),
        ("127-127.0.0", "same number of octets"),
        ("10.0.0.9-10.0.0.1", "first address is after the last"),
        ("10.0.0.256", "bad IPv4 address"),
        ("10.0.0.1 :127.0.0.42:x", "A value 127.0.0.42 maps to no cause"),
        ("10.0.0.1 :abc:x", "bad A value 'abc'"),
        ("127.0.0.0/30", "never list"),
        ("10.0.0.0/8", "broader than /16"),
        ("$BOGUS 1", "unknown special entry $BOGUS"),
        ("$TTL forever", "bad time 'forever'"),
        ("2001:db8::1/129", "prefix must be 0-128"),
        ("2001:db8::1/64", "host bits set"),
        ("zz::1", "bad IPv6 address"),
    ],
)
def test_malformed_line_names_file_line_and_problem(line: str, fragment: str) -> None:
    """A bad line raises DataFileError ``file:line: what is wrong`` and nothing is returned."""
    text = "# header\n10.9.9.9\n" + line + "\n10.9.9.10\n"
    with pytest.raises(DataFileError) as caught:
        parse(text, spec("data/bl.ip4set"))
    assert str(caught.value).startswith("data/bl.ip4set:3: ")
    assert fragment in str(caught.value)
    assert caught.value.lineno == 3


def test_forced_cause_overrides_every_a_value() -> None:
    """``--cause`` imports every entry as one cause, even codes that map to nothing."""
    text = "10.0.0.1 :127.0.0.42:x\n10.0.0.2 :3:y\n"
    result = parse(text, spec(cause=Cause.MANUAL))
    assert {x.cause for x in result.batch.listings} == {Cause.MANUAL}


def test_force_allows_broad_ranges_but_never_127_0_0_1() -> None:
    """``--force`` lifts the maximum breadth; a range holding 127.0.0.1 stays refused."""
    assert parse("10.0.0.0/8\n", spec(force=True)).batch.listings[0].subject_text == "10.0.0.0/8"
    with pytest.raises(DataFileError, match=r"127\.0\.0\.1"):
        parse("127.0.0.0/8\n", spec(force=True))


def test_dnset_default_code_must_be_a_domain_code() -> None:
    """A dnset with rbldnsd's default A 127.0.0.2 maps to no domain-zone cause and says so."""
    with pytest.raises(DataFileError, match=r"d:1: A value 127\.0\.0\.2 maps to no cause"):
        parse(".evil.example\n", spec("d", domain=True))


def test_type_must_fit_the_zone() -> None:
    """An IPv6 line in an ip4set file and a dnset for the IP zone are refused."""
    with pytest.raises(DataFileError, match="IPv6 entry"):
        parse("2001:db8::1\n", spec(kind="ip4set"))
    with pytest.raises(ReputableError, match="takes an ip4"):
        parse("x.example\n", spec(kind="dnset"))


def test_ip4_short_forms_match_rbldnsd() -> None:
    """Prefixes, CIDRs and ranges cover what ip4parse.c says they cover."""
    assert parse_ip4_range("127.16-31") == (0x7F100000, 0x7F1FFFFF)
    assert parse_ip4_range("127.0.0.1-255") == (0x7F000001, 0x7F0000FF)
    assert parse_ip4_range("127.16/12") == (0x7F100000, 0x7F1FFFFF)
    assert parse_ip4_range("10.1.2") == (0x0A010200, 0x0A0102FF)


def test_lookup_url_appended_by_our_export_is_stripped() -> None:
    """A TXT ending in the zone's lookup URL (as our export writes it) keeps only the reason."""
    url = CONFIG.ip_zone.lookup_url
    result = parse(f"10.0.0.1 :2:costs $$5 {url}\n", spec())
    assert result.batch.listings[0].reason == "costs $5"


_junk = st.text(alphabet=st.sampled_from(list("0123456789.:/-!$#;*abcdefxyz= \t")), max_size=40)


@settings(max_examples=400, deadline=None)
@given(lines=st.lists(_junk, max_size=6))
def test_junk_never_crashes(lines: list[str]) -> None:
    """Any text either parses or raises a ReputableError; never another exception."""
    try:
        result = parse("\n".join(lines), spec())
    except ReputableError as exc:
        assert str(exc)
        return
    never = ipaddress.ip_address("127.0.0.1")
    assert not any(never in x.subject for x in result.batch.listings)  # type: ignore[operator]  # IP subjects only here


def test_exclusion_cuts_the_files_own_listings_and_allows_nothing() -> None:
    """``!`` lines cut holes in the same file's listings and never become allowlist entries."""
    text = "10.0.0.0/24 :2:bots\n!10.0.0.5\n10.0.1.7\n!10.0.1.7\n!10.9.9.9\n"
    result = parse(text, spec())
    assert result.batch.allows == ()
    covered = set()
    for x in result.batch.listings:
        assert x.reason == "bots" and x.cause is Cause.SPAM
        covered |= {str(a) for a in ipaddress.ip_network(str(x.subject))}
    want = {str(a) for a in ipaddress.ip_network("10.0.0.0/24")} - {"10.0.0.5"}
    assert covered == want  # 10.0.1.7 is cut whole; 10.9.9.9 cuts nothing


def test_domain_exclusion_drops_the_same_name_and_notes_a_child_it_cannot_cut() -> None:
    """A dnset ``!`` drops the same listed name; below a listed name it is noted, not allowed."""
    text = ":127.0.1.2:x\n.evil.example\n!.good.evil.example\nspam.example\n!spam.example\n"
    result = parse(text, spec("d", domain=True))
    assert result.batch.allows == ()
    assert [x.subject_text for x in result.batch.listings] == ["evil.example"]
    assert any("good.evil.example" in n and "evil.example" in n for n in result.notes)


_octet = st.one_of(st.integers(0, 255).map(str), st.sampled_from(["007", "256", "1x", ""]))
_host_line = st.tuples(_octet, _octet, _octet, _octet).map(".".join)
_header = st.sampled_from(
    ["", ":127.0.0.2:spam from $\n", ":3:bot $ here\n", ":127.0.0.2:\n", "$0 v\n:2:$0 $\n"]
)


@settings(max_examples=200, deadline=None)
@given(header=_header, hosts=st.lists(st.one_of(_host_line, st.just("127.0.0.1")), max_size=8))
def test_fast_path_for_bare_hosts_equals_the_full_path(header: str, hosts: list[str]) -> None:
    """Bare IPv4 lines (the bulk path) give the same listings or the same error as the same
    lines forced through the general parser by a trailing comment."""
    fast_text = header + "".join(f"{h}\n" for h in hosts)
    slow_text = header + "".join(f"{h} ;forced\n" for h in hosts)
    try:
        fast = parse(fast_text, spec())
    except ReputableError as exc:
        with pytest.raises(ReputableError) as caught:
            parse(slow_text, spec())
        assert str(caught.value) == str(exc)
        return
    assert parse(slow_text, spec()).batch == fast.batch


def test_progress_is_reported_every_100k_lines() -> None:
    """A long file calls the progress hook with the line count, for the CLI's terminal line."""
    seen: list[int] = []
    text = "".join(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n" for i in range(250_001))
    result = parse(text, spec(), seen.append)
    assert seen == [100_000, 200_000]
    assert len(result.batch.listings) == 250_001

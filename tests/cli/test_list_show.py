"""`list show` and `allow show`: greppable when piped, JSON in one vocabulary, subject filters."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from reputable.cli import common
from tests.cli.conftest import Cli

LONG_V6 = "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"


@pytest.fixture
def listed(cli: Cli) -> Cli:
    """A store with a host, its /24, a /25 inside it, a long IPv6 host and a domain."""
    for args in (
        ("198.51.100.7", "-c", "spam", "-r", "seen spamming"),
        ("198.51.100.0/24", "-c", "spam", "--force", "--source", "feed:drop"),
        ("198.51.100.128/25", "-c", "compromised", "--force"),
        (LONG_V6, "-c", "harvest"),
        ("spam.example", "-c", "spam", "--source", "feed:urls"),
    ):
        assert cli("list", "add", *args).code == 0
    return cli


def test_piped_list_show_is_one_tab_separated_line_per_listing(listed: Cli) -> None:
    """Piped, `list show` prints no box table: `grep 198.51.100.7` finds the whole record."""
    result = listed("list", "show")
    assert result.code == 0
    lines = result.lines()
    assert len(lines) == 5
    assert not any(ch in result.out for ch in "┃│┏━")
    [hit] = [line for line in lines if "198.51.100.7" in line]
    fields = hit.split("\t")
    assert fields[:4] == ["198.51.100.7", "spam", "127.0.0.2", "bl.reputable.test"]
    assert fields[4] == "seen spamming" and fields[7] == "-"  # no until: "-"
    assert any(line.startswith(LONG_V6 + "\t") for line in lines)


def test_json_uses_since_until_and_keeps_the_old_names(listed: Cli) -> None:
    """--json has subject/cause/code/zone/reason/source/since/until, and the old listed_at/expires_at."""
    rows = listed("list", "show", "--json").json()
    row = next(r for r in rows if r["subject"] == "198.51.100.7")
    assert set(row) == {
        "subject", "cause", "code", "zone", "reason", "source", "since", "until",
        "listed_at", "expires_at",
    }  # fmt: skip
    assert row["since"] == row["listed_at"] and row["since"].endswith("Z")
    assert row["until"] is None and row["expires_at"] is None
    assert row["zone"] == "bl.reputable.test"


def test_streamed_json_is_the_text_of_the_filtered_path(listed: Cli) -> None:
    """Unfiltered --json streams from the store (flat memory); its text equals the general path's.

    `--limit` with a bound above the count takes the general path (listing objects, then
    print_json), so the two texts must be byte-identical, also with --cause and --expired.
    """
    for extra in ((), ("--cause", "spam"), ("--expired",)):
        streamed = listed("list", "show", "--json", *extra)
        general = listed("list", "show", "--json", "--limit", "1000", *extra)
        assert streamed.code == general.code == 0
        assert streamed.out == general.out
        assert streamed.json()  # not two empty arrays


def test_subject_shows_exact_and_covering_listings(listed: Cli) -> None:
    """An address shows its own listing and the range covering it, with `match` saying which."""
    rows = listed("list", "show", "198.51.100.7", "--json").json()
    assert {(r["subject"], r["match"]) for r in rows} == {
        ("198.51.100.7", "exact"),
        ("198.51.100.0/24", "covering"),
    }


def test_cidr_shows_listings_inside_it(listed: Cli) -> None:
    """A CIDR shows itself and the listings inside it; --cause narrows them."""
    rows = listed("list", "show", "198.51.100.0/24", "--json").json()
    assert {(r["subject"], r["match"]) for r in rows} == {
        ("198.51.100.0/24", "exact"),
        ("198.51.100.7", "inside"),
        ("198.51.100.128/25", "inside"),
    }
    only = listed("list", "show", "198.51.100.0/24", "--cause", "compromised", "--json").json()
    assert [r["subject"] for r in only] == ["198.51.100.128/25"]


def test_domain_shows_the_parent_that_covers_it(listed: Cli) -> None:
    """A subdomain of a listed domain shows that domain as covering."""
    rows = listed("list", "show", "www.spam.example", "--json").json()
    assert [(r["subject"], r["match"]) for r in rows] == [("spam.example", "covering")]


def test_source_and_limit(listed: Cli) -> None:
    """--source S matches S and S:...; --limit caps the rows."""
    feeds = listed("list", "show", "--source", "feed", "--json").json()
    assert {r["subject"] for r in feeds} == {"198.51.100.0/24", "spam.example"}
    exact = listed("list", "show", "--source", "feed:urls", "--plain")
    assert [line.split("\t")[0] for line in exact.lines()] == ["spam.example"]
    assert len(listed("list", "show", "--limit", "2").lines()) == 2
    assert listed("list", "show", "--limit", "0").code == 2


def test_no_match_is_exit_0_and_no_output(listed: Cli) -> None:
    """A subject with no listing prints nothing and exits 0 (list show reports, it does not test)."""
    result = listed("list", "show", "192.0.2.1")
    assert (result.code, result.out) == (0, "")


def test_terminal_table_never_cuts_the_subject(
    listed: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a narrow terminal the table keeps every subject whole and still shows the reasons."""
    buffer = io.StringIO()
    terminal = Console(file=buffer, force_terminal=True, width=60, color_system=None)
    monkeypatch.setattr(common, "console", terminal)
    result = listed("list", "show")
    assert result.code == 0
    table = buffer.getvalue()
    assert "┃" in table or "│" in table
    assert LONG_V6 in table and "198.51.100.128/25" in table
    assert "seen" in table and "spamming" in table  # free text folds, it is not dropped
    assert "5 listing(s)" in table


def test_old_all_flag_still_works_with_a_warning(listed: Cli) -> None:
    """`list show --all` (now --expired) still works and says what to use."""
    result = listed("list", "show", "--all")
    assert result.code == 0 and len(result.lines()) == 5
    assert "--expired" in result.err


def test_allow_show_uses_the_same_vocabulary(cli: Cli) -> None:
    """allow add/show/remove: --json with since/until, plain lines when piped."""
    added = cli("allow", "add", "192.0.2.10", "--note", "our relay", "--ttl", "30d", "--json")
    assert added.code == 0
    entry = added.json()
    assert entry["subject"] == "192.0.2.10" and entry["until"] is not None
    assert entry["since"] == entry["created_at"] and entry["until"] == entry["expires_at"]
    [line] = cli("allow", "show").lines()
    assert line.split("\t")[:3] == ["192.0.2.10", "our relay", "cli"]
    removed = cli("allow", "remove", "192.0.2.10", "--json").json()
    assert removed == {"subject": "192.0.2.10", "removed": 1}
    assert cli("allow", "show", "--json").json() == []


@given(st.one_of(st.none(), st.booleans(), st.integers(), st.text(), st.lists(st.text())))
def test_plain_fields_never_split_a_record(value: object) -> None:
    """A plain field never holds a tab or a line break, and is never empty."""
    field = common.plain_value(value)
    assert field and "\t" not in field and field.splitlines() == [field]

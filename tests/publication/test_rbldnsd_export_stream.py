"""The streamed IP export (`write_ip_streamed`): rbldnsd answers what the in-memory render gives."""

from __future__ import annotations

import time
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reputable.core.cause import Cause
from reputable.listings.model import AllowEntry, Listing
from reputable.publication.exports.rbldnsd import (
    _PLAIN,
    _PLAIN_LINES,
    TXT_MAX,
    Dataset,
    HostRow,
    dataset_path,
    render,
    txt_value,
    write_ip_streamed,
)
from tests.publication.test_rbldnsd_export import HEADER, ZONE, allow, ip4set_answer, listing

BASE = 0xC0000200  # 192.0.2.0: every subject of these tests lies in 192.0.2.0/24
CAUSES = [Cause.SPAM, Cause.COMPROMISED, Cause.NETWORK]


def _host_rows(listings: list[Listing], batch: int) -> Iterator[list[HostRow]]:
    hosts = sorted(
        (str(x.subject.network_address), x.cause.value, x.reason, x.listed_at.timestamp())
        for x in listings
        if isinstance(x.subject, IPv4Network) and x.subject.prefixlen == 32
    )
    for i in range(0, len(hosts), batch):
        yield hosts[i : i + batch]


def _streamed(
    tmp: Path, listings: list[Listing], allows: list[AllowEntry], batch: int = 2
) -> list[Dataset]:
    others = [
        x
        for x in listings
        if not (isinstance(x.subject, IPv4Network) and x.subject.prefixlen == 32)
    ]
    base = tmp / "bl.ip4set"
    export = write_ip_streamed(
        base, others, allows, lambda: _host_rows(listings, batch), zone=ZONE, header=HEADER
    )
    first = export.datasets[0]
    text = dataset_path(base, first).read_text(encoding="utf-8")
    return [Dataset(kind="ip4set", suffix="", text=text, entries=first.entries, exclusions=0)]


SUBJECTS = st.one_of(
    st.integers(0, 255).map(lambda i: str(IPv4Address(BASE + i))),
    st.sampled_from(["192.0.2.0/24", "192.0.2.0/28", "192.0.2.16/29", "192.0.2.128/25"]),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.tuples(SUBJECTS, st.sampled_from(CAUSES), st.integers(0, 3)), max_size=12),
    st.lists(st.sampled_from(["192.0.2.4/30", "192.0.2.9", "192.0.2.200"]), max_size=2),
)
def test_streamed_answers_as_render(
    tmp_path: Path, items: list[tuple[str, Cause, int]], allowed: list[str]
) -> None:
    listings = [listing(s, c, f"r{m}{c.value}", m) for s, c, m in items]
    allows = [allow(a) for a in dict.fromkeys(allowed)]
    whole = [d for d in render(listings, allows, zone=ZONE, domain=False, header=HEADER).datasets]
    streamed = _streamed(tmp_path, listings, allows)
    for offset in range(256):
        address = BASE + offset
        assert ip4set_answer(streamed, address) == ip4set_answer(whole[:1], address), offset
    assert ip4set_answer(streamed, 0x7F000002) == ip4set_answer(whole[:1], 0x7F000002)


REASONS = [
    "plain",
    "costs $5",
    "=starts with equals",
    " padded ",
    "two\nlines",
    "é" * 130,
    "$1",
    "$$1",
    "a $ b",
    "ends $",
    "x$²",
]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(SUBJECTS, st.sampled_from(CAUSES), st.sampled_from(REASONS)),
        min_size=1,
        max_size=8,
    )
)
def test_streamed_txt_as_render(tmp_path: Path, items: list[tuple[str, Cause, str]]) -> None:
    """Reasons that txt_value rewrites ($, =, blanks, line breaks, too long) stream as rendered."""
    listings = [listing(s, c, r, m) for m, (s, c, r) in enumerate(items)]
    whole = [d for d in render(listings, [], zone=ZONE, domain=False, header=HEADER).datasets]
    streamed = _streamed(tmp_path, listings, [])
    for offset in range(256):
        address = BASE + offset
        assert ip4set_answer(streamed, address) == ip4set_answer(whole[:1], address), offset


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.tuples(SUBJECTS, st.sampled_from(CAUSES), st.integers(0, 3)), max_size=40),
    st.lists(st.sampled_from(["192.0.2.4/30", "192.0.2.9", "192.0.2.200"]), max_size=2),
    st.integers(1, 50),
)
def test_streamed_blocks_answer_as_render(
    tmp_path: Path, items: list[tuple[str, Cause, int]], allowed: list[str], batch: int
) -> None:
    """Whole batches of hosts (one join each when they qualify) answer as render does."""
    listings = [listing(s, c, f"r{m} {s}", m) for s, c, m in items]
    allows = [allow(a) for a in dict.fromkeys(allowed)]
    whole = [d for d in render(listings, allows, zone=ZONE, domain=False, header=HEADER).datasets]
    streamed = _streamed(tmp_path, listings, allows, batch)
    for offset in range(256):
        address = BASE + offset
        assert ip4set_answer(streamed, address) == ip4set_answer(whole[:1], address), offset


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(REASONS), min_size=20, max_size=200), st.integers(3, 300))
def test_streamed_host_lines_are_render_lines(
    tmp_path: Path, reasons: list[str], batch: int
) -> None:
    """Hosts of per-host reasons, in blocks: render's very lines, in text order, and warnings."""
    listings = [
        listing(str(IPv4Address(BASE + 3 + i)), Cause.SPAM, f"{r} {i}", 0)
        for i, r in enumerate(reasons)
    ]
    whole = render(listings, [], zone=ZONE, domain=False, header=HEADER)
    base = tmp_path / "bl.ip4set"
    export = write_ip_streamed(
        base, [], [], lambda: _host_rows(listings, batch), zone=ZONE, header=HEADER
    )
    expected = whole.datasets[0].text.splitlines()
    test_point = [x for x in expected if x.startswith("127.0.0.2 ")]
    hosts = sorted(x for x in expected if x.startswith("192."))
    assert base.read_text(encoding="utf-8").splitlines() == expected[:4] + test_point + hosts
    assert export.datasets[0].entries == whole.datasets[0].entries
    # (each names the first host with it: in text order here, in numeric order in render)
    kinds = sorted(w.split(": ", 1)[1] for w in export.warnings)
    assert kinds == sorted(w.split(": ", 1)[1] for w in whole.warnings)


@given(st.lists(st.text(max_size=40), max_size=6))
def test_plain_lines_is_plain_of_every_line(templates: list[str]) -> None:
    """The check of a block of templates at once says what _PLAIN says of each."""
    if any("\n" in t for t in templates):
        return
    each = all(_PLAIN.fullmatch(t) for t in templates)
    assert bool(_PLAIN_LINES.fullmatch("".join(t + "\n" for t in templates))) == each


@given(st.text(max_size=300))
def test_plain_txt_is_what_txt_value_returns(template: str) -> None:
    """The streamed export writes a TXT matching _PLAIN as it is: txt_value must agree."""
    warnings: dict[str, str] = {}
    value = txt_value(template, "192.0.2.1", warnings)
    if _PLAIN.fullmatch(template) and len(template.encode()) <= TXT_MAX:
        assert (value, warnings) == (template, {})


@pytest.mark.parametrize(
    "template", ["a\u2028b", "x\x1cy", "=a", "a ", "\tb", "$1", "$$$1", "a\0b", "$\u00b2"]
)
def test_templates_that_txt_value_may_change_are_not_plain(template: str) -> None:
    assert _PLAIN.fullmatch(template) is None


@pytest.mark.parametrize("template", ["", "$", "spam from 192.0.2.1 https://l.example/?ip=$", "$$"])
def test_plain_templates(template: str) -> None:
    assert _PLAIN.fullmatch(template) is not None


def test_plain_check_is_linear() -> None:
    """A long TXT with a trailing blank must not send the check into backtracking."""
    started = time.process_time()
    assert _PLAIN.fullmatch("a $ b " * 40 + " ") is None
    assert _PLAIN.fullmatch("a" * 10_000 + "\t") is None
    assert time.process_time() - started < 0.5  # exponential before: 1 s at 22 characters

"""jsonl.table_rows (the import's parser path) gives the rows and errors of parse + evidence_table_rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reputable.cli import policy as policy_cli
from reputable.evidence.parsers import jsonl
from reputable.store.sqlite_evidence import evidence_table_rows

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def reference(lines: list[str]) -> tuple[list[tuple[object, ...]], list[jsonl.LineError]]:
    """The reference path: Evidence objects, then their table rows."""
    good, bad = jsonl.parse(lines, now=NOW)
    return list(evidence_table_rows(good)), bad


def both(lines: list[str]) -> tuple[object, object]:
    """Return (reference, fast) results with the types of every value, so 1 and 1.0 differ."""
    fast_rows, fast_bad = jsonl.table_rows(lines, now=NOW)
    ref_rows, ref_bad = reference(lines)
    typed = lambda rows: [[(type(v).__name__, v) for v in row] for row in rows]  # noqa: E731
    return (typed(ref_rows), ref_bad), (typed(fast_rows), fast_bad)


CASES = [
    {"subject": "198.51.100.7", "cause": "spam", "source": "traps", "at": "2026-11-29T07:59:59Z"},
    {"subject": "198.51.100.7", "cause": "SPAM", "source": "traps", "at": "2026-11-29T07:59:59Z"},
    {"subject": " 198.51.100.7 ", "cause": "spam", "source": "traps", "weight": 2},
    {"subject": "2001:DB8::1", "cause": "compromised", "source": "sshd", "weight": 0.5},
    {"subject": "2001:db8:0:0:1::7", "cause": "spam", "source": "x", "detail": {"b": 1, "a": [1]}},
    {"subject": "Shop.Example.", "cause": "malware_host", "source": "urlfeed"},
    {"subject": "203.0.113.5", "cause": "malware_host", "source": "u", "domain": "Site.Example"},
    {"subject": "203.0.113.5", "cause": "spam", "source": "u", "domain": "site.example"},
    {"subject": "203.0.113.5", "cause": "spam", "source": "u", "domain": ""},
    {"subject": "203.0.113.5", "cause": "spam", "source": "u", "domain": 7},
    {"subject": "192.0.2.1", "cause": "spam", "source": "s", "id": "abc"},
    {"subject": "192.0.2.1", "cause": "spam", "source": "s", "id": ""},
    {"subject": "192.0.2.1", "cause": "spam", "source": "s", "id": 5},
    {"subject": "192.0.2.1", "cause": "spam", "source": "s", "at": "2026-11-29T08:00:00+02:00"},
    {"subject": "192.0.2.1", "cause": "spam", "source": "s", "at": "2026-11-29T08:00:00.25Z"},
    {"subject": "192.0.2.1", "cause": "spam", "source": "s", "at": "2026-11-29 08:00:00"},
    {"subject": "192.0.2.1", "cause": "spam", "source": "s", "at": "2026-11-29T08:00:00z"},
    {"subject": "192.0.2.1", "cause": "spam", "source": "s", "at": " 2026-11-29T08:00:00Z"},
    {"subject": "192.0.2.1", "cause": "spam", "source": "s", "at": "2026-02-30T08:00:00Z"},
    {"subject": "192.0.2.1", "cause": "spam", "source": "s", "at": "2026-11-29T24:00:00Z"},
    {"subject": "192.0.2.1", "cause": "spam", "source": "s", "at": "2026-11-29T23:59:60Z"},
    {"subject": "192.0.2.1", "cause": "spam", "source": "s", "at": "2026-11-29T0٨:00:00Z"},
    {"subject": "192.0.2.1", "cause": "spam", "source": "s", "at": 1764403200},
    {"subject": "192.0.2.1", "cause": "spam", "source": "s", "at": None},
    {"subject": "192.0.2.1", "cause": "spam", "source": "s", "weight": True},
    {"subject": "192.0.2.1", "cause": "spam", "source": "s", "weight": 0},
    {"subject": "192.0.2.1", "cause": "spam", "source": "s", "weight": 1000},
    {"subject": "192.0.2.1", "cause": "spam", "source": "s", "weight": "1"},
    {"subject": "192.0.2.1", "cause": "spam", "source": "s", "detail": []},
    {"subject": "192.0.2.1", "cause": "spam", "source": "s", "detail": [1]},
    {"subject": "192.0.2.1", "cause": "spam", "source": "s", "detail": {"é": "ü", "n": None}},
    {"subject": "192.0.2.1", "cause": "nope", "source": "s"},
    {"subject": "192.0.2.1", "cause": 3, "source": "s"},
    {"subject": "192.0.2.1", "cause": "spam", "source": ""},
    {"subject": "192.0.2.1", "cause": "spam"},
    {"subject": "192.0.2.1", "cause": "spam", "source": "s", "extra": 1},
    {"subject": "999.0.2.1", "cause": "spam", "source": "s"},
    {"subject": "bad..name", "cause": "spam", "source": "s"},
    {"subject": "192.0.2.1", "cause": "spam", "source": "s", "domain": "bad..name"},
    {"subject": "faß.example", "cause": "spam", "source": "s"},
    {"subject": 7, "cause": "spam", "source": "s"},
]


def test_every_case_gives_the_reference_rows_and_errors() -> None:
    """Good and bad lines, odd times, hosted causes, ids: the same rows and the same errors."""
    lines = [json.dumps(c) for c in CASES] + ["", "# comment", "[1]", "{bad json", '{"a": 1} x']
    ref, fast = both(lines)
    assert fast == ref
    assert len(ref[0]) > 10 and len(ref[1]) > 15  # type: ignore[index]  # both kinds exercised


def test_a_repeated_hour_and_subject_use_the_caches_and_stay_equal() -> None:
    """Many lines on the same subjects and hours (the caches) give the same rows as one by one."""
    lines = [
        json.dumps(
            {
                "subject": f"10.0.{i % 3}.{i % 7}",
                "cause": ("spam", "clean", "compromised")[i % 3],
                "source": "s",
                "at": f"2026-11-2{i % 2}T0{i % 4}:{i % 60:02d}:{(i * 7) % 60:02d}Z",
            }
        )
        for i in range(500)
    ]
    ref, fast = both(lines)
    assert fast == ref


_value = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 2000), st.floats(allow_nan=False), st.text(max_size=8)
)


@settings(max_examples=300, deadline=None)
@given(
    subject=st.one_of(
        st.sampled_from(["192.0.2.1", "2001:db8::1", "a.example", "x", "1.2.3", "::ffff:1.2.3.4"]),
        _value,
    ),
    cause=st.one_of(st.sampled_from(["spam", "malware_host", "clean", "Rdns"]), _value),
    source=st.one_of(st.sampled_from(["s", "feed:x"]), _value),
    at=st.one_of(
        st.datetimes(
            min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
        ).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
        _value,
    ),
    weight=st.one_of(st.floats(0.001, 1000), _value),
    domain=st.one_of(st.sampled_from(["d.example", "D.Example."]), _value),
    detail=st.one_of(st.dictionaries(st.text(max_size=3), _value, max_size=3), _value),
    key=st.one_of(st.text(max_size=4), _value),
    present=st.sets(st.sampled_from(["at", "weight", "domain", "detail", "id"])),
)
def test_any_object_gives_the_reference_row_or_error(
    subject: object,
    cause: object,
    source: object,
    at: object,
    weight: object,
    domain: object,
    detail: object,
    key: object,
    present: set[str],
) -> None:
    """Whatever the fields hold, table_rows agrees with the reference path."""
    fields = {"subject": subject, "cause": cause, "source": source}
    optional = {"at": at, "weight": weight, "domain": domain, "detail": detail, "id": key}
    fields.update({k: v for k, v in optional.items() if k in present})
    ref, fast = both([json.dumps(fields)])
    assert fast == ref


def test_byte_ranges_give_the_lines_a_text_read_gives(tmp_path: Path, monkeypatch: Any) -> None:
    """`evidence import` hands parsers byte ranges: together they hold the text-mode lines.

    Odd line ends (CRLF, a lone CR), bad UTF-8, a multi-byte character at a cut, a blank
    line and no newline at the end: the rows, the bad lines' numbers and the count agree
    with parsing the lines of ``open(..., errors="replace")``.
    """
    good = [
        json.dumps({"subject": f"10.0.0.{i}", "cause": "spam", "source": "s"}) for i in range(40)
    ]
    parts = [line.encode() + b"\n" for line in good]
    parts[3] = good[3].encode() + b"\r\n"
    parts[5] = good[5].encode() + b"\r"
    parts[8] = b'{"subject": "10.0.0.8", "cause": "spam", "source": "\xff\xfe"}\n'
    parts[11] = '{"subject": "10.0.0.11", "cause": "spam", "source": "é€"}\n'.encode()
    parts[13] = b"\n"
    parts[17] = b"not json\n"
    parts[-1] = good[-1].encode()  # no newline at the end
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"".join(parts))
    with path.open(encoding="utf-8", errors="replace") as handle:
        expected_lines = list(handle)
    expected = policy_cli.parse_rows_counted(expected_lines, NOW)
    for size in (1, 7, 64, 100, 1 << 20):
        monkeypatch.setattr(policy_cli, "RANGE_BYTES", size)
        spans = list(policy_cli._byte_ranges(path, path.stat().st_size))
        assert spans[0][0] == 0 and spans[-1][1] == path.stat().st_size
        assert all(a[1] == b[0] for a, b in pairwise(spans))
        rows: list[jsonl.TableRow] = []
        bad: list[jsonl.LineError] = []
        read = 0
        for start, end in spans:
            got_rows, got_bad, count = policy_cli.parse_range(str(path), start, end, NOW)
            rows += got_rows
            bad += [jsonl.LineError(e.lineno + read, e.message) for e in got_bad]
            read += count
        assert (rows, bad, read) == expected, size
    assert expected[2] == 40 and [e.lineno for e in expected[1]] == [18]

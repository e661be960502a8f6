"""web/intake.parse_rows: the rows parse_body's evidence would make, bad lines and counts alike."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from reputable.store.sqlite_evidence import evidence_table_rows
from reputable.web.intake import parse_body, parse_rows

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)

LINES = [
    json.dumps({"subject": "192.0.2.1", "cause": "spam", "source": "traps", "id": "a1"}),
    json.dumps(
        {
            "subject": "2001:DB8::1",
            "cause": "compromised",
            "source": "sshd",
            "at": "2026-11-28T07:59:59Z",
            "weight": 2.5,
        }
    ),
    json.dumps(
        {
            "subject": "bad.example",
            "cause": "malware_host",
            "source": "feed",
            "at": "2026-11-28T09:00:00.5+01:00",
            "detail": {"url": "http://bad.example/x"},
        }
    ),
    "# a comment",
    "",
    "{not json",
    json.dumps(["a", "list"]),
    json.dumps({"subject": "999.1.1.1", "cause": "spam", "source": "traps"}),
    json.dumps({"subject": "192.0.2.9", "cause": "no-such-cause", "source": "traps"}),
    json.dumps({"subject": "192.0.2.1", "cause": "spam", "source": "traps", "id": "a1"}),
]


@pytest.mark.parametrize(
    "content_type", ["application/x-ndjson", "application/json; charset=utf-8"]
)
def test_json_lines_give_the_rows_of_parse_body(content_type: str) -> None:
    body = "\n".join(LINES).encode()
    good, bad, received = parse_body(body, content_type, NOW)
    rows, bad_rows, received_rows = parse_rows(body, content_type, NOW)
    assert rows == list(evidence_table_rows(good))
    assert len(rows) == 4
    assert bad_rows == bad
    assert [e.lineno for e in bad_rows] == [6, 7, 8, 9]
    assert received_rows == received == 8


def test_one_json_document_gives_the_rows_of_parse_body() -> None:
    records = [json.loads(line) for line in LINES[:3]] + [["not", "an", "object"]]
    body = json.dumps(records, indent=2).encode()
    good, bad, received = parse_body(body, "application/json", NOW)
    rows, bad_rows, received_rows = parse_rows(body, "application/json", NOW)
    assert rows == list(evidence_table_rows(good))
    assert len(rows) == 3
    assert bad_rows == bad
    assert [e.lineno for e in bad_rows] == [4]
    assert received_rows == received == 4

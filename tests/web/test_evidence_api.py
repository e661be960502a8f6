"""Evidence intake over HTTP: tokens and scopes, idempotency, line errors, 413, and DNS."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reputable.testing import cli
from tests.web.conftest import Api, start_api, wait_for

NDJSON = {"content-type": "application/x-ndjson"}


def record(subject: str, n: int, **extra: object) -> str:
    """Return one evidence line with id *n*."""
    fields = {"subject": subject, "cause": "spam", "source": "traps", "weight": 2.0, "id": f"r{n}"}
    return json.dumps({**fields, **extra})


def evidence_total(api: Api, subject: str) -> int:
    """Return how many pieces of evidence the store holds about *subject*."""
    out = cli(api.config, "explain", subject, "--json", check=False).stdout
    return int(json.loads(out)["evidence"]["total"])


@pytest.mark.serial  # a wall-clock limit: no other worker's test runs meanwhile
def test_posted_evidence_is_listed_in_dns_within_5_s(fresh_api: Api) -> None:
    """Spam evidence posted over HTTP makes DNS list the address within 5 seconds."""
    token = fresh_api.token("ingest-1", "evidence:write")
    name = "9.113.0.203.bl.reputable.test"
    assert fresh_api.dns_codes(name) == set()
    body = "\n".join(record("203.0.113.9", n) for n in range(3)) + "\n"
    started = time.monotonic()
    reply = fresh_api.client.post(
        "/api/v1/evidence",
        content=body,
        headers={**NDJSON, "Authorization": f"Bearer {token}"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json() == {
        "received": 3,
        "stored": 3,
        "duplicate": 0,
        "rejected": 0,
        "errors": [],
    }
    # Waited for past the limit, then timed: a failure says how late, and a deadline spent
    # before the first ask cannot fail an answer that came in time.
    wait_for(
        lambda: fresh_api.dns_codes(name) == {"127.0.0.2"},
        30,
        "listed in DNS",
        fresh_api.server.log,
    )
    took = time.monotonic() - started
    assert took < 5, f"listed {took:.2f} s after the post"
    lookup = fresh_api.client.get("/api/v1/lookup/203.0.113.9").json()
    assert lookup["listed"] and lookup["bucket"] in ("poor", "bad")


def test_intake_is_idempotent_and_reports_bad_lines(fresh_api: Api) -> None:
    """A repeated id is a duplicate; bad lines are counted with their line numbers."""
    token = fresh_api.token("ingest-2", "evidence:write")
    auth = {**NDJSON, "Authorization": f"Bearer {token}"}
    lines = [
        record("192.0.2.10", 1),
        "{not json",
        "",
        record("192.0.2.10", 2, cause="no-such-cause"),
        record("192.0.2.10", 1),  # the same id again
        record("192.0.2.10", 3, colour="red"),
    ]
    first = fresh_api.client.post("/api/v1/evidence", content="\n".join(lines), headers=auth)
    body = first.json()
    assert (body["received"], body["stored"], body["duplicate"], body["rejected"]) == (5, 1, 1, 3)
    assert [e["line"] for e in body["errors"]] == [2, 4, 6]
    assert "bad JSON" in body["errors"][0]["message"]
    assert "unknown cause" in body["errors"][1]["message"]
    assert "unknown field" in body["errors"][2]["message"]
    again = fresh_api.client.post("/api/v1/evidence", content=lines[0], headers=auth).json()
    assert (again["stored"], again["duplicate"]) == (0, 1)
    one = fresh_api.client.post(
        "/api/v1/evidence",
        json={"subject": "192.0.2.11", "cause": "spam", "source": "traps", "id": "x"},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert one["stored"] == 1
    many = fresh_api.client.post(
        "/api/v1/evidence",
        content=json.dumps(
            [
                {"subject": "192.0.2.12", "cause": "spam", "source": "t", "id": str(i)}
                for i in range(4)
            ],
            indent=2,
        ),
        headers={"Authorization": f"Bearer {token}", "content-type": "application/json"},
    ).json()
    assert (many["received"], many["stored"]) == (4, 4)


def test_refused_tokens_change_nothing(fresh_api: Api) -> None:
    """No token, an unknown one, a revoked one (401) or the wrong scope (403) store nothing."""
    good = fresh_api.token("ingest-3", "evidence:write")
    bouncer = fresh_api.token("fw-1", "bouncer")
    revoked = fresh_api.token("old", "evidence:write")
    cli(fresh_api.config, "token", "revoke", "old")
    body = record("198.51.100.200", 1)
    statuses = [
        fresh_api.client.post("/api/v1/evidence", content=body, headers=headers).status_code
        for headers in (
            {},
            {"Authorization": "Bearer rpt_wrong"},
            {"Authorization": f"Bearer {revoked}"},
            {"Authorization": f"Bearer {bouncer}"},
        )
    ]
    assert statuses == [401, 401, 401, 403]
    assert evidence_total(fresh_api, "198.51.100.200") == 0
    ok = fresh_api.client.post(
        "/api/v1/evidence", content=body, headers={"Authorization": f"Bearer {good}"}
    )
    assert ok.status_code == 200
    assert evidence_total(fresh_api, "198.51.100.200") == 1


@pytest.fixture
def small_api(tmp_path: Path) -> Iterator[Api]:
    """A server whose request bodies are capped at 4 KiB."""
    yield from start_api(tmp_path, http='max_body = "4KB"')


def test_oversize_bodies_get_413(small_api: Api) -> None:
    """A body over http.max_body gets 413 with the error document, declared or streamed."""
    token = small_api.token("ingest-4", "evidence:write")
    auth = {"Authorization": f"Bearer {token}"}
    big = "\n".join(record("192.0.2.20", n) for n in range(200))
    declared = small_api.client.post("/api/v1/evidence", content=big, headers=auth)
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "body_too_large"
    assert "max_body" in declared.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:
        for n in range(200):
            yield (record("192.0.2.20", n) + "\n").encode()

    streamed = small_api.client.post("/api/v1/evidence", content=chunks(), headers=auth)
    assert streamed.status_code == 413
    assert evidence_total(small_api, "192.0.2.20") == 0


def test_large_bodies_are_parsed_in_the_parser_process(fresh_api: Api) -> None:
    """A body over 256 KiB (parsed in a separate process) gives the same counts and line numbers."""
    token = fresh_api.token("ingest-5", "evidence:write")
    lines = [record(f"10.7.{n >> 8}.{n & 255}", n, detail={"pad": "x" * 60}) for n in range(3000)]
    lines[1500] = "{broken"
    body = "\n".join(lines)
    assert len(body.encode()) > 256 * 1024
    reply = fresh_api.client.post(
        "/api/v1/evidence",
        content=body,
        headers={**NDJSON, "Authorization": f"Bearer {token}"},
    ).json()
    assert (reply["received"], reply["stored"], reply["rejected"]) == (3000, 2999, 1)
    assert [e["line"] for e in reply["errors"]] == [1501]

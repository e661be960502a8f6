"""Lookups, explain, errors, OpenAPI, docs, health and metrics over a real `serve`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser

import dns.message
import dns.query
import pytest

from reputable.testing import cli
from tests.conftest import STORE_BACKENDS, pg_schema_dsn
from tests.web.conftest import Api, start_api, wait_for


@pytest.fixture(scope="module", params=STORE_BACKENDS)
def api(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_database: str | None,
) -> Iterator[Api]:
    """One server per store back-end, shared by this module's tests (serve on PostgreSQL too)."""
    folder = tmp_path_factory.mktemp("api")
    if request.param == "sqlite":
        yield from start_api(folder)
        return
    for dsn in pg_schema_dsn(pg_database):
        yield from start_api(folder, store_dsn=dsn)


def listed_in_dns(api: Api, name: str) -> bool:
    """True when DNS answers an A record for *name*."""
    return bool(api.dns_codes(name))


def test_lookup_matches_dns_with_times(api: Api) -> None:
    """A CLI listing shows up in the API with cause, code, since, until and DNS's own TXT."""
    cli(api.config, "list", "add", "198.51.100.7", "-c", "spam", "-r", "trap hits", "--ttl", "2d")
    wait_for(lambda: listed_in_dns(api, "7.100.51.198.bl.reputable.test"), 30)
    body = api.client.get("/api/v1/lookup/198.51.100.7").json()
    assert body["listed"] is True and body["allowlisted"] is False
    (entry,) = body["listings"]
    assert (entry["cause"], entry["code"], entry["reason"]) == ("spam", "127.0.0.2", "trap hits")
    assert entry["since"].endswith("Z") and entry["until"] > entry["since"]
    reply = dns.query.udp(
        dns.message.make_query("7.100.51.198.bl.reputable.test", "TXT"),
        "127.0.0.1",
        port=api.dns_port,
        timeout=3,
    )
    (txt,) = [b"".join(r.strings).decode() for rrset in reply.answer for r in rrset]
    assert entry["txt"] == txt
    assert body["score"] == 50 and body["bucket"] == "unknown"  # no evidence, only a listing


def test_batch_lookup_keeps_order_and_refuses_bad_subjects(api: Api) -> None:
    """POST /lookup answers in order; a bad subject is a 400 naming its index."""
    ok = api.client.post("/api/v1/lookup", json={"subjects": ["127.0.0.2", "10.9.9.9", "test"]})
    assert ok.status_code == 200
    results = ok.json()["results"]
    assert [r["subject"] for r in results] == ["127.0.0.2", "10.9.9.9", "test"]
    assert [r["listed"] for r in results] == [True, False, True]
    bad = api.client.post("/api/v1/lookup", json={"subjects": ["10.0.0.1", "not a name!"]})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "bad_subject"
    assert "subjects[1]" in bad.json()["error"]["message"]
    too_many = api.client.post("/api/v1/lookup", json={"subjects": ["10.0.0.1"] * 1001})
    assert too_many.status_code == 400
    assert "1000" in too_many.json()["error"]["message"]


def test_malformed_requests_get_clear_4xx(api: Api) -> None:
    """Malformed JSON, unknown fields, bad CIDRs and unknown paths answer the error document."""
    cases = [
        api.client.post(
            "/api/v1/lookup", content=b"{nope", headers={"content-type": "application/json"}
        ),
        api.client.post("/api/v1/lookup", json={"subjects": ["10.0.0.1"], "extra": 1}),
        api.client.get("/api/v1/lookup/10.0.0.1/33"),
        api.client.get("/api/v1/nothing-here"),
    ]
    assert [r.status_code for r in cases] == [400, 400, 400, 404]
    for response in cases:
        error = response.json()["error"]
        assert set(error) == {"code", "message"} and error["message"]
        assert "Traceback" not in response.text
    assert "unknown field" in cases[1].json()["error"]["message"]
    assert "extra" in cases[1].json()["error"]["message"]


def test_explain_is_the_cli_document(api: Api) -> None:
    """GET /explain returns the same document as `reputable explain --json`."""
    cli(api.config, "list", "add", "203.0.113.5", "-c", "compromised", "-r", "botnet")
    body = api.client.get("/api/v1/explain/203.0.113.5").json()
    assert body["subject"] == "203.0.113.5" and body["listed"] is True
    assert body["listings"][0]["cause"] == "compromised"
    assert body["remediation"], "explain gives the fix for the cause"


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.refs += [v for k, v in attrs if k in ("src", "href") and v]


def test_openapi_and_docs_load_nothing_from_outside(api: Api) -> None:
    """The docs page and its assets all come from this server; the OpenAPI document lists the routes."""
    spec = api.client.get("/api/v1/openapi.json").json()
    assert {"/api/v1/lookup/{subject}", "/api/v1/lookup", "/api/v1/evidence"} <= set(spec["paths"])
    page = api.client.get("/api/v1/docs")
    assert page.status_code == 200
    parser = _Refs()
    parser.feed(page.text)
    assert parser.refs, "the page references its script and style"
    assert not re.search(r"https?://", page.text), "no absolute URL (CDN) in the docs page"
    for ref in parser.refs:
        assert ref.startswith("/"), ref
        assert api.client.get(ref).status_code == 200, ref


def test_health_and_metrics(api: Api) -> None:
    """/healthz reports the snapshot and store; /metrics counts requests per route."""
    health = api.client.get("/healthz").json()
    assert health["status"] == "ok" and health["store"] is True
    assert health["snapshot_age_seconds"] >= 0
    api.client.get("/api/v1/lookup/192.0.2.1")
    import httpx

    text = httpx.get(f"http://127.0.0.1:{api.server.metrics_port}/metrics", timeout=5).text
    assert re.search(
        r'reputable_http_requests_total\{route="/api/v1/lookup/\{subject:path\}",method="GET",status="200"\} [1-9]',
        text,
    )
    assert 'reputable_http_request_seconds_bucket{route="/api/v1/lookup/{subject:path}"' in text
    assert "reputable_dns_queries_total" in text  # the DNS counters are still there

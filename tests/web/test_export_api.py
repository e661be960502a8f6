"""Streamed exports (plain, AbuseIPDB shape) and Safe-Browsing-style URL lookups."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from reputable.testing import cli
from reputable.web.urls import canonical
from tests.web.conftest import Api, wait_for


@pytest.fixture(scope="module")
def listed(api: Api) -> Api:
    """The shared server with a host, a network, an allowlisted host and a domain listed."""
    for args in (
        ("192.0.2.5", "-c", "spam"),
        ("192.0.2.6", "-c", "spam"),
        ("198.51.100.0/24", "-c", "network"),
        ("evil.example", "-c", "malware_host", "-r", "phishing kit"),
    ):
        cli(api.config, "list", "add", *args)
    cli(api.config, "allow", "add", "192.0.2.6", "--note", "partner")
    wait_for(lambda: api.client.get("/api/v1/lookup/192.0.2.6").json()["allowlisted"], 30)
    return api


def test_plain_export_lists_what_dns_lists(listed: Api) -> None:
    """The plain export has one IP or CIDR a line: no domains, no allowlisted hosts."""
    reply = listed.client.get("/api/v1/export/plain")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    lines = reply.text.splitlines()
    assert "192.0.2.5" in lines and "198.51.100.0/24" in lines
    assert "192.0.2.6" not in lines and "evil.example" not in lines
    assert len(lines) == len(set(lines))


def test_abuseipdb_export_shape_and_filter(listed: Api) -> None:
    """The AbuseIPDB export has meta and data items; confidenceMinimum filters; 101 is refused."""
    body = listed.client.get("/api/v1/export/abuseipdb").json()
    assert body["meta"]["generatedAt"].endswith("Z")
    items = {d["ipAddress"]: d for d in body["data"]}
    assert "192.0.2.5" in items and "198.51.100.0/24" not in items  # addresses only
    item = items["192.0.2.5"]
    assert set(item) == {"ipAddress", "countryCode", "abuseConfidenceScore", "lastReportedAt"}
    assert item["abuseConfidenceScore"] == 50  # listed without evidence: score 50
    high = listed.client.get("/api/v1/export/abuseipdb", params={"confidenceMinimum": 90}).json()
    assert high["data"] == []
    bad = listed.client.get("/api/v1/export/abuseipdb", params={"confidenceMinimum": 101})
    assert bad.status_code == 400


def test_urls_find_canonicalises_like_safe_browsing(listed: Api) -> None:
    """Obfuscated URLs to a listed domain or address match; clean ones do not."""
    decimal = int(IPv4Address("192.0.2.5"))
    urls = [
        "HTTP://WWW.Evil.Example./a/./b/../c#frag",
        f"http://{decimal}/login",
        "https://clean.example/",
        "http://sub.evil.example%2Ekit/",
    ]
    reply = listed.client.post("/api/v1/urls:find", json={"urls": urls})
    assert reply.status_code == 200
    matches = {m["url"]: m for m in reply.json()["matches"]}
    assert set(matches) == {urls[0], urls[1]}
    assert matches[urls[0]]["canonical"] == "http://www.evil.example/a/c"
    assert matches[urls[0]]["matched"] == "evil.example"
    assert matches[urls[0]]["listings"][0]["cause"] == "malware_host"
    assert matches[urls[1]]["canonical"] == "http://192.0.2.5/login"
    bad = listed.client.post("/api/v1/urls:find", json={"urls": ["http://"]})
    assert bad.status_code == 400 and "urls[0]" in bad.json()["error"]["message"]


@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("http://host/%25%32%35", "http://host/%25"),
        ("http://www.GOOgle.com/", "http://www.google.com/"),
        ("http://3279880203/blah", "http://195.127.0.11/blah"),
        ("http://www.google.com/blah/..", "http://www.google.com/"),
        ("www.google.com/", "http://www.google.com/"),
        ("http://www.evil.com/blah#frag", "http://www.evil.com/blah"),
        ("http://www.google.com/foo\tbar\rbaz\n2", "http://www.google.com/foobarbaz2"),
        ("http://...www.google.com.../", "http://www.google.com/"),
        ("http://0x4a.0x7d.0xa.0x28/", "http://74.125.10.40/"),
        ("http://www.google.com/q?r?", "http://www.google.com/q?r?"),
    ],
)
def test_canonical_matches_the_safe_browsing_examples(url: str, want: str) -> None:
    """Canonicalisation gives the results of Google's documented examples."""
    assert canonical(url).text == want

"""Removal requests and administration over a real `serve`: scopes, audit, limits, DNS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from reputable.testing import cli
from tests.web.conftest import Api, start_api, wait_for

NAME = "44.100.51.198.bl.reputable.test"


@pytest.fixture
def limited_api(tmp_path: Path) -> Iterator[Api]:
    """A server allowing 2 removal requests per subject per hour."""
    yield from start_api(tmp_path, http="delist_per_subject = 2")


def test_removal_request_approved_by_operator_leaves_dns(limited_api: Api) -> None:
    """An operator listing, a pending public request, approval by an admin token: DNS delists."""
    api = limited_api
    ops = api.token("ops", "admin")
    fw = api.token("fw", "bouncer")
    admin = {"Authorization": f"Bearer {ops}"}
    made = api.client.post(
        "/api/v1/admin/listings",
        json={"subject": "198.51.100.44", "cause": "spam", "reason": "trap hits", "ttl": "7d"},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    assert made.json()["code"] == "127.0.0.2"
    wait_for(lambda: api.dns_codes(NAME) == {"127.0.0.2"}, 30)

    filed = api.client.post(
        "/api/v1/delist",
        json={"subject": "198.51.100.44", "contact": "admin@example.net", "note": "fixed"},
    )
    assert filed.status_code == 200
    body = filed.json()
    assert body["status"] == "pending" and isinstance(body["id"], int)
    status = api.client.get(f"/api/v1/delist/{body['id']}").json()
    assert status["status"] == "pending"
    queue = api.client.get("/api/v1/admin/delist", headers=admin).json()
    assert [q["id"] for q in queue] == [body["id"]]

    url = f"/api/v1/delist/{body['id']}/approve"
    assert api.client.post(url, json={"reason": "ok"}).status_code == 401
    assert api.client.post(url, json={"reason": "ok"}, headers={"X-Api-Key": fw}).status_code == 401
    assert (
        api.client.post(
            url, json={"reason": "ok"}, headers={"Authorization": f"Bearer {fw}"}
        ).status_code
        == 403
    )
    assert api.dns_codes(NAME) == {"127.0.0.2"}, "refused approvals changed nothing"
    done = api.client.post(url, json={"reason": "host cleaned"}, headers=admin)
    assert done.status_code == 200
    assert done.json()["status"] == "granted"
    wait_for(lambda: api.dns_codes(NAME) == set(), 30)
    again = api.client.post(url, json={"reason": "twice"}, headers=admin)
    assert again.status_code == 404
    history = json.loads(cli(api.config, "explain", "198.51.100.44", "--json").stdout)["history"]
    actors = {h["actor"] for h in history}
    assert "token:ops" in actors, history


def test_removal_requests_are_rate_limited_per_subject(limited_api: Api) -> None:
    """The third request for one subject within the window gets 429 with Retry-After."""
    api = limited_api
    cli(api.config, "list", "add", "192.0.2.77", "-c", "manual", "-r", "operator")
    request = {"subject": "192.0.2.77", "contact": "a@example.net", "note": "please"}
    first = [api.client.post("/api/v1/delist", json=request) for _ in range(2)]
    assert [r.json()["status"] for r in first] == ["pending", "pending"]
    third = api.client.post("/api/v1/delist", json=request)
    assert third.status_code == 429
    assert int(third.headers["Retry-After"]) > 0
    assert third.json()["error"]["code"] == "rate_limited"
    refused = api.client.post(
        "/api/v1/delist", json={"subject": "192.0.2.78", "contact": "a@example.net"}
    )
    assert refused.json()["status"] == "refused"
    assert "not listed" in refused.json()["message"]
    bad = api.client.post("/api/v1/delist", json={"subject": "192.0.2.78", "contact": "nobody"})
    assert bad.status_code == 400 and "e-mail" in bad.json()["error"]["message"]


def test_admin_listings_allowlist_and_limits(fresh_api: Api) -> None:
    """Admins page, add and remove listings and allowlist entries; long reasons get 400."""
    api = fresh_api
    admin = {"Authorization": f"Bearer {api.token('ops', 'admin')}"}
    for n in range(5):
        reply = api.client.post(
            "/api/v1/admin/listings",
            json={"subject": f"192.0.2.{n}", "cause": "compromised", "reason": f"bot {n}"},
            headers=admin,
        )
        assert reply.status_code == 201
    page = api.client.get(
        "/api/v1/admin/listings", params={"limit": 2, "cause": "compromised"}, headers=admin
    ).json()
    assert len(page["listings"]) == 2 and page["more"] is True
    last = api.client.get(
        "/api/v1/admin/listings", params={"limit": 2, "offset": 4}, headers=admin
    ).json()
    assert len(last["listings"]) == 1 and last["more"] is False
    long = api.client.post(
        "/api/v1/admin/listings",
        json={"subject": "192.0.2.9", "cause": "spam", "reason": "x" * 1025},
        headers=admin,
    )
    assert long.status_code == 400 and "1024" in long.json()["error"]["message"]
    broad = api.client.post(
        "/api/v1/admin/listings", json={"subject": "10.0.0.0/8", "cause": "spam"}, headers=admin
    )
    assert broad.status_code == 400
    removed = api.client.delete("/api/v1/admin/listings/192.0.2.0", headers=admin).json()
    assert removed == {"removed": 1}
    allow = api.client.post(
        "/api/v1/admin/allowlist",
        json={"subject": "192.0.2.1", "note": "partner MX"},
        headers=admin,
    )
    assert allow.status_code == 201
    entries = api.client.get("/api/v1/admin/allowlist", headers=admin).json()["allowlist"]
    assert [e["subject"] for e in entries] == ["192.0.2.1"]
    wait_for(lambda: api.client.get("/api/v1/lookup/192.0.2.1").json()["allowlisted"] is True, 30)
    assert api.client.get("/api/v1/lookup/192.0.2.1").json()["listed"] is False
    gone = api.client.delete("/api/v1/admin/allowlist/192.0.2.1", headers=admin).json()
    assert gone == {"removed": 1}
    assert api.client.get("/api/v1/admin/listings").status_code == 401


def test_policy_simulation_shows_the_difference(fresh_api: Api) -> None:
    """A stricter candidate policy would list a subject the live one does not."""
    api = fresh_api
    admin = {"Authorization": f"Bearer {api.token('ops', 'admin')}"}
    writer = {"Authorization": f"Bearer {api.token('in', 'evidence:write')}"}
    line = {"subject": "192.0.2.99", "cause": "spam", "source": "t", "weight": 1.0, "id": "1"}
    api.client.post("/api/v1/evidence", json=line, headers=writer)
    candidate = {"causes": {"spam": {"list": 0.5, "delist": 0.1}}}
    reply = api.client.post("/api/v1/policy/simulate", json={"policy": candidate}, headers=admin)
    assert reply.status_code == 200, reply.text
    assert {"subject": "192.0.2.99", "cause": "spam"} in reply.json()["would_list"]
    bad = api.client.post(
        "/api/v1/policy/simulate",
        json={"policy": {"interval": "soon"}},
        headers=admin,
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_policy"

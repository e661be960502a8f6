"""Public pages and the dashboard over a real `serve`: DNS agreement, forms, CSRF, sessions, mail."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import pytest

from reputable.testing import cli
from tests.web.conftest import Api, wait_for
from tests.web.pages_fixtures import Inbox, csrf_of, post_evidence, smtp_relay, start_site


@pytest.fixture(scope="module")
def relay() -> Iterator[tuple[str, Inbox]]:
    """A loopback SMTP relay shared by the module."""
    yield from smtp_relay()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, relay: tuple[str, Inbox]) -> Iterator[Api]:
    """A server with mail to the relay, shared by the module."""
    yield from start_site(tmp_path_factory.mktemp("site"), relay=relay[0])


def dns_codes(api: Api, name: str) -> set[str]:
    """Return the A answers DNS gives for *name*."""
    reply = dns.query.udp(
        dns.message.make_query(name, "A"), "127.0.0.1", port=api.dns_port, timeout=3
    )
    return {r.address for rrset in reply.answer for r in rrset if rrset.rdtype == 1}


def list_now(api: Api, subject: str, cause: str = "manual", reason: str = "operator test") -> None:
    """List an IPv4 *subject* through the admin API and wait until DNS answers for it."""
    admin = api.token(f"lister{random.randrange(10**9)}", "admin")
    body = {"subject": subject, "cause": cause, "reason": reason}
    reply = api.client.post(
        "/api/v1/admin/listings", json=body, headers={"Authorization": f"Bearer {admin}"}
    )
    assert reply.status_code == 201, reply.text
    qname = ".".join(reversed(subject.split("."))) + ".bl.reputable.test"
    wait_for(lambda: bool(dns_codes(api, qname)), 30)


def page_codes(api: Api, subject: str) -> set[str]:
    """Return the return codes the lookup page shows for *subject*."""
    html = api.client.get(f"/lookup/{subject}").text
    return set(re.findall(r'data-code="([0-9.]+)"', html))


def test_home_and_stylesheet_are_local_and_labelled(site: Api) -> None:
    """The search page loads only from this server and labels its input."""
    html = site.client.get("/").text
    assert html.startswith("<!DOCTYPE html>")
    assert "<label for=q>" in html and "<html lang=en>" in html
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith("/"), url
    css = site.client.get("/static/web.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert (
        site.client.get("/lookup?q=192.0.2.1", follow_redirects=False).headers["location"]
        == "/lookup/192.0.2.1"
    )


def test_lookup_page_agrees_with_dns_for_sampled_subjects(site: Api) -> None:
    """For listed and unlisted sampled addresses the page shows exactly the codes DNS answers."""
    admin = site.token("sampler", "admin")
    auth = {"Authorization": f"Bearer {admin}"}
    rng = random.Random(7)
    listed = [f"198.18.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(12)]
    causes = ["spam", "open_relay", "compromised", "rdns"]
    for i, subject in enumerate(listed):
        body = {"subject": subject, "cause": causes[i % 4], "reason": f"sample {i}"}
        assert (
            site.client.post("/api/v1/admin/listings", json=body, headers=auth).status_code == 201
        )
    last = listed[-1].split(".")
    wait_for(lambda: bool(dns_codes(site, ".".join(reversed(last)) + ".bl.reputable.test")), 30)
    unlisted = [f"198.19.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(8)]
    for subject in [*listed, *unlisted, "127.0.0.2"]:
        qname = ".".join(reversed(subject.split("."))) + ".bl.reputable.test"
        assert page_codes(site, subject) == dns_codes(site, qname), subject
    assert page_codes(site, listed[0]) and not page_codes(site, unlisted[0])


def test_bad_subject_is_a_readable_page(site: Api) -> None:
    """A subject that is no IP, CIDR or domain gets a 400 page naming it and the fix."""
    reply = site.client.get("/lookup/not_a;subject")
    assert reply.status_code == 400 and "text/html" in reply.headers["content-type"]
    assert "Enter an IP address" in reply.text and "Traceback" not in reply.text


def _form_post(
    api: Api, path: str, data: dict[str, str], cookies: dict[str, str] | None = None
) -> tuple[int, str]:
    reply = api.client.post(path, data=data, cookies=cookies, follow_redirects=False)
    return reply.status_code, reply.text


def test_removal_form_refuses_missing_wrong_token_oversize_and_bots(site: Api) -> None:
    """Posts without the CSRF token, with a wrong one, with oversize fields or the trap filled are refused readably."""
    admin = site.token("csrf-lister", "admin")
    body = {"subject": "198.18.0.1", "cause": "manual", "reason": "for the form"}
    site.client.post(
        "/api/v1/admin/listings", json=body, headers={"Authorization": f"Bearer {admin}"}
    )
    wait_for(lambda: bool(dns_codes(site, "1.0.18.198.bl.reputable.test")), 30)
    site.client.cookies.clear()
    page = site.client.get("/lookup/198.18.0.1")
    token = csrf_of(page.text)
    cookie = dict(site.client.cookies)
    assert "rp_csrf" in cookie
    assert (
        "httponly" in page.headers["set-cookie"].lower()
        and "samesite=strict" in page.headers["set-cookie"].lower()
    )
    good = {"subject": "198.18.0.1", "contact": "a@example.org", "note": "fixed", "csrf": token}
    status, text = _form_post(site, "/delist", {k: v for k, v in good.items() if k != "csrf"})
    assert status == 403 and "security token is missing" in text
    status, text = _form_post(site, "/delist", {**good, "csrf": "x" * 40})
    assert status == 403 and "security token is wrong" in text
    status, text = _form_post(site, "/delist", {**good, "note": "n" * 3000})
    assert status == 413 and "at most 2000" in text
    status, text = _form_post(site, "/delist", {**good, "note": "n" * 20000})
    assert status == 413 and "larger than 16 KB" in text
    status, text = _form_post(site, "/delist", {**good, "website": "http://spam"})
    assert status == 400 and "nothing was stored" in text
    for body in (text,):
        assert "Traceback" not in body and "<h1>" in body


def test_removal_request_is_answered_on_the_page(site: Api) -> None:
    """A listed address's form gets a refused/pending/granted answer with a status page."""
    admin = site.token("lister", "admin")
    auth = {"Authorization": f"Bearer {admin}"}
    body = {"subject": "198.51.100.77", "cause": "manual", "reason": "operator test"}
    assert site.client.post("/api/v1/admin/listings", json=body, headers=auth).status_code == 201
    wait_for(lambda: dns_codes(site, "77.100.51.198.bl.reputable.test") == {"127.0.0.10"}, 30)
    site.client.cookies.clear()
    token = csrf_of(site.client.get("/lookup/198.51.100.77").text)
    form = {
        "subject": "198.51.100.77",
        "contact": "owner@example.org",
        "note": "fixed it",
        "csrf": token,
    }
    reply = site.client.post("/delist", data=form)
    assert reply.status_code == 200 and "id=status>pending<" in reply.text
    number = re.search(r'href="/delist/(\d+)"', reply.text)
    assert number
    status = site.client.get(f"/delist/{number.group(1)}")
    assert "pending review" in status.text
    unlisted = site.client.post("/delist", data={**form, "subject": "198.51.100.78"})
    assert "refused" in unlisted.text and "not listed" in unlisted.text


def test_admin_needs_login_and_sessions_are_hashed_and_end(
    site: Api, relay: tuple[str, Inbox]
) -> None:
    """Without a session /admin redirects to login; a wrong token is refused; logout ends it."""
    site.client.cookies.clear()
    assert site.client.get("/admin", follow_redirects=False).headers["location"] == "/admin/login"
    for method, path in (  # every dashboard route has the one login guard (LoggedIn)
        ("GET", "/admin/range?cidr=192.0.2.0/24"),
        ("GET", "/admin/subject/192.0.2.1"),
        ("POST", "/admin/subject/192.0.2.1"),
        ("GET", "/admin/queue"),
        ("POST", "/admin/queue/1"),
        ("GET", "/admin/simulate"),
        ("POST", "/admin/simulate"),
        ("POST", "/admin/logout"),
    ):
        guarded = site.client.request(method, path, follow_redirects=False)
        assert guarded.status_code == 303, (method, path, guarded.status_code)
        assert guarded.headers["location"] == "/admin/login", (method, path)
    token = csrf_of(site.client.get("/admin/login").text)
    status, text = _form_post(site, "/admin/login", {"csrf": token, "token": "rpt_wrong"})
    assert status == 401 and "unknown or revoked token" in text
    weak = site.token("weak", "evidence:write")
    status, text = _form_post(site, "/admin/login", {"csrf": token, "token": weak})
    assert status == 401 and "lacks the admin scope" in text
    secret = site.token("ops", "admin")
    reply = site.client.post(
        "/admin/login", data={"csrf": token, "token": secret}, follow_redirects=False
    )
    assert reply.status_code == 303 and reply.headers["location"] == "/admin"
    cookie = reply.headers["set-cookie"].lower()
    assert "rp_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    session_secret = site.client.cookies["rp_session"]
    overview = site.client.get("/admin")
    assert (
        overview.status_code == 200
        and "<svg" in overview.text
        and "Most listed /24" in overview.text
    )
    assert session_secret not in overview.text
    wait_for(lambda: "/admin/range?cidr=198." in site.client.get("/admin").text, 30)  # top /24s
    admin_csrf = csrf_of(overview.text)
    status, _ = _form_post(site, "/admin/logout", {"csrf": "wrong"})
    assert status == 403
    reply = site.client.post("/admin/logout", data={"csrf": admin_csrf}, follow_redirects=False)
    assert reply.status_code == 303
    site.client.cookies.set("rp_session", session_secret)
    assert site.client.get("/admin", follow_redirects=False).status_code == 303


def _login(api: Api) -> str:
    api.client.cookies.clear()
    token = csrf_of(api.client.get("/admin/login").text)
    secret = api.token(f"op{random.randrange(10**6)}", "admin")
    api.client.post("/admin/login", data={"csrf": token, "token": secret})
    return csrf_of(api.client.get("/admin").text)


def test_operator_denies_with_reason_mailed_to_requester(
    site: Api, relay: tuple[str, Inbox]
) -> None:
    """Denying a pending request from the queue mails the requester the reason."""
    inbox = relay[1]
    list_now(site, "198.51.100.90")
    site.client.cookies.clear()
    token = csrf_of(site.client.get("/lookup/198.51.100.90").text)
    form = {
        "subject": "198.51.100.90",
        "contact": "deny-me@example.org",
        "note": "please",
        "csrf": token,
    }
    number = re.search(r'href="/delist/(\d+)"', site.client.post("/delist", data=form).text)
    assert number
    csrf = _login(site)
    queue = site.client.get("/admin/queue").text
    assert f"#{number.group(1)}" in queue
    reply = site.client.post(
        f"/admin/queue/{number.group(1)}",
        data={"csrf": csrf, "reason": "still sending spam on 12-05", "decision": "deny"},
        follow_redirects=False,
    )
    assert reply.status_code == 303
    wait_for(lambda: any(r == ["deny-me@example.org"] for r in inbox.recipients), 30)
    message = inbox.messages[inbox.recipients.index(["deny-me@example.org"])]
    assert "denied" in message["Subject"] and "still sending spam on 12-05" in message.get_payload()
    assert "denied" in site.client.get(f"/delist/{number.group(1)}").text


def test_range_table_colours_listed_suspicious_and_clean(site: Api) -> None:
    """A /24 shows one row per address: red listed, yellow with evidence, green clean; a /15 is refused."""
    ingest = site.token("ingest-range", "evidence:write")
    post_evidence(site, ingest, "203.0.113.6", 1)
    list_now(site, "203.0.113.5", "spam")
    _login(site)
    html = site.client.get("/admin/range?cidr=203.0.113.0/24").text
    rows = dict(
        re.findall(
            r'>(203\.0\.113\.\d+)</a></td><td[^>]*><span class="status \w+" data-state="(\w+)"',
            html,
        )
    )
    assert len(rows) == 256
    assert (
        rows["203.0.113.5"] == "listed"
        and rows["203.0.113.6"] == "suspicious"
        and rows["203.0.113.7"] == "clean"
    )
    wide = site.client.get("/admin/range?cidr=10.0.0.0/15")
    assert wide.status_code == 400 and "/16 or smaller" in wide.text
    per24 = site.client.get("/admin/range?cidr=203.0.0.0/16").text
    assert per24.count('data-state="') == 256 and 'data-state="listed"' in per24


def test_subject_actions_and_policy_simulation(site: Api) -> None:
    """The subject page lists and removes with a reason (history shows the actor); simulation shows a diff."""
    csrf = _login(site)
    subject = "192.0.2.200"
    reply = site.client.post(
        f"/admin/subject/{subject}",
        data={"csrf": csrf, "action": "list", "cause": "spam", "reason": "seen in our traps"},
        follow_redirects=False,
    )
    assert reply.status_code == 303
    wait_for(lambda: dns_codes(site, "200.2.0.192.bl.reputable.test") == {"127.0.0.2"}, 30)
    html = site.client.get(f"/admin/subject/{subject}").text
    assert "seen in our traps" in html and "token:op" in html and "<svg" in html
    site.client.post(
        f"/admin/subject/{subject}", data={"csrf": csrf, "action": "remove", "reason": "checked"}
    )
    wait_for(lambda: dns_codes(site, "200.2.0.192.bl.reputable.test") == set(), 30)
    missing = site.client.post(
        f"/admin/subject/{subject}",
        data={"csrf": csrf, "action": "list", "cause": "spam", "reason": ""},
    )
    assert missing.status_code == 400 and "needs a reason" in missing.text
    sim = site.client.post("/admin/simulate", data={"csrf": csrf, "policy": "escalate_v4 = 2\n"})
    assert sim.status_code == 200 and "Would list" in sim.text and "Unchanged:" in sim.text
    bad = site.client.post("/admin/simulate", data={"csrf": csrf, "policy": "escalate_v4 = ["})
    assert bad.status_code == 400 and "Not TOML" in bad.text


def test_bad_mail_section_stops_serve_with_one_line(tmp_path: Path) -> None:
    """An invalid [mail] relay is refused at start with a message naming the key."""
    from reputable.testing import write_config

    config = write_config(tmp_path, dns_port=1, extra='[mail]\nrelay = "nohost"\n')
    result = cli(config, "serve", check=False, timeout=30)
    assert (
        result.returncode != 0
        and "mail.relay" in result.stderr
        and "Traceback" not in result.stderr
    )


def test_removal_rate_limit_is_a_readable_page(site: Api) -> None:
    """Past the API's per-subject limit the form answers 429 with Retry-After and a page saying when."""
    list_now(site, "198.51.100.120")
    site.client.cookies.clear()
    token = csrf_of(site.client.get("/lookup/198.51.100.120").text)
    form = {"subject": "198.51.100.120", "contact": "x@example.org", "note": "n", "csrf": token}
    statuses = []
    for _ in range(6):
        reply = site.client.post("/delist", data=form)
        statuses.append(reply.status_code)
        if reply.status_code == 429:
            break
    assert statuses[-1] == 429, statuses
    assert int(reply.headers["retry-after"]) > 0
    assert "retry in" in reply.text and "<h1>Request not accepted</h1>" in reply.text

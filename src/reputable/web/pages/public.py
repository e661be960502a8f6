"""Public pages: the search box, the lookup page a TXT record links to, removal requests.

The zone answers come from :func:`reputable.publication.lookup.lookup` (the snapshot DNS
answers from), the explanation from :func:`reputable.listings.explain.explain`, removal
requests from the API's own :func:`reputable.web.routes.delist.file_removal`: the pages add
words and forms, never their own decisions.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.core.errors import SnapshotError, SubjectError
from reputable.listings.explain import Explanation, explain
from reputable.publication.lookup import Answer, Lookup, lookup
from reputable.web.deps import context
from reputable.web.errors import ApiError
from reputable.web.pages.check import check_form
from reputable.web.pages.html import CSS, bullets, esc, hidden, page, table, when
from reputable.web.pages.security import (
    CSRF_COOKIE,
    FormRefused,
    check_public,
    csrf_cookie,
    read_form,
    set_cookie,
)
from reputable.web.pages.state import error_page, pages_state
from reputable.web.routes.delist import file_removal, find_request

router = APIRouter(include_in_schema=False)

#: What each cause means, in the words of someone whose mail bounces.
CAUSE_WORDS: Final[dict[Cause, str]] = {
    Cause.SPAM: "sending spam (mail to spam traps, or complaints from recipients)",
    Cause.HARVEST: "mailing many addresses that do not exist (guessed or stale recipient lists)",
    Cause.COMPROMISED: "behaving like a compromised machine (brute-force logins, scans, floods or botnet traffic)",
    Cause.OPEN_RELAY: "being an open mail relay (it forwards mail for anyone)",
    Cause.OPEN_PROXY: "being an open proxy (anyone can connect through it)",
    Cause.MALWARE_HOST: "hosting malware or phishing pages",
    Cause.RDNS: "its reverse DNS: the PTR record is missing, generic, or does not point back",
    Cause.NETWORK: "its neighbourhood: many addresses in the same network are listed",
    Cause.MANUAL: "an operator's decision or an imported third-party list",
    Cause.CLEAN: "good behaviour (this never lists anyone)",
}
MAX_CONTACT: Final = 254
MAX_NOTE: Final = 2000
MAX_SUBJECT: Final = 300
_EMAIL_TEXT: Final = re.compile(r"[^\s@<>\"']+@[^\s@<>\"']+")
_IP_TEXT: Final = re.compile(
    r"\b(?:\d{1,3}\.){3}\d{1,3}\b|\b[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}\b"
)


@router.get("/static/web.css")
async def stylesheet() -> Response:
    """Return the one stylesheet of the pages."""
    return Response(CSS, media_type="text/css", headers={"Cache-Control": "max-age=3600"})


def with_csrf(request: Request, build: Any, status: int = 200) -> HTMLResponse:
    """Return the page *build(token)* makes, setting the CSRF cookie when the client has none."""
    cookie, new = csrf_cookie(request)
    response = HTMLResponse(build(pages_state(request).sessions.public_token(cookie)), status)
    if new:
        set_cookie(request, response, CSRF_COOKIE, cookie, 86400)
    return response


def _search(value: str = "") -> str:
    return (
        '<form method=get action="/lookup" role=search>'
        "<label for=q>IP address, network (CIDR) or domain</label>"
        f'<input id=q name=q type=text required maxlength={MAX_SUBJECT} value="{esc(value)}"'
        ' placeholder="192.0.2.1" autocomplete=off>'
        "<button type=submit>Look up</button></form>"
    )


@router.get("/", response_class=HTMLResponse)
async def home() -> HTMLResponse:
    """Return the search page."""
    body = (
        "<h1>Is this address or domain listed?</h1>"
        "<p>If your mail bounces with a message naming this list, enter the address or domain"
        " it named. You will see why it is listed, what to fix, and how to ask for removal.</p>"
        + _search()
    )
    return HTMLResponse(page("Look up", body))


@router.get("/lookup", response_model=None)
async def search(q: str = "") -> Response:
    """Send the search form's subject to its lookup page."""
    text = q.strip()
    if not text:
        return RedirectResponse("/", status_code=303)
    return RedirectResponse(f"/lookup/{quote(text[:MAX_SUBJECT], safe='/:')}", status_code=303)


def cause_words(cause: Cause) -> str:
    """Return the plain-words reason for *cause*."""
    return CAUSE_WORDS.get(cause, cause.value)


def _answer_item(found: Lookup, answer: Answer) -> str:
    ends = (
        f"It ends by itself on <strong>{esc(when(answer.until))}</strong> if nothing new is seen."
        if answer.until
        else "It has no end date: it stays until it is removed."
    )
    via = ""
    if answer.listed_subject != found.subject:
        via = (
            f" The listing is for <code>{esc(answer.listed_subject)}</code>,"
            f" which contains <code>{esc(found.subject)}</code>."
        )
    return (
        f'<li data-zone="{esc(answer.zone)}" data-code="{esc(answer.code)}"'
        f' data-cause="{esc(answer.cause.value)}"><strong>Listed for'
        f" {esc(cause_words(answer.cause))}</strong> (answer <code>{esc(answer.code)}</code>)."
        f" Listed since {esc(when(answer.since))}. {ends}{via}"
        f"<br><span class=muted>Reason recorded: {esc(answer.reason)}</span></li>"
    )


def zones_section(found: Lookup, zone_names: list[str], allow_zone: str) -> str:
    """Return the per-zone answers, in plain words."""
    parts = []
    for zone in zone_names:
        answers = [a for a in found.listings if a.zone == zone]
        if answers:
            items = "".join(_answer_item(found, a) for a in answers)
            parts.append(
                f'<h3 data-zone-state="listed"><code>{esc(zone)}</code>:'
                f' <span class="status listed">listed</span></h3><ul>{items}</ul>'
            )
        else:
            parts.append(
                f'<h3 data-zone-state="clean"><code>{esc(zone)}</code>:'
                ' <span class="status clean">not listed</span></h3>'
            )
    if found.allows:
        parts.append(
            f"<h3><code>{esc(allow_zone)}</code>: <span class='status clean'>on the allowlist</span></h3>"
            "<p>An operator vouches for this subject: it is never blocked here.</p>"
        )
    if found.truncated:
        parts.append(
            "<p class=muted>Only the first 1,000 listings inside this range are shown.</p>"
        )
    return "<h2>Our lists</h2>" + "".join(parts)


def redact(text: str, subject: str) -> str:
    """Return *text* with third parties' e-mail addresses and IP addresses replaced."""
    text = _EMAIL_TEXT.sub("[address]", text)
    return _IP_TEXT.sub(lambda m: m.group(0) if m.group(0) == subject else "[address]", text)


def seen_section(found: Explanation) -> str:
    """Return what was seen: per cause counts and first/last seen, sources, redacted samples."""
    evidence = found.evidence
    by_cause = evidence.get("by_cause", {})
    if not by_cause and not evidence.get("recent"):
        return "<h2>What was seen</h2><p>We hold no evidence about this subject.</p>"
    rows = [
        [
            esc(cause_words(Cause(cause))),
            esc(info["count"]),
            esc(_date(info["first"])),
            esc(_date(info["last"])),
        ]
        for cause, info in by_cause.items()
    ]
    sources = ", ".join(
        f"{esc(name)} ({count})" for name, count in evidence.get("sources", {}).items()
    )
    samples = [
        f"{esc(_date(r['at']))}: {esc(cause_words(Cause(r['cause'])))} — seen by {esc(r['source'])}"
        + (f"; {esc(redact(_detail(r['detail']), found.subject))}" if r.get("detail") else "")
        for r in evidence.get("recent", [])[:5]
    ]
    return (
        "<h2>What was seen</h2>"
        + table(["What", "Times", "First seen", "Last seen"], rows)
        + (f"<p>Reported by: {sources}.</p>" if sources else "")
        + ("<h3>Examples</h3>" + bullets(samples) if samples else "")
        + "<p class=muted>Other people's addresses are replaced by [address].</p>"
    )


def _detail(detail: Any) -> str:
    if isinstance(detail, dict):
        return ", ".join(f"{k}: {v}" for k, v in detail.items() if v not in (None, "", [], {}))
    return str(detail)


def _date(text: str | None) -> str:
    if not text:
        return "—"
    return when(datetime.fromisoformat(text.replace("Z", "+00:00")))


def contact_line(contact: str) -> str:
    """Return how to reach the operator (``policy.contact``), or "" when none is configured."""
    if not contact:
        return ""
    link = f'<a href="mailto:{esc(contact)}">{esc(contact)}</a>' if "@" in contact else esc(contact)
    return (
        f"<p id=operator-contact>Questions, or a case this page does not cover: write to the"
        f" list operator at {link}. Say which address or domain, and what you fixed.</p>"
    )


def advice_section(found: Explanation, contact: str = "") -> str:
    """Return the collateral, the neighbourhood and what to do (with the operator's contact)."""
    out = []
    if found.collateral:
        sites = ", ".join(f"<code>{esc(d)}</code>" for d in found.collateral[:20])
        out.append(
            "<h2>Other sites on this address</h2><p>The listing also affects the sites"
            f" hosted here: {sites}. If one of them caused it, its owner must fix it.</p>"
        )
    net = found.network
    if net and net.get("escalated"):
        out.append(
            "<h2>Your neighbourhood</h2><div class='notice yellow'><p>The network"
            f" <code>{esc(net['network'])}</code> is listed because {esc(net['listed_members'])}"
            f" of its addresses are listed (the limit is {esc(net['threshold'])}). Your address"
            " may be clean. To be carved out: make sure your own mail is clean, then ask for"
            " removal below; an operator reviews it, and clean mail seen from your address"
            " counts for you. Tell your network provider too: they must clean the others.</p></div>"
        )
    if found.remediation:
        out.append(
            "<h2>What to do</h2><ol>"
            + "".join(f"<li>{esc(s)}</li>" for s in found.remediation)
            + "</ol>"
            + contact_line(contact)
        )
    elif contact and found.listed:
        out.append("<h2>What to do</h2>" + contact_line(contact))
    return "".join(out)


def removal_form(subject: str, token: str) -> str:
    """Return the removal request form (CSRF token, honeypot field, labelled inputs)."""
    return (
        "<h2>Ask for removal</h2><p>Fix the cause first. Requests are granted at once when"
        " nothing new has been seen for a while; otherwise an operator reviews them.</p>"
        '<form method=post action="/delist">'
        f"{hidden('csrf', token)}{hidden('subject', subject)}"
        f"<label for=contact>Your e-mail address</label><input id=contact name=contact type=email required maxlength={MAX_CONTACT} autocomplete=email>"
        f"<label for=note>What did you fix?</label><textarea id=note name=note required maxlength={MAX_NOTE}></textarea>"
        "<div class=trap aria-hidden=true><label for=website>Leave this empty</label>"
        "<input id=website name=website type=text tabindex=-1 autocomplete=off></div>"
        "<button type=submit>Send the request</button></form>"
    )


@router.get("/lookup/{subject:path}", response_class=HTMLResponse)
async def lookup_page(subject: str, request: Request) -> HTMLResponse:
    """Return the lookup page of *subject*: zones, what was seen, what to do, the removal form."""
    ctx = context(request)
    try:
        parsed = parse_subject(subject[:MAX_SUBJECT])
    except SubjectError as exc:
        return error_page(
            400,
            "Not an address or domain",
            f"{exc}. Enter an IP address, a network such as 192.0.2.0/24, or a domain.",
        )
    try:
        found = lookup(ctx.snapshots.current(), parsed, ctx.zones)
    except SnapshotError:
        return error_page(
            503, "Not ready", "The list is starting and has no data yet; try again in a minute."
        )
    now = ctx.clock()
    explained = await ctx.stores.read(lambda store: explain(store, ctx.config, found.subject, now))
    is_domain = found.subject == getattr(parsed, "name", None)
    zone = ctx.zones.domain.name if is_domain else ctx.zones.ip.name
    state = "listed" if found.listed else "not listed"
    single = is_domain or "/" not in found.subject
    checking = pages_state(request).settings.check_setup and single
    css = "listed" if found.listed else "clean"

    def build(token: str) -> str:
        body = (
            f'<h1><code>{esc(found.subject)}</code> is <span class="status {css}" id=verdict>{state}</span></h1>'
            + (
                f"<p>Listed for: {esc('; '.join(dict.fromkeys(cause_words(a.cause) for a in found.listings)))}.</p>"
                if found.listed
                else "<p>None of our lists blocks it. If mail still bounces, the bounce names"
                " another list: look there.</p>"
            )
            + zones_section(found, [zone], ctx.zones.allow.name)
            + seen_section(explained)
            + advice_section(explained, ctx.config.policy.contact)
            + (removal_form(found.subject, token) if found.listed else "")
            + (check_form(found.subject, is_domain) if checking else "")
            + f"<p class=muted>Answer from snapshot #{found.serial}; score {explained.score}/100 ({esc(explained.bucket)}).</p>"
            + _search()
        )
        return page(f"{found.subject}: {state}", body)

    return with_csrf(request, build)


@router.post("/delist", response_class=HTMLResponse)
async def delist_post(request: Request) -> HTMLResponse:
    """File a removal request from the form and answer on the page."""
    ctx = context(request)
    try:
        form = await read_form(request)
        check_public(pages_state(request).sessions, request, form)
        subject, contact, note = (form.get(k, "").strip() for k in ("subject", "contact", "note"))
        for name, value, limit in (
            ("subject", subject, MAX_SUBJECT),
            ("e-mail address", contact, MAX_CONTACT),
            ("note", note, MAX_NOTE),
        ):
            if len(value) > limit:
                raise FormRefused(
                    413,
                    "Field too long",
                    f"The {name} is {len(value)} characters long; at most {limit} are accepted. Shorten it and send the form again.",
                )
        if form.get("website"):
            raise FormRefused(
                400,
                "Request not accepted",
                "The form was filled in by a program, not a person; nothing was stored.",
            )
        if not note:
            raise FormRefused(
                400,
                "Say what you fixed",
                "Describe what you fixed in the note, then send the form again.",
            )
        client = request.client.host if request.client else "-"
        result = await file_removal(ctx, client, subject, contact, note)
    except FormRefused as exc:
        return error_page(exc.status, exc.title, exc.message)
    except SubjectError as exc:
        return error_page(400, "Not an address or domain", str(exc))
    except ApiError as exc:
        return error_page(exc.status, "Request not accepted", exc.message, headers=exc.headers)
    return HTMLResponse(page(f"Removal request: {result['status']}", _result_body(result)))


def _result_body(result: dict[str, Any]) -> str:
    status = result["status"]
    css = {"granted": "green", "pending": "yellow"}.get(status, "red")
    link = (
        f'<p>Follow it at <a href="/delist/{result["id"]}">/delist/{result["id"]}</a>.</p>'
        if result.get("id")
        else ""
    )
    again = (
        ""
        if status != "refused"
        else "<p>You can ask again once the limit's window has passed, or write to the list's operator.</p>"
    )
    return (
        f'<h1>Removal request: <span class="status {css}" id=status>{esc(status)}</span></h1>'
        f"<div class='notice {css}' role=status><p>{esc(result['message'])}</p></div>"
        + link
        + again
        + f'<p><a href="/lookup/{esc(result["subject"])}">Back to {esc(result["subject"])}</a></p>'
    )


@router.get("/delist/{request_id}", response_class=HTMLResponse)
async def delist_status(request_id: str, request: Request) -> HTMLResponse:
    """Return the status page of one removal request."""
    if not request_id.isdigit() or len(request_id) > 12:
        return error_page(404, "No such request", f"{request_id!r} is not a request number.")
    try:
        item = await find_request(context(request), int(request_id))
    except ApiError as exc:
        return error_page(404, "No such request", exc.message)
    words = {"pending": "pending review", "granted": "removed", "denied": "denied"}
    css = (
        {"pending": "yellow", "granted": "green", "denied": "red"}[item.status]
        if item.status in words
        else "yellow"
    )
    body = (
        f'<h1>Removal request #{item.id}: <span class="status {css}" id=status>{esc(words.get(item.status, item.status))}</span></h1>'
        + table(
            ["Subject", "Asked", "Decided", "Reason given"],
            [
                [
                    f'<a href="/lookup/{esc(item.subject)}">{esc(item.subject)}</a>',
                    esc(when(item.created_at)),
                    esc(when(item.decided_at)),
                    esc(item.why or "—"),
                ]
            ],
        )
        + (
            "<p>DNS stops listing within seconds; resolvers may remember the old answer for a few minutes.</p>"
            if item.status == "granted"
            else "<p>An operator reviews the request; you get an e-mail with the decision.</p>"
            if item.status == "pending"
            else "<p>Fix the cause described on the lookup page, then ask again.</p>"
        )
    )
    return HTMLResponse(page(f"Removal request #{item.id}", body))

"""The operator's dashboard: login with an admin token, overview, ranges, subjects, queue.

Every route but the login form needs a session (``security.Sessions``); every form carries
the session's CSRF token. Writes go through the same helpers as the admin API and are
audited as ``token:NAME``.
"""

from __future__ import annotations

import time
import tomllib
from collections import Counter
from datetime import timedelta
from ipaddress import IPv4Address, IPv4Network, ip_network
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from reputable.core.address import Domain, parse_subject
from reputable.core.cause import Cause
from reputable.core.errors import (
    InputError,
    ListingRefused,
    ReputableError,
    SnapshotError,
    SubjectError,
)
from reputable.listings.delisting import subject_names
from reputable.listings.explain import explain
from reputable.listings.model import AllowEntry, Batch
from reputable.publication.lookup import lookup, lookup_address
from reputable.web.deps import context
from reputable.web.errors import ApiError
from reputable.web.pages import charts
from reputable.web.pages.html import esc, hidden, page, table, when
from reputable.web.pages.public import (
    advice_section,
    seen_section,
    with_csrf,
    zones_section,
)
from reputable.web.pages.security import (
    SESSION_COOKIE,
    FormRefused,
    Session,
    check_admin,
    check_public,
    read_form,
    set_cookie,
)
from reputable.web.pages.state import error_page, pages_state
from reputable.web.routes.admin import checked_listing, simulate_policy
from reputable.web.routes.delist import decide
from reputable.web.tokens import Scope, authenticate

router = APIRouter(include_in_schema=False)
DAY: Final = 86400
MAX_REASON_FIELD: Final = 1024


class NeedLogin(Exception):
    """No live session: send the browser to the login form."""


def _session(request: Request) -> Session:
    """Return the request's live session (the login guard of every dashboard route)."""
    found = pages_state(request).sessions.find(request.cookies.get(SESSION_COOKIE))
    if found is None:
        raise NeedLogin
    return found


#: A route parameter that is the live session; without one the browser goes to the login form
#: (``NeedLogin`` is answered by :func:`login_redirect`, installed by ``site.install``).
LoggedIn = Annotated[Session, Depends(_session)]


def _login_redirect() -> Response:
    return RedirectResponse("/admin/login", status_code=303)


async def login_redirect(request: Request, exc: Exception) -> Response:
    """The app's answer to ``NeedLogin``: the login form."""
    return _login_redirect()


def _admin_page(title: str, body: str, session: Session, status: int = 200) -> HTMLResponse:
    response = HTMLResponse(page(title, body, admin=True, csrf=session.csrf), status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _refused(exc: FormRefused | ApiError | ReputableError, session: Session | None) -> HTMLResponse:
    if isinstance(exc, FormRefused):
        status, title, message = exc.status, exc.title, exc.message
    elif isinstance(exc, ApiError):
        status, title, message = exc.status, "Refused", exc.message
    else:
        status, title, message = 400, "Refused", str(exc)
    if session is None:
        return error_page(status, title, message)
    body = f"<h1>{esc(title)}</h1><div class='notice red' role=alert><p>{esc(message)}</p></div>"
    return _admin_page(title, body, session, status)


# -- login ------------------------------------------------------------------------------------
def _login_form(token: str, message: str = "") -> str:
    alert = f"<div class='notice red' role=alert><p>{esc(message)}</p></div>" if message else ""
    return page(
        "Operator login",
        "<h1>Operator login</h1>"
        + alert
        + "<p>Log in with an API token that has the <code>admin</code> scope"
        " (<code>reputable token add NAME --scope admin</code>).</p>"
        '<form method=post action="/admin/login">'
        + hidden("csrf", token)
        + "<label for=token>Admin token</label>"
        "<input id=token name=token type=password required maxlength=200 autocomplete=current-password>"
        "<button type=submit>Log in</button></form>",
    )


@router.get("/admin/login", response_class=HTMLResponse)
async def login_form(request: Request) -> HTMLResponse:
    """Return the login form."""
    return with_csrf(request, _login_form)


@router.post("/admin/login", response_model=None)
async def login(request: Request) -> Response:
    """Start a session when the form carries a valid admin token."""
    ctx = context(request)
    state = pages_state(request)
    try:
        form = await read_form(request)
        check_public(state.sessions, request, form)
    except FormRefused as exc:
        return error_page(exc.status, exc.title, exc.message)
    client = request.client.host if request.client else "-"
    wait = ctx.delist_limiter.retry_after(f"login:{client}", state.settings.login_per_minute, 60)
    if wait:
        return error_page(
            429,
            "Too many attempts",
            f"Too many login attempts; try again in {wait} s.",
            headers={"Retry-After": str(wait)},
        )
    records = await ctx.stores.read(lambda store: store.tokens())
    token = authenticate(records, form.get("token", "").strip())
    if token is None or Scope.ADMIN.value not in token.scopes:
        why = (
            "unknown or revoked token"
            if token is None
            else f"token {token.name!r} lacks the admin scope"
        )
        return with_csrf(request, lambda t: _login_form(t, f"Not logged in: {why}."), 401)
    secret, _ = state.sessions.start(token.name)
    response = RedirectResponse("/admin", status_code=303)
    set_cookie(request, response, SESSION_COOKIE, secret, int(state.settings.session_ttl))
    return response


@router.post("/admin/logout", response_model=None)
async def logout(request: Request, session: LoggedIn) -> Response:
    """End the session."""
    try:
        check_admin(session, await read_form(request))
    except FormRefused as exc:
        return error_page(exc.status, exc.title, exc.message)
    pages_state(request).sessions.end(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


# -- overview ---------------------------------------------------------------------------------
@router.get("/admin", response_model=None)
async def overview(request: Request, session: LoggedIn) -> Response:
    """Return the overview: charts, DNS rates, top networks, snapshot, followers, feeds."""
    ctx = context(request)
    agg = pages_state(request).aggregates
    now = ctx.clock()
    today = int(now.timestamp()) // DAY

    def read(store: Any) -> tuple[list[Any], list[tuple[str, int, float]], int]:
        agg.advance(store)
        pending = len(store.delist_requests(status="pending"))
        return store.feeds(), store.follower_positions(), pending

    feeds, followers, pending = await ctx.stores.read(read)
    dns = agg.read_dns(ctx.config)
    try:
        snapshot = ctx.snapshots.current()
        top = agg.top_networks(snapshot)
        snap = f"#{snapshot.serial}, built {time.time() - snapshot.built_at:.1f} s ago"
    except SnapshotError as exc:
        top, snap = [], f"none yet ({exc})"
    labels, by_cause = agg.series(agg.listings, today)
    _, by_source = agg.series(agg.evidence, today)
    rate = "—" if dns.per_second is None else f"{dns.per_second:.1f}"
    ratio = "—" if dns.hit_ratio is None else f"{dns.hit_ratio:.1%}"
    body = (
        "<h1>Overview</h1>"
        + table(
            ["Snapshot", "DNS queries/s", "Hit ratio", "Queries answered", "Pending removals"],
            [
                [
                    esc(snap),
                    esc(rate),
                    esc(ratio),
                    esc(dns.total),
                    f'<a href="/admin/queue">{pending}</a>',
                ]
            ],
        )
        + "<div class=charts>"
        + f"<figure><figcaption>New listings by cause, last 30 days</figcaption>{charts.stacked_bars('New listings by cause', labels, by_cause)}</figure>"
        + f"<figure><figcaption>Evidence per source per day</figcaption>{charts.stacked_bars('Evidence per source', labels, by_source)}</figure>"
        + "</div>"
        + "<h2>Most listed /24 networks</h2>"
        + ("<p class=muted>Counting (refresh in a moment).</p>" if top is None else "")
        + table(
            ["Network", "Listed addresses"],
            [[f'<a href="/admin/range?cidr={esc(n)}">{esc(n)}</a>', esc(c)] for n, c in top or []],
        )
        + _asn_section(ctx, top or [])
        + "<h2>Log followers</h2>"
        + table(
            ["Source", "Bytes read", "Behind (bytes)", "Last progress"],
            [_follower_row(n, o, u) for n, o, u in followers],
        )
        + "<h2>Feeds</h2>"
        + table(
            ["Feed", "Last good sync", "Entries", "Last error"],
            [
                [
                    esc(f.definition.name),
                    esc(when(f.state.last_success, "never")),
                    esc(f.state.entries),
                    esc(f.state.last_error or "—"),
                ]
                for f in feeds
            ],
        )
        + _search_form()
    )
    return _admin_page("Overview", body, session)


def _asn_section(ctx: Any, top: list[tuple[str, int]]) -> str:
    if ctx.config.pfx2as is None:
        return "<p class=muted>Listings per ASN: set <code>policy.pfx2as</code> to see them.</p>"
    from reputable.reputation.aggregate import load_pfx2as

    asns: Counter[str] = Counter()
    try:
        table_ = load_pfx2as(ctx.config.pfx2as)
    except (OSError, ReputableError) as exc:
        return f"<p class=muted>Listings per ASN: {esc(exc)}</p>"
    for net, count in top:
        found = table_.lookup(ip_network(net))
        for asn in found.asns if found else ():
            asns[f"AS{asn}"] += count
    return "<h2>Top ASNs (of the top networks)</h2>" + table(
        ["ASN", "Listed addresses"], [[esc(a), esc(c)] for a, c in asns.most_common(10)]
    )


def _follower_row(name: str, offset: int, updated: float) -> list[str]:
    behind = "—"
    path = name.split(":", 1)[1] if ":" in name else ""
    if path.startswith("/"):
        try:
            import os

            behind = str(max(os.stat(path).st_size - offset, 0))
        except OSError as exc:
            behind = f"unreadable ({exc.strerror})"
    return [esc(name), esc(offset), esc(behind), esc(when(updated))]


def _search_form() -> str:
    return (
        '<h2>Find a subject</h2><form method=get action="/admin/subject">'
        "<label for=subject>IP, CIDR or domain</label><input id=subject name=subject type=text required maxlength=300>"
        "<button type=submit>Open</button></form>"
    )


# -- range table ------------------------------------------------------------------------------
@router.get("/admin/range", response_model=None)
async def range_table(request: Request, session: LoggedIn, cidr: str = "") -> Response:
    """Return one row per address (/24 or smaller) or per /24 (up to a /16), coloured by state."""
    ctx = context(request)
    form = (
        '<form method=get action="/admin/range"><label for=cidr>IPv4 range (a /16 to a single address)</label>'
        f'<input id=cidr name=cidr type=text required maxlength=43 value="{esc(cidr)}" placeholder="192.0.2.0/24">'
        "<button type=submit>Show</button></form>"
    )
    if not cidr:
        return _admin_page("Ranges", "<h1>Ranges</h1>" + form, session)
    try:
        net = ip_network(cidr.strip(), strict=False)
    except ValueError as exc:
        return _refused(
            FormRefused(
                400, "Not a range", f"{cidr!r}: {exc}; give an IPv4 CIDR such as 192.0.2.0/24"
            ),
            session,
        )
    if not isinstance(net, IPv4Network) or net.prefixlen < 16:
        return _refused(
            FormRefused(400, "Range too large", f"{cidr!r}: give an IPv4 range of /16 or smaller"),
            session,
        )
    octets = 2 if net.prefixlen < 24 else 3
    prefix = ".".join(str(net.network_address).split(".")[:octets]) + "."
    evidence = await ctx.stores.read(lambda store: store.evidence_by_prefix(prefix))
    try:
        snapshot = ctx.snapshots.current()
    except SnapshotError as exc:
        return _refused(FormRefused(503, "Not ready", str(exc)), session)
    rows = []
    if net.prefixlen >= 24:
        seen = {t: (n, last) for t, n, last in evidence}
        for address in net:
            found = lookup_address(snapshot, address, ctx.zones)
            rows.append(
                _range_row(
                    str(address),
                    found.listed,
                    [a.cause for a in found.listings],
                    *seen.get(str(address), (0, None)),
                )
            )
    else:
        per24: dict[int, tuple[int, float | None]] = {}
        for target, n, last in evidence:
            try:
                key = int(IPv4Address(target)) >> 8
            except ValueError:
                continue
            count, newest = per24.get(key, (0, None))
            per24[key] = (count + n, max(last, newest or 0.0))
        for sub in net.subnets(new_prefix=24):
            found = lookup(snapshot, sub, ctx.zones)
            count, newest = per24.get(int(sub.network_address) >> 8, (0, None))
            rows.append(
                _range_row(str(sub), found.listed, [a.cause for a in found.listings], count, newest)
            )
    body = (
        f"<h1>Range {esc(net)}</h1>"
        + form
        + "<p><span class='status red'>red</span> listed · <span class='status yellow'>yellow</span>"
        " evidence seen, not listed · <span class='status green'>green</span> clean</p>"
        + table(["Address or network", "State", "Causes", "Evidence", "Last seen"], rows)
    )
    return _admin_page(f"Range {net}", body, session)


def _range_row(
    subject: str, listed: bool, causes: list[Cause], count: int, last: float | None
) -> list[str]:
    state, css = (
        ("listed", "red") if listed else ("suspicious", "yellow") if count else ("clean", "green")
    )
    names = ", ".join(dict.fromkeys(c.value for c in causes))
    return [
        f'<a href="/admin/subject/{esc(subject)}">{esc(subject)}</a>',
        f'<span class="status {css}" data-state="{state}">{state}</span>',
        esc(names or "—"),
        esc(count),
        esc(when(last)),
    ]


# -- subject ----------------------------------------------------------------------------------
@router.get("/admin/subject", response_model=None)
async def subject_search(subject: str = "") -> Response:
    """Send the search form to the subject's page."""
    from urllib.parse import quote

    return RedirectResponse(
        f"/admin/subject/{quote(subject.strip()[:300], safe='/:')}"
        if subject.strip()
        else "/admin",
        status_code=303,
    )


@router.get("/admin/subject/{subject:path}", response_model=None)
async def subject_page(subject: str, request: Request, session: LoggedIn) -> Response:
    """Return a subject's timeline, listings, explanation, history and actions."""
    ctx = context(request)
    try:
        parsed = parse_subject(subject[:300])
        found = lookup(ctx.snapshots.current(), parsed, ctx.zones)
    except (SubjectError, SnapshotError) as exc:
        return _refused(FormRefused(400, "Cannot show this subject", str(exc)), session)
    now = ctx.clock()
    names = subject_names(found.subject)

    def read(store: Any) -> tuple[Any, list[Any]]:
        return explain(store, ctx.config, found.subject, now), store.evidence_records(
            names, limit=5000
        )

    explained, records = await ctx.stores.read(read)
    today = int(now.timestamp()) // DAY
    per_day = [0.0] * 30
    for record in records:
        day = int(record.observed_at.timestamp()) // DAY
        if today - 29 <= day <= today:
            per_day[day - today + 29] += 1
    labels = [time.strftime("%m-%d", time.gmtime((today - 29 + i) * DAY)) for i in range(30)]
    zone = ctx.zones.domain.name if isinstance(parsed, Domain) else ctx.zones.ip.name
    history = [
        [esc(h["at"]), esc(h["actor"]), esc(h["action"]), esc(h["cause"] or "—"), esc(h["detail"])]
        for h in explained.history
    ]
    causes = "".join(f'<option value="{c.value}">{esc(c.value)}</option>' for c in Cause if c.lists)
    csrf = hidden("csrf", session.csrf)
    actions = (
        "<h2>Actions</h2>"
        f'<form method=post action="/admin/subject/{esc(found.subject)}">{csrf}'
        "<label for=action>Action</label><select id=action name=action>"
        "<option value=list>List</option><option value=remove>Remove its listings</option>"
        "<option value=allow>Allowlist</option></select>"
        f"<label for=cause>Cause (for List)</label><select id=cause name=cause>{causes}</select>"
        "<label for=ttl>Duration (for List/Allowlist, e.g. 7d; empty: no end)</label>"
        "<input id=ttl name=ttl type=text maxlength=20>"
        f"<label for=reason>Reason (recorded, and shown in TXT answers)</label><textarea id=reason name=reason required maxlength={MAX_REASON_FIELD}></textarea>"
        "<button type=submit>Apply</button></form>"
    )
    body = (
        f"<h1><code>{esc(found.subject)}</code></h1>"
        f'<p><a href="/lookup/{esc(found.subject)}">Public page</a> · score {explained.score}/100 ({esc(explained.bucket)})</p>'
        + f"<figure><figcaption>Evidence per day, last 30 days</figcaption>{charts.line('Evidence per day', labels, per_day)}</figure>"
        + zones_section(found, [zone], ctx.zones.allow.name)
        + "<h2>Listings in the store</h2>"
        + table(
            ["Cause", "Since", "Until", "Source", "Reason"],
            [
                [
                    esc(item["cause"]),
                    esc(item["since"]),
                    esc(item["until"] or "—"),
                    esc(item["source"]),
                    esc(item["reason"]),
                ]
                for item in explained.listings
            ],
        )
        + seen_section(explained)
        + advice_section(explained)
        + "<h2>History</h2>"
        + table(["At", "Who", "Action", "Cause", "Detail"], history)
        + actions
    )
    return _admin_page(found.subject, body, session)


@router.post("/admin/subject/{subject:path}", response_model=None)
async def subject_action(subject: str, request: Request, session: LoggedIn) -> Response:
    """List, remove or allowlist a subject, with a reason (audited as token:NAME)."""
    ctx = context(request)
    by = f"token:{session.token_name}"
    try:
        form = await read_form(request)
        check_admin(session, form)
        action, reason = form.get("action", ""), form.get("reason", "").strip()
        if len(reason.encode()) > MAX_REASON_FIELD:
            raise FormRefused(
                413,
                "Reason too long",
                f"The reason is {len(reason.encode())} bytes; at most {MAX_REASON_FIELD} are accepted. Shorten it.",
            )
        if not reason:
            raise FormRefused(
                400, "Give a reason", "Every action needs a reason; it is recorded in the history."
            )
        parsed = parse_subject(subject)
        ttl = form.get("ttl", "").strip() or None
        if action == "list":
            listing = checked_listing(ctx, subject, form.get("cause", ""), reason, ttl)
            await ctx.stores.write(
                lambda store: store.apply(Batch(listings=(listing,)), actor=by, action="list")
            )
        elif action == "remove":
            await ctx.stores.write(
                lambda store: store.remove_listings(parsed, cause=None, source=None, actor=by)
            )
        elif action == "allow":
            from reputable.core.clock import parse_duration

            now = ctx.clock()
            span = parse_duration(ttl) if ttl else None
            if span is not None and span <= timedelta(0):
                raise FormRefused(400, "Bad duration", f"duration {ttl!r} must be positive")
            entry = AllowEntry(
                subject=parsed,
                note=reason,
                source="api",
                created_at=now,
                expires_at=now + span if span else None,
            )
            await ctx.stores.write(
                lambda store: store.apply(Batch(allows=(entry,)), actor=by, action="allow")
            )
        else:
            raise FormRefused(
                400, "Unknown action", f"action {action!r}: choose list, remove or allow"
            )
    except (FormRefused, ApiError, InputError, ListingRefused, SubjectError) as exc:
        return _refused(exc, session)
    ctx.on_evidence()  # wake the publisher: the change reaches DNS at the next rebuild
    return RedirectResponse(f"/admin/subject/{subject}", status_code=303)


# -- removal queue ----------------------------------------------------------------------------
@router.get("/admin/queue", response_model=None)
async def queue(request: Request, session: LoggedIn) -> Response:
    """Return the pending removal requests with approve/deny forms."""
    ctx = context(request)
    pending = await ctx.stores.read(lambda store: store.delist_requests(status="pending"))
    rows = []
    for item in pending:
        form = (
            f'<form method=post action="/admin/queue/{item.id}">{hidden("csrf", session.csrf)}'
            f"<label for=reason-{item.id}>Reason (mailed to the requester)</label>"
            f"<textarea id=reason-{item.id} name=reason required maxlength={MAX_REASON_FIELD}></textarea>"
            "<button type=submit name=decision value=approve>Approve</button> "
            "<button type=submit name=decision value=deny class=secondary>Deny</button></form>"
        )
        rows.append([
            f"#{item.id}", f'<a href="/admin/subject/{esc(item.subject)}">{esc(item.subject)}</a>',
            esc(item.contact), esc(when(item.created_at)), esc(item.note), form,
        ])  # fmt: skip
    body = "<h1>Removal queue</h1>" + (
        table(["Request", "Subject", "Contact", "Asked", "Note", "Decision"], rows)
        if rows
        else "<p>No pending requests.</p>"
    )
    return _admin_page("Removal queue", body, session)


@router.post("/admin/queue/{request_id}", response_model=None)
async def queue_decide(request_id: str, request: Request, session: LoggedIn) -> Response:
    """Approve or deny a request with a reason; the requester gets it by e-mail."""
    ctx = context(request)
    try:
        form = await read_form(request)
        check_admin(session, form)
        reason = form.get("reason", "").strip()
        decision = form.get("decision", "")
        if len(reason.encode()) > MAX_REASON_FIELD:
            raise FormRefused(
                413,
                "Reason too long",
                f"The reason is {len(reason.encode())} bytes; at most {MAX_REASON_FIELD} are accepted.",
            )
        if not reason:
            raise FormRefused(400, "Give a reason", "The requester reads the reason; write one.")
        if decision not in ("approve", "deny") or not request_id.isdigit():
            raise FormRefused(400, "Unknown decision", "Choose Approve or Deny.")
        await decide(
            ctx,
            int(request_id),
            grant=decision == "approve",
            by=f"token:{session.token_name}",
            reason=reason,
        )
    except (FormRefused, ApiError) as exc:
        return _refused(exc, session)
    ctx.on_evidence()
    return RedirectResponse("/admin/queue", status_code=303)


# -- policy simulation ------------------------------------------------------------------------
_EXAMPLE: Final = "escalate_v4 = 4\n\n[causes.spam]\nlist = 2.0\n"


def _simulate_body(
    session: Session, text: str, result: dict[str, Any] | None, error: str = ""
) -> str:
    out = (
        "<h1>Policy simulation</h1><p>Paste a candidate <code>[policy]</code> table (TOML, without"
        " the header). It is compared with the live policy on the stored evidence; nothing changes.</p>"
        f'<form method=post action="/admin/simulate">{hidden("csrf", session.csrf)}'
        f"<label for=policy>Candidate policy</label><textarea id=policy name=policy required maxlength=8000 rows=10>{esc(text or _EXAMPLE)}</textarea>"
        "<button type=submit>Compare</button></form>"
    )
    if error:
        out += f"<div class='notice red' role=alert><p>{esc(error)}</p></div>"
    if result is not None:
        out += (
            f"<h2>Would list ({len(result['would_list'])})</h2>"
            + table(
                ["Subject", "Cause"],
                [[esc(r["subject"]), esc(r["cause"])] for r in result["would_list"][:500]],
            )
            + f"<h2>Would delist ({len(result['would_delist'])})</h2>"
            + table(
                ["Subject", "Cause"],
                [[esc(r["subject"]), esc(r["cause"])] for r in result["would_delist"][:500]],
            )
            + f"<p>Unchanged: {result['unchanged']}.</p>"
        )
    return out


@router.get("/admin/simulate", response_model=None)
async def simulate_form(request: Request, session: LoggedIn) -> Response:
    """Return the policy simulation form."""
    return _admin_page("Policy simulation", _simulate_body(session, "", None), session)


@router.post("/admin/simulate", response_model=None)
async def simulate_post(request: Request, session: LoggedIn) -> Response:
    """Compare a candidate policy with the live one and show the difference."""
    try:
        form = await read_form(request)
        check_admin(session, form)
    except FormRefused as exc:
        return _refused(exc, session)
    text = form.get("policy", "")
    try:
        table_ = tomllib.loads(text)
        result = await simulate_policy(context(request), table_)
    except tomllib.TOMLDecodeError as exc:
        return _admin_page(
            "Policy simulation",
            _simulate_body(session, text, None, f"Not TOML: {exc}"),
            session,
            400,
        )
    except ApiError as exc:
        return _admin_page(
            "Policy simulation", _simulate_body(session, text, None, exc.message), session, 400
        )
    return _admin_page("Policy simulation", _simulate_body(session, text, result), session)

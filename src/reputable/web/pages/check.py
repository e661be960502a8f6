"""The optional "check my setup" page: the checker's PTR/FCrDNS and SPF/DKIM/DMARC diagnostics.

Off unless ``[web] check_setup = true``. It asks only the resolver configured in
``[checker] nameserver`` (the same one `reputable check` uses), runs on demand from a
button on the lookup page (never on every lookup), and is rate-limited per client.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Final

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from reputable.core.address import Domain, Subject, parse_subject
from reputable.core.errors import ReputableError, SubjectError
from reputable.web.deps import context
from reputable.web.pages.html import esc, page
from reputable.web.pages.state import error_page, pages_state

if TYPE_CHECKING:  # the checker loads on the first check, not with the app (fast start-up)
    from reputable.checker.model import Finding
    from reputable.checker.settings import Settings

router = APIRouter(include_in_schema=False)
CHECKS_PER_MINUTE: Final = 6
_WORDS: Final = {
    "ok": ("fine", "green"),
    "info": ("note", "green"),
    "warning": ("fix this", "yellow"),
    "error": ("broken", "red"),
}


def check_form(subject: str, is_domain: bool) -> str:
    """Return the lookup page's "check my setup" form."""
    domain = (
        ""
        if is_domain
        else "<label for=domain>Your sending domain (optional, for SPF, DKIM and DMARC)</label>"
        "<input id=domain name=domain type=text maxlength=253 autocomplete=off>"
    )
    return (
        "<h2>Check my setup</h2><p>We can look at your reverse DNS and your SPF, DKIM and"
        " DMARC records and say what to fix.</p>"
        f'<form method=get action="/check/{esc(subject)}">{domain}'
        "<button type=submit>Check my setup</button></form>"
    )


def _finding(f: Finding) -> str:
    words, css = _WORDS.get(f.severity.value, ("note", "green"))
    if f.inconclusive:
        words, css = "could not check", "yellow"
    fix = f"<br><strong>What to do:</strong> {esc(f.remediation)}" if f.remediation else ""
    return (
        f'<li data-check="{esc(f.check)}" data-severity="{esc(f.severity.value)}">'
        f'<span class="status {css}">{esc(words)}</span> <strong>{esc(f.check)}</strong>:'
        f" {esc(f.message)}{fix}</li>"
    )


@router.get("/check/{subject:path}", response_class=HTMLResponse)
async def check_page(subject: str, request: Request, domain: str = "") -> HTMLResponse:
    """Run the PTR/FCrDNS and mail-authentication diagnostics and show the findings."""
    ctx = context(request)
    if not pages_state(request).settings.check_setup:
        return error_page(
            404, "Not available", "This list's operator has not enabled setup checks."
        )
    client_host = request.client.host if request.client else "-"
    wait = ctx.delist_limiter.retry_after(f"check:{client_host}", CHECKS_PER_MINUTE, 60)
    if wait:
        return error_page(
            429, "Too many checks", f"Try again in {wait} s.", headers={"Retry-After": str(wait)}
        )
    try:
        target = parse_subject(subject[:300])
        sending = parse_subject(domain.strip()) if domain.strip() else None
    except SubjectError as exc:
        return error_page(400, "Not an address or domain", str(exc))
    if sending is not None and not isinstance(sending, Domain):
        return error_page(400, "Not a domain", f"{domain!r} is not a domain name.")
    if not isinstance(target, Domain) and target.prefixlen != target.max_prefixlen:
        return error_page(400, "One address, please", "Setup checks need one address, not a range.")
    config = ctx.config
    base = config.path.parent if config.path else Path.cwd()
    from reputable.checker.settings import parse_settings

    try:
        settings = parse_settings(config.extra.get("checker", {}), base)
        findings = await _run(settings, target, sending if isinstance(sending, Domain) else None)
    except (ReputableError, TimeoutError) as exc:
        return error_page(503, "Check failed", f"The check could not run: {exc or 'timed out'}.")
    problems = sum(1 for f in findings if f.is_problem)
    verdict = (
        f"<p><strong>{problems} thing(s) to fix.</strong></p>"
        if problems
        else "<p>Nothing to fix.</p>"
    )
    body = (
        f"<h1>Setup of <code>{esc(subject)}</code>"
        + (f" and <code>{esc(sending)}</code>" if sending else "")
        + "</h1>"
        + verdict
        + "<ul>"
        + "".join(_finding(f) for f in findings)
        + "</ul>"
        + f'<p><a href="/lookup/{esc(subject)}">Back to the lookup page</a></p>'
    )
    return HTMLResponse(page("Check my setup", body))


async def _run(settings: Settings, target: Subject, sending: Domain | None) -> list[Finding]:
    """Return the findings for *target* (an address or domain) and the optional sending domain."""
    from reputable.checker.extra import missing
    from reputable.checker.mailauth import mail_auth
    from reputable.checker.rdns import diagnose
    from reputable.checker.runner import clients

    client, resolver = clients(settings)
    sync = None if missing() else resolver  # without pyspf/checkdmarc only DKIM is checked
    domain = target if isinstance(target, Domain) else sending
    address = None if isinstance(target, Domain) else target.network_address
    async with asyncio.timeout(settings.timeout * 6 + 5), client:
        parts = []
        if address is not None:
            parts.append(diagnose(client, address))
        if domain is not None:
            parts.append(
                mail_auth(client, sync, domain.name, address, selectors=settings.dkim_selectors)
            )
        results = await asyncio.gather(*parts)
    return [f for part in results for f in part]

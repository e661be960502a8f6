"""What the pages keep between requests: their settings, sessions and dashboard aggregates."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.responses import HTMLResponse

from reputable.web.pages.aggregate import Aggregates
from reputable.web.pages.html import esc, page
from reputable.web.pages.security import Sessions
from reputable.web.pages.settings import PageSettings


@dataclass(slots=True)
class PagesState:
    """One per app."""

    settings: PageSettings
    sessions: Sessions
    aggregates: Aggregates


def pages_state(request: Request) -> PagesState:
    """Return the app's page state."""
    found: PagesState = request.app.state.pages
    return found


def error_page(
    status: int, title: str, message: str, *, headers: dict[str, str] | None = None
) -> HTMLResponse:
    """Return a readable error page (never a stack trace)."""
    body = (
        f"<h1>{esc(title)}</h1><div class='notice red' role=alert><p>{esc(message)}</p></div>"
        '<p><a href="/">Back to the lookup page</a></p>'
    )
    return HTMLResponse(page(title, body), status_code=status, headers=headers)

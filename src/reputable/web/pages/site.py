"""Add the pages to the API's app: one more set of routers over the same Context (docs/web.md)."""

from __future__ import annotations

from fastapi import FastAPI

from reputable.web.context import Context
from reputable.web.pages import admin, check, public
from reputable.web.pages.aggregate import Aggregates
from reputable.web.pages.security import Sessions
from reputable.web.pages.settings import page_settings
from reputable.web.pages.state import PagesState


def install(app: FastAPI, ctx: Context) -> None:
    """Add the pages to *app*."""
    settings = page_settings(ctx.config)
    app.state.pages = PagesState(settings, Sessions(settings.session_ttl), Aggregates())
    app.include_router(public.router)
    app.include_router(admin.router)
    app.add_exception_handler(admin.NeedLogin, admin.login_redirect)
    app.include_router(check.router)

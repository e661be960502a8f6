"""The ASGI app: routers, error handlers, limits, metrics, OpenAPI and its docs page.

Pages for people (a later issue) are one more router over the same Context.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from reputable import __version__
from reputable.web import errors
from reputable.web.context import Context
from reputable.web.limits import LimitMiddleware
from reputable.web.pages.site import install as install_pages
from reputable.web.routes import admin, crowdsec, delist, evidence, export, health, lookup

OPENAPI_URL = "/api/v1/openapi.json"
DOCS_URL = "/api/v1/docs"
ASSETS_URL = "/api/v1/docs/assets"


def _swagger_assets() -> str | None:
    """Return the folder of the Swagger UI files shipped by the swagger-ui-bundle wheel."""
    try:
        import swagger_ui_bundle  # type: ignore[import-untyped]  # ships no type hints
    except ImportError:
        return None
    return str(swagger_ui_bundle.swagger_ui_path)


def create_app(ctx: Context) -> FastAPI:
    """Return the app serving *ctx*."""
    app = FastAPI(
        title="reputable",
        version=__version__,
        summary="IP and domain reputation: lookups, evidence intake, removal requests, admin",
        openapi_url=OPENAPI_URL,
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    errors.install(app)
    for module in (lookup, evidence, delist, admin, export, crowdsec, health):
        app.include_router(module.router)
    app.router.routes[:0] = lookup.FAST_ROUTES  # answer before their documented twins
    install_pages(app, ctx)
    _docs(app)
    _document_errors(app)
    if ctx.settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(ctx.settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(
        LimitMiddleware,
        max_body=ctx.settings.max_body,
        timeout=ctx.settings.request_timeout,
        metrics=ctx.metrics,
    )
    return app


def _document_errors(app: FastAPI) -> None:
    """Document what the API really answers: 400 with the error document, never FastAPI's 422."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            error = {
                "description": "Invalid request: bad JSON, unknown field, bad parameter.",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}
                },
            }
            for item in spec.get("paths", {}).values():
                for operation in item.values():
                    responses = operation.get("responses", {})
                    if responses.pop("422", None) is not None or operation.get("parameters"):
                        responses.setdefault("400", error)
            schemas = spec.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override


def _docs(app: FastAPI) -> None:
    """Serve the OpenAPI docs page from this server only (no CDN: isolated networks work)."""
    assets = _swagger_assets()
    if assets is not None:
        app.mount(ASSETS_URL, StaticFiles(directory=assets), name="swagger-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs() -> HTMLResponse:
        if assets is None:  # a plain page listing the operations, still nothing from outside
            return HTMLResponse(_plain_docs(app))
        return get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title="reputable API",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
        )


def _plain_docs(app: FastAPI) -> str:
    """Return a minimal HTML list of the API's operations."""
    from html import escape

    rows = []
    for path, item in app.openapi().get("paths", {}).items():
        for method, op in item.items():
            rows.append(
                f"<tr><td>{escape(method.upper())}</td><td><code>{escape(path)}</code></td>"
                f"<td>{escape(str(op.get('summary', '')))}</td></tr>"
            )
    return (
        "<!doctype html><html lang=en><meta charset=utf-8><title>reputable API</title>"
        f"<h1>reputable API</h1><p>OpenAPI document: <a href='{OPENAPI_URL}'>{OPENAPI_URL}</a></p>"
        "<table>" + "".join(rows) + "</table></html>"
    )

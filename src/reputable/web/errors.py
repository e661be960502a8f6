"""Every error answers ``{"error": {"code", "message"}}`` with the right status, never a trace."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from reputable.core import log
from reputable.core.errors import (
    InputError,
    ReputableError,
    SnapshotError,
    StoreError,
    SubjectError,
)


class ApiError(Exception):
    """An answer other than success: HTTP status, a stable code and a message with the fix."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """Return the JSON error document."""
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _validation_message(exc: RequestValidationError) -> str:
    messages: list[str] = []
    for item in exc.errors()[:5]:
        where = _location(tuple(item.get("loc", ())))
        kind = item.get("type", "")
        if kind == "extra_forbidden":
            messages.append(f"{where}: unknown field; remove it (see /api/v1/openapi.json)")
        elif kind == "json_invalid":
            messages.append(f"malformed JSON: {item.get('ctx', {}).get('error', item.get('msg'))}")
        else:
            messages.append(f"{where}: {item.get('msg', 'invalid')}")
    return "; ".join(messages) or "invalid request"


STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 406: "not_acceptable", 409: "conflict",
                413: "body_too_large", 415: "unsupported_media_type", 422: "invalid",
                429: "rate_limited", 503: "unavailable"}  # fmt: skip


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into the JSON error document."""

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, "invalid_request", _validation_message(exc))

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        code = STATUS_CODES.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else code
        if exc.status_code == 404 and detail == "Not Found":
            detail = "no such endpoint; see /api/v1/docs"
        return error_response(exc.status_code, code, detail, getattr(exc, "headers", None))

    @app.exception_handler(SubjectError)
    async def bad_subject(_request: Request, exc: SubjectError) -> JSONResponse:
        return error_response(400, "bad_subject", str(exc))

    @app.exception_handler(InputError)
    async def bad_input(_request: Request, exc: InputError) -> JSONResponse:
        return error_response(400, "bad_input", str(exc))

    @app.exception_handler(SnapshotError)
    async def no_snapshot(_request: Request, exc: SnapshotError) -> JSONResponse:
        return error_response(503, "snapshot_unavailable", str(exc), {"Retry-After": "1"})

    @app.exception_handler(StoreError)
    async def no_store(_request: Request, exc: StoreError) -> JSONResponse:
        log.error("http_store_error", error=str(exc))
        return error_response(503, "store_unavailable", str(exc), {"Retry-After": "5"})

    @app.exception_handler(ReputableError)
    async def other(_request: Request, exc: ReputableError) -> JSONResponse:
        return error_response(400, "error", str(exc))

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        # The top-level supervisor of a request: log it, answer without the trace.
        log.error("http_internal_error", path=request.url.path, error=repr(exc))
        return error_response(500, "internal", "internal error; the server log has the details")

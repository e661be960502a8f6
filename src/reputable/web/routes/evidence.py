"""Evidence intake over HTTP: one JSON object, a JSON array, or JSON lines (scope evidence:write)."""

from __future__ import annotations

import asyncio
from concurrent.futures.process import BrokenProcessPool

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from reputable.core import log
from reputable.core.errors import InputError
from reputable.web.deps import context, require
from reputable.web.errors import ApiError
from reputable.web.intake import PROCESS_AT, parse_rows
from reputable.web.schemas import ErrorOut, EvidenceOut
from reputable.web.tokens import Scope

router = APIRouter(prefix="/api/v1", tags=["evidence"])
MAX_ERRORS = 100
_RECORD = {
    "type": "object",
    "required": ["subject", "cause", "source"],
    "additionalProperties": False,
    "properties": {
        "subject": {"type": "string", "description": "IP address or domain"},
        "cause": {"type": "string", "description": "spam, harvest, compromised, ..., clean"},
        "source": {"type": "string", "minLength": 1},
        "at": {"type": "string", "description": "ISO 8601; default: now"},
        "weight": {"type": "number", "exclusiveMinimum": 0, "maximum": 1000},
        "domain": {"type": "string"},
        "detail": {"type": "object"},
        "id": {"type": "string", "minLength": 1, "description": "idempotency key"},
    },
}
BODY = {
    "requestBody": {
        "required": True,
        "description": "Records in the `evidence import` schema (docs/evidence.md).",
        "content": {
            "application/x-ndjson": {"schema": {"type": "string"}},
            "application/json": {
                "schema": {"oneOf": [_RECORD, {"type": "array", "items": _RECORD}]}
            },
        },
    }
}


@router.post(
    "/evidence",
    response_model=EvidenceOut,
    openapi_extra=BODY,
    responses={
        400: {"model": ErrorOut, "description": "Body is not UTF-8."},
        401: {"model": ErrorOut, "description": "No token, or an unknown or revoked one."},
        403: {"model": ErrorOut, "description": "The token lacks scope evidence:write."},
        413: {"model": ErrorOut, "description": "Body larger than http.max_body."},
    },
    summary="Submit evidence (JSON lines, one object or an array); idempotent by id",
)
async def post_evidence(request: Request) -> JSONResponse:
    """Store the good records (a repeated id counts as duplicate) and report the bad lines."""
    ctx = context(request)
    await require(request, Scope.EVIDENCE_WRITE)
    body = await request.body()
    now = ctx.clock()
    content_type = request.headers.get("content-type", "")
    try:
        if len(body) >= PROCESS_AT:
            try:
                rows, bad, received = await asyncio.get_running_loop().run_in_executor(
                    ctx.parsers(), parse_rows, body, content_type, now
                )
            except BrokenProcessPool as exc:  # the parser died: a new one next time, this one here
                log.error("evidence_parser_died", error=str(exc))
                ctx.reset_parsers()
                rows, bad, received = await asyncio.to_thread(parse_rows, body, content_type, now)
        else:
            rows, bad, received = await asyncio.to_thread(parse_rows, body, content_type, now)
    except InputError as exc:
        raise ApiError(400, "bad_encoding", str(exc)) from exc
    stored = await ctx.stores.write(lambda store: store.add_evidence_rows(rows)) if rows else 0
    if stored:
        ctx.on_evidence()
    return JSONResponse(
        {
            "received": received,
            "stored": stored,
            "duplicate": len(rows) - stored,
            "rejected": len(bad),
            "errors": [{"line": e.lineno, "message": e.message} for e in bad[:MAX_ERRORS]],
        }
    )

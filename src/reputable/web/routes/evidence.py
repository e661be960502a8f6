"""Evidence intake over HTTP: one JSON object, a JSON array, or JSON lines (scope evidence:write)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from reputable.core.errors import InputError, ReputableError
from reputable.evidence.model import Evidence
from reputable.evidence.parsers import jsonl
from reputable.web.deps import context, require
from reputable.web.errors import ApiError
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


def _lines(body: bytes) -> list[str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "bad_encoding", f"body is not UTF-8 at byte {exc.start}") from exc
    return text.splitlines()


def parse_body(
    body: bytes, content_type: str, now: datetime
) -> tuple[list[Evidence], list[jsonl.LineError], int]:
    """Return (evidence, rejected lines, records received) of a request body (pure)."""
    lines = _lines(body)
    stripped = [line.strip() for line in lines]
    received = sum(1 for line in stripped if line and not line.startswith("#"))
    single = content_type.split(";", 1)[0].strip().lower() == "application/json"
    if single and received > 1:
        # One JSON document over several lines (pretty-printed object or an array).
        try:
            document: Any = json.loads("\n".join(lines))
        except json.JSONDecodeError:
            pass  # JSON lines sent as application/json: read line by line below
        else:
            return _records(document if isinstance(document, list) else [document], now)
    good, bad = jsonl.parse(lines, now=now)
    return good, bad, received


def _records(items: list[Any], now: datetime) -> tuple[list[Evidence], list[jsonl.LineError], int]:
    good: list[Evidence] = []
    bad: list[jsonl.LineError] = []
    for index, item in enumerate(items, 1):
        try:
            if not isinstance(item, dict):
                raise InputError("record is not a JSON object")
            good.append(jsonl.evidence_from_fields(item, now=now))
        except ReputableError as exc:
            bad.append(jsonl.LineError(index, str(exc)))
    return good, bad, len(items)


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
    good, bad, received = await asyncio.to_thread(parse_body, body, content_type, now)
    stored = await ctx.stores.write(lambda store: store.add_evidence(good)) if good else 0
    if stored:
        ctx.on_evidence()
    return JSONResponse(
        {
            "received": received,
            "stored": stored,
            "duplicate": len(good) - stored,
            "rejected": len(bad),
            "errors": [{"line": e.lineno, "message": e.message} for e in bad[:MAX_ERRORS]],
        }
    )

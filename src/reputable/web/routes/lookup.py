"""Public lookups: one subject, a batch, URLs; and `explain`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from reputable.core.address import parse_subject
from reputable.core.errors import SubjectError
from reputable.listings.explain import explain
from reputable.publication.lookup import lookup
from reputable.web.deps import context, lookup_json, score_names, scores
from reputable.web.errors import ApiError
from reputable.web.schemas import BatchIn, BatchOut, ErrorOut, LookupOut

router = APIRouter(prefix="/api/v1", tags=["lookup"])
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Not an IP, CIDR or domain."},
    503: {"model": ErrorOut, "description": "No snapshot or store yet."},
}


@router.get(
    "/lookup/{subject:path}",
    response_model=LookupOut,
    responses=ERRORS,
    summary="What every zone answers for an IP, CIDR or domain (the data DNS answers from)",
)
async def lookup_one(subject: str, request: Request) -> JSONResponse:
    """Return the listings, allowlist entries, score and bucket of *subject*."""
    ctx = context(request)
    parsed = parse_subject(subject)
    found = lookup(ctx.snapshots.current(), parsed, ctx.zones)
    names = score_names(parsed)
    now = ctx.clock()
    (score,) = await ctx.stores.read(lambda store: scores(store, ctx.config, [names], now))
    return JSONResponse(lookup_json(found, score))


@router.post(
    "/lookup",
    response_model=BatchOut,
    responses=ERRORS,
    summary="Look up to 1,000 subjects at once (results in the order given)",
)
async def lookup_batch(body: BatchIn, request: Request) -> JSONResponse:
    """Return one lookup per subject; a bad subject fails the batch, naming its index."""
    ctx = context(request)
    snapshot = ctx.snapshots.current()
    parsed = []
    for index, text in enumerate(body.subjects):
        try:
            parsed.append(parse_subject(text))
        except SubjectError as exc:
            raise ApiError(400, "bad_subject", f"subjects[{index}]: {exc}") from exc
    found = [lookup(snapshot, subject, ctx.zones) for subject in parsed]
    groups = [score_names(subject) for subject in parsed]
    now = ctx.clock()
    results = await ctx.stores.read(lambda store: scores(store, ctx.config, groups, now))
    return JSONResponse(
        {"results": [lookup_json(f, s) for f, s in zip(found, results, strict=True)]}
    )


@router.get(
    "/explain/{subject:path}",
    responses=ERRORS,
    summary="The `explain --json` document: listings, evidence, network, collateral, remediation",
)
async def explain_one(subject: str, request: Request) -> dict[str, Any]:
    """Return the explanation of *subject* (the same document as `reputable explain --json`)."""
    ctx = context(request)
    parse_subject(subject)  # a bad subject is a 400 before any store work
    now = ctx.clock()
    found = await ctx.stores.read(lambda store: explain(store, ctx.config, subject, now))
    return found.to_json()

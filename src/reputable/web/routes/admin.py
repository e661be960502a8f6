"""Administration (scope admin): listings, allowlist, removal queue, policy simulation.

Every write is audited with the token's name as actor (``token:NAME``).
"""

from __future__ import annotations

from datetime import timedelta
from itertools import islice
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from reputable.config import Config, _policy
from reputable.core.address import Domain, format_subject, parse_subject
from reputable.core.cause import Cause, parse_cause
from reputable.core.clock import format_instant, parse_duration
from reputable.core.errors import ConfigError, InputError
from reputable.listings.engine import Outcome, evaluate
from reputable.listings.model import AllowEntry, Batch, Listing
from reputable.listings.rules import Limits, new_listing
from reputable.web.context import Context
from reputable.web.deps import actor, context, require
from reputable.web.errors import ApiError
from reputable.web.routes.delist import request_json
from reputable.web.schemas import (
    MAX_REASON,
    AllowIn,
    AllowOut,
    AllowsOut,
    DelistOut,
    ErrorOut,
    ListingIn,
    ListingOut,
    ListingsOut,
    RemovedOut,
    SimulateIn,
    SimulateOut,
)
from reputable.web.tokens import Scope

router = APIRouter(prefix="/api/v1", tags=["admin"])
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Bad subject, cause, reason or duration."},
    401: {"model": ErrorOut, "description": "No token, or an unknown or revoked one."},
    403: {"model": ErrorOut, "description": "The token lacks scope admin."},
}


def listing_json(config: Config, item: Listing) -> dict[str, Any]:
    """Return a stored listing as ListingOut."""
    zone = config.domain_zone if isinstance(item.subject, Domain) else config.ip_zone
    return {
        "subject": item.subject_text,
        "cause": item.cause.value,
        "code": str(zone.codes[item.cause]),
        "reason": item.reason,
        "source": item.source,
        "listed_at": format_instant(item.listed_at),
        "expires_at": format_instant(item.expires_at),
    }


def _cause(text: str) -> Cause:
    try:
        return parse_cause(text)
    except ValueError as exc:
        raise ApiError(400, "bad_cause", str(exc)) from exc


def _ttl(text: str | None) -> timedelta | None:
    return parse_duration(text) if text else None


def _reason(text: str) -> str:
    size = len(text.encode("utf-8"))
    if size > MAX_REASON:
        raise ApiError(
            400,
            "reason_too_long",
            f"reason is {size} bytes; TXT reasons are capped at {MAX_REASON} bytes, shorten it",
        )
    return text


def checked_listing(
    ctx: Context, subject: str, cause: str, reason: str, ttl: str | None, *, force: bool = False
) -> Listing:
    """Return an operator's listing (source ``api``) checked as the API checks it; raise ApiError."""
    config = ctx.config
    return new_listing(
        parse_subject(subject),
        _cause(cause),
        reason=_reason(reason),
        source="api",
        now=ctx.clock(),
        ttl=_ttl(ttl),
        limits=Limits(max_prefix_v4=config.max_prefix_v4, max_prefix_v6=config.max_prefix_v6),
        force=force,
    )


@router.get(
    "/admin/listings",
    response_model=ListingsOut,
    responses=ERRORS,
    summary="Active listings, filtered and paged (admin)",
)
async def list_listings(
    request: Request,
    cause: str | None = None,
    subject: str | None = Query(default=None, description="Exactly this subject."),
    source: str | None = Query(default=None, description="Source, or a prefix like policy."),
    offset: int = Query(default=0, ge=0),
    limit: int = Query(default=100, ge=1, le=1000),
) -> JSONResponse:
    """Return one page of the active listings."""
    ctx = context(request)
    await require(request, Scope.ADMIN)
    wanted = _cause(cause) if cause else None
    names = [format_subject(parse_subject(subject))] if subject else None
    now = ctx.clock()

    def page(store: Any) -> list[Listing]:
        if names is not None or source is not None:
            rows = iter(store.listings_where(subjects=names, source_prefix=source, active_at=now))
        else:
            rows = store.listings(cause=wanted, active_at=now)
        rows = (r for r in rows if wanted is None or r.cause is wanted)
        return list(islice(rows, offset, offset + limit + 1))

    found = await ctx.stores.read(page)
    return JSONResponse(
        {
            "listings": [listing_json(ctx.config, item) for item in found[:limit]],
            "offset": offset,
            "limit": limit,
            "more": len(found) > limit,
        }
    )


@router.post(
    "/admin/listings",
    response_model=ListingOut,
    status_code=201,
    responses=ERRORS,
    summary="List a subject for a cause (admin); reasons over 1,024 bytes are refused",
)
async def add_listing(body: ListingIn, request: Request) -> JSONResponse:
    """Create a listing with source ``api`` (audited with the token's name)."""
    ctx = context(request)
    token = await require(request, Scope.ADMIN)
    config = ctx.config
    listing = checked_listing(
        ctx, body.subject, body.cause, body.reason, body.ttl, force=body.force
    )
    await ctx.stores.write(
        lambda store: store.apply(Batch(listings=(listing,)), actor=actor(token), action="list")
    )
    return JSONResponse(listing_json(config, listing), status_code=201)


@router.delete(
    "/admin/listings/{subject:path}",
    response_model=RemovedOut,
    responses=ERRORS,
    summary="Remove the listings of exactly this subject (admin)",
)
async def remove_listing(
    subject: str, request: Request, cause: str | None = None, source: str | None = None
) -> JSONResponse:
    """Delete listings of *subject* (optionally one cause or source); return how many."""
    ctx = context(request)
    token = await require(request, Scope.ADMIN)
    parsed = parse_subject(subject)
    wanted = _cause(cause) if cause else None
    removed = await ctx.stores.write(
        lambda store: store.remove_listings(parsed, cause=wanted, source=source, actor=actor(token))
    )
    return JSONResponse({"removed": removed})


def allow_json(item: AllowEntry) -> dict[str, Any]:
    """Return an allowlist entry as AllowOut."""
    return {
        "subject": item.subject_text,
        "note": item.note,
        "source": item.source,
        "created_at": format_instant(item.created_at),
        "expires_at": format_instant(item.expires_at),
    }


@router.get(
    "/admin/allowlist", response_model=AllowsOut, responses=ERRORS, summary="The allowlist (admin)"
)
async def list_allows(request: Request) -> JSONResponse:
    """Return the active allowlist entries."""
    ctx = context(request)
    await require(request, Scope.ADMIN)
    now = ctx.clock()
    found = await ctx.stores.read(lambda store: list(store.allows(active_at=now)))
    return JSONResponse({"allowlist": [allow_json(item) for item in found]})


@router.post(
    "/admin/allowlist",
    response_model=AllowOut,
    status_code=201,
    responses=ERRORS,
    summary="Allowlist a subject (admin): never listed, answered on the allowlist zone",
)
async def add_allow(body: AllowIn, request: Request) -> JSONResponse:
    """Add an allowlist entry with source ``api`` (audited with the token's name)."""
    ctx = context(request)
    token = await require(request, Scope.ADMIN)
    now = ctx.clock()
    ttl = _ttl(body.ttl)
    if ttl is not None and ttl <= timedelta(0):
        raise ApiError(400, "bad_ttl", f"ttl must be positive, got {body.ttl!r}")
    entry = AllowEntry(
        subject=parse_subject(body.subject),
        note=_reason(body.note),
        source="api",
        created_at=now,
        expires_at=now + ttl if ttl else None,
    )
    await ctx.stores.write(
        lambda store: store.apply(Batch(allows=(entry,)), actor=actor(token), action="allow")
    )
    return JSONResponse(allow_json(entry), status_code=201)


@router.delete(
    "/admin/allowlist/{subject:path}",
    response_model=RemovedOut,
    responses=ERRORS,
    summary="Remove the allowlist entries of exactly this subject (admin)",
)
async def remove_allow(subject: str, request: Request) -> JSONResponse:
    """Delete the allowlist entries of *subject*; return how many."""
    ctx = context(request)
    token = await require(request, Scope.ADMIN)
    parsed = parse_subject(subject)
    removed = await ctx.stores.write(lambda store: store.remove_allow(parsed, actor=actor(token)))
    return JSONResponse({"removed": removed})


@router.get(
    "/admin/delist",
    response_model=list[DelistOut],
    responses=ERRORS,
    summary="The removal queue (admin): requests by status",
)
async def removal_queue(
    request: Request, status: Literal["pending", "granted", "denied"] = "pending"
) -> JSONResponse:
    """Return the removal requests with *status* (default: pending)."""
    ctx = context(request)
    await require(request, Scope.ADMIN)
    found = await ctx.stores.read(lambda store: store.delist_requests(status=status))
    return JSONResponse([request_json(item) for item in found])


@router.post(
    "/policy/simulate",
    response_model=SimulateOut,
    responses=ERRORS,
    summary="Compare a candidate [policy] table with the live one on stored evidence (admin)",
)
async def simulate(body: SimulateIn, request: Request) -> JSONResponse:
    """Return what the candidate policy would list and delist; changes nothing."""
    ctx = context(request)
    await require(request, Scope.ADMIN)
    return JSONResponse(await simulate_policy(ctx, body.policy))


async def simulate_policy(ctx: Context, table: dict[str, Any]) -> dict[str, Any]:
    """Compare the candidate ``[policy]`` *table* with the live one (SimulateOut); raise ApiError."""
    live = ctx.config
    try:
        policy, reputation = _policy({"policy": table}, "policy")
    except (ConfigError, InputError) as exc:
        raise ApiError(400, "bad_policy", str(exc)) from exc
    except (TypeError, ValueError, AttributeError) as exc:
        raise ApiError(400, "bad_policy", f"policy: {exc}") from exc
    now = ctx.clock()

    def compare(store: Any) -> tuple[Outcome, Outcome]:
        a = evaluate(store, live.policy, live.reputation, now, apply=False)
        b = evaluate(store, policy, reputation, now, apply=False)
        return a, b

    current, candidate = await ctx.stores.read(compare)
    a, b = _listed(current), _listed(candidate)
    return {
        "would_list": [{"subject": s, "cause": c} for s, c in sorted(b - a)],
        "would_delist": [{"subject": s, "cause": c} for s, c in sorted(a - b)],
        "unchanged": len(a & b),
    }


def _listed(outcome: Outcome) -> set[tuple[str, str]]:
    """Return (subject, cause) of everything *outcome* lists (as `policy simulate` counts)."""
    keys = {(d.target, d.cause.value) for d in outcome.decisions}
    keys |= {(n, "network") for n, e in outcome.escalations.items() if e}
    keys |= {(ip, d.cause.value) for ip, d in outcome.hosting.items() if d}
    return keys

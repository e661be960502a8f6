"""Removal requests: public filing and status (rate-limited), operator approve/deny (admin)."""

from __future__ import annotations

import asyncio
import re
import smtplib
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from reputable.core import log
from reputable.core.address import format_subject, parse_subject
from reputable.core.clock import format_instant
from reputable.core.errors import InputError
from reputable.listings.delisting import decide_request, request_removal
from reputable.listings.model import DelistRequest
from reputable.web.context import Context
from reputable.web.deps import actor, context, require
from reputable.web.errors import ApiError
from reputable.web.notify import decision_message, send
from reputable.web.schemas import DecisionIn, DelistIn, DelistOut, ErrorOut
from reputable.web.tokens import Scope

router = APIRouter(prefix="/api/v1", tags=["delist"])
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Bad subject or contact."},
    429: {"model": ErrorOut, "description": "Too many requests; see Retry-After."},
}
ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Bad reason."},
    401: {"model": ErrorOut, "description": "No token, or an unknown or revoked one."},
    403: {"model": ErrorOut, "description": "The token lacks scope admin."},
    404: {"model": ErrorOut, "description": "No pending request with this id."},
}


def request_json(item: DelistRequest) -> dict[str, Any]:
    """Return a stored removal request as DelistOut."""
    messages = {
        "pending": "pending: an operator reviews the request",
        "granted": "granted: the listing is removed",
        "denied": "denied",
    }
    message = messages.get(item.status, item.status)
    if item.why:
        message = f"{message} ({item.why})"
    return {
        "id": item.id,
        "subject": item.subject,
        "status": item.status,
        "message": message,
        "created_at": format_instant(item.created_at),
        "decided_at": format_instant(item.decided_at),
    }


@router.post(
    "/delist",
    response_model=DelistOut,
    responses=ERRORS,
    summary="Ask for removal: granted at once when the evidence stopped, else reviewed",
)
async def file_request(body: DelistIn, request: Request) -> JSONResponse:
    """File a removal request (no token); rate-limited per client address and per subject."""
    client = request.client.host if request.client else "-"
    return JSONResponse(
        await file_removal(context(request), client, body.subject, body.contact, body.note)
    )


async def file_removal(
    ctx: Context, client_host: str, subject_text: str, contact: str, note: str
) -> dict[str, Any]:
    """File a removal request for the API and the pages alike; return it as DelistOut.

    Raises ApiError 400 (bad subject or contact) or 429 (rate limit, with Retry-After).
    """
    subject = format_subject(parse_subject(subject_text))
    if not _EMAIL.match(contact):
        raise ApiError(400, "bad_contact", f"contact {contact!r}: give an e-mail address")
    settings = ctx.settings
    limiter = ctx.delist_limiter
    client = f"client:{client_host}"
    wait = limiter.retry_after(client, settings.delist_per_client, settings.delist_window)
    if not wait:
        wait = limiter.retry_after(
            f"subject:{subject}", settings.delist_per_subject, settings.delist_window
        )
        if wait:
            limiter.undo(client)
    if wait:
        raise ApiError(
            429,
            "rate_limited",
            f"too many removal requests from this address or for {subject}; retry in {wait} s",
            {"Retry-After": str(wait)},
        )
    now = ctx.clock()
    try:
        result = await ctx.stores.write(
            lambda store: request_removal(
                store,
                subject,
                contact=contact,
                note=note,
                params=ctx.config.policy,
                now=now,
            )
        )
    except InputError as exc:  # not listed, or the self-service limit: refused, with why
        return {"id": None, "subject": subject, "status": "refused", "message": str(exc)}
    return {
        "id": result.request_id,
        "subject": result.subject,
        "status": result.status,
        "message": result.message,
        "created_at": format_instant(now),
        "decided_at": format_instant(now) if result.status == "granted" else None,
    }


async def find_request(ctx: Context, request_id: int) -> DelistRequest:
    """Return removal request *request_id*; raise ApiError 404."""
    found = await ctx.stores.read(lambda store: store.delist_requests())
    for item in found:
        if item.id == request_id:
            return item
    raise ApiError(404, "not_found", f"no removal request #{request_id}")


@router.get(
    "/delist/{request_id}",
    response_model=DelistOut,
    responses={404: {"model": ErrorOut, "description": "No such request."}},
    summary="The status of a removal request",
)
async def request_status(request_id: int, request: Request) -> JSONResponse:
    """Return the status of removal request *request_id*."""
    return JSONResponse(request_json(await find_request(context(request), request_id)))


async def _decide(request: Request, request_id: int, body: DecisionIn, grant: bool) -> JSONResponse:
    token = await require(request, Scope.ADMIN)
    item = await decide(
        context(request), request_id, grant=grant, by=actor(token), reason=body.reason
    )
    return JSONResponse(request_json(item))


async def decide(
    ctx: Context, request_id: int, *, grant: bool, by: str, reason: str
) -> DelistRequest:
    """Grant or deny a pending request (API and pages alike), mail the requester; return it.

    Raises ApiError 404 when no pending request has this id. A relay that fails is logged
    and the decision stands.
    """
    now = ctx.clock()
    try:
        await ctx.stores.write(
            lambda store: decide_request(store, request_id, grant=grant, by=by, why=reason, now=now)
        )
    except InputError as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    found = await find_request(ctx, request_id)
    if ctx.mail.relay is not None:
        message = decision_message(
            ctx.mail, to=found.contact, request_id=request_id, subject=found.subject,
            granted=grant, reason=reason,
        )  # fmt: skip
        try:
            await asyncio.wait_for(asyncio.to_thread(send, ctx.mail, message), ctx.mail.timeout + 1)
            log.info("removal_mail_sent", request=request_id, to=found.contact)
        except (OSError, smtplib.SMTPException, TimeoutError) as exc:
            log.warning("removal_mail_failed", request=request_id, error=str(exc))
    return found


@router.post(
    "/delist/{request_id}/approve",
    response_model=DelistOut,
    responses=ADMIN_ERRORS,
    summary="Grant a pending removal request (admin): the listings end now",
)
async def approve(request_id: int, body: DecisionIn, request: Request) -> JSONResponse:
    """Grant request *request_id* with a reason (audited with the token's name)."""
    return await _decide(request, request_id, body, True)


@router.post(
    "/delist/{request_id}/deny",
    response_model=DelistOut,
    responses=ADMIN_ERRORS,
    summary="Deny a pending removal request (admin), with the reason the requester sees",
)
async def deny(request_id: int, body: DecisionIn, request: Request) -> JSONResponse:
    """Deny request *request_id* with a reason (audited with the token's name)."""
    return await _decide(request, request_id, body, False)

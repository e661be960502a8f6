"""CrowdSec Local API compatibility: the two endpoints bouncers read (scope bouncer, X-Api-Key)."""

from __future__ import annotations

from ipaddress import IPv4Address, ip_address
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from reputable.core.address import parse_subject
from reputable.publication.lookup import lookup, v4_source, v6_source
from reputable.web.context import Context
from reputable.web.crowdsec import Current, Decision, decision_json, decisions_for, decisions_of
from reputable.web.deps import context, require
from reputable.web.schemas import ErrorOut
from reputable.web.tokens import Scope

router = APIRouter(prefix="/v1", tags=["crowdsec"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, unknown or revoked X-Api-Key."},
    403: {"model": ErrorOut, "description": "The token lacks scope bouncer."},
}


class DecisionOut(BaseModel):
    id: int
    uuid: str
    origin: str
    type: str
    scope: str
    value: str
    duration: str
    scenario: str
    simulated: bool


class StreamOut(BaseModel):
    new: list[DecisionOut] | None
    deleted: list[DecisionOut] | None


async def current_decisions(ctx: Context) -> dict[str, Decision]:
    """Return the current decisions (computed once per store and snapshot serial, in a thread)."""
    state = ctx.bouncers
    snapshot = ctx.snapshots.current()

    def compute(store: Any) -> tuple[tuple[int, int], dict[str, Decision]]:
        # Keyed by both serials: rows newer than the snapshot are filtered again once the
        # snapshot catches up, so a fresh listing is never dropped for good.
        serial = (int(store.serial()), snapshot.effective_serial)
        held = state.current
        if held is not None and held.serial == serial:
            return serial, held.decisions
        now = ctx.clock()
        found = decisions_of(store.listing_rows(active_at=now))
        # Drop what DNS does not list (allowlisted, never-listed test points).
        for value in [v for v, d in found.items() if d.scope == "Ip"]:
            address = ip_address(value)
            if isinstance(address, IPv4Address):
                layer = v4_source(snapshot, int(address))  # changed: the overlay answers
                value_id = layer.v4_value(int(address))
            else:
                layer = v6_source(snapshot, address.packed)
                value_id = layer.v6_value(address.packed)
            if not layer.atoms(value_id):
                del found[value]
        return serial, found

    serial, found = await ctx.stores.read(compute)
    state.current = Current(serial, found)
    return found


@router.get(
    "/decisions/stream",
    response_model=StreamOut,
    responses=ERRORS,
    summary="CrowdSec bouncer stream: new and deleted ban decisions since this bouncer's last poll",
)
async def decision_stream(
    request: Request,
    startup: bool = Query(default=False, description="true: send every current decision"),
) -> JSONResponse:
    """Answer a bouncer's poll in the shape of CrowdSec's Local API."""
    ctx = context(request)
    token = await require(request, Scope.BOUNCER, header="x-api-key")
    current = await current_decisions(ctx)
    state = ctx.bouncers
    new, deleted = state.poll(token.name, current, startup=startup)
    now = ctx.clock().timestamp()
    duration = ctx.settings.bouncer_duration

    def shape(items: list[Decision]) -> list[dict[str, Any]] | None:
        return [decision_json(d, state.ident(d.value), now, duration) for d in items] or None

    return JSONResponse({"new": shape(new), "deleted": shape(deleted)})


@router.get(
    "/decisions",
    response_model=list[DecisionOut] | None,
    responses=ERRORS,
    summary="CrowdSec live mode: the decisions for one address (null when none)",
)
async def decisions(
    request: Request, ip: str = Query(description="The address to check")
) -> JSONResponse:
    """Return the ban decisions answering for *ip* (from the snapshot DNS answers from)."""
    ctx = context(request)
    await require(request, Scope.BOUNCER, header="x-api-key")
    found = lookup(ctx.snapshots.current(), parse_subject(ip), ctx.zones)
    out = decisions_for(found, ctx.clock(), ctx.settings.bouncer_duration)
    return JSONResponse(out or None)

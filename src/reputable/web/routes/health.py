"""Liveness for load balancers and monitors: snapshot age and whether the store answers."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from reputable.core.errors import ReputableError, SnapshotError
from reputable.web.deps import context
from reputable.web.schemas import HealthOut

router = APIRouter(tags=["health"])
STORE_TIMEOUT = 2.0


@router.get(
    "/healthz",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "No snapshot, or the store is down."}},
    summary="Snapshot age and store reachability (503 when degraded)",
)
async def healthz(request: Request) -> JSONResponse:
    """Return ok when a snapshot is loaded and the store answers within 2 s."""
    ctx = context(request)
    serial: int | None = None
    age: float | None = None
    try:
        snapshot = ctx.snapshots.current()
        serial, age = snapshot.serial, ctx.snapshots.age()
    except SnapshotError:
        pass
    store_serial: int | None = None
    try:
        async with asyncio.timeout(STORE_TIMEOUT):
            store_serial = await ctx.stores.read(lambda store: store.serial())
    except (TimeoutError, ReputableError):
        store_serial = None
    healthy = serial is not None and store_serial is not None
    body = {
        "status": "ok" if healthy else "degraded",
        "snapshot_serial": serial,
        "snapshot_age_seconds": None if age is None else round(age, 3),
        "store": store_serial is not None,
        "store_serial": store_serial,
    }
    return JSONResponse(body, status_code=200 if healthy else 503)

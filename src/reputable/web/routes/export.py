"""Exports for consumers, streamed with flat memory: plain IP/CIDR lines and AbuseIPDB JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from ipaddress import IPv4Address, ip_address
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from reputable.config import Config
from reputable.core.clock import format_instant
from reputable.publication.lookup import v4_source, v6_source
from reputable.publication.snapshot.view import Snapshot
from reputable.store.sqlite import SQLStore
from reputable.web.deps import context, scores
from reputable.web.schemas import ErrorOut

router = APIRouter(prefix="/api/v1/export", tags=["export"])


def _dns_lists(snapshot: Snapshot, subject: str) -> bool:
    """True when DNS lists this single address (False: allowlisted or never listed)."""
    address = ip_address(subject)
    if isinstance(address, IPv4Address):
        layer = v4_source(snapshot, int(address))  # a changed address: the overlay answers
        return bool(layer.atoms(layer.v4_value(int(address))))
    layer = v6_source(snapshot, address.packed)
    return bool(layer.atoms(layer.v6_value(address.packed)))


def _listed(
    store: SQLStore, snapshot: Snapshot, now: datetime
) -> Iterator[list[tuple[str, bool, float]]]:
    """Yield chunks of (subject, is_host, listed_at) DNS lists, in subject order."""
    for chunk in store.ip_subjects(active_at=now):
        out: list[tuple[str, bool, float]] = []
        for subject, _family, listed_at in chunk:
            host = "/" not in subject
            if host and not _dns_lists(snapshot, subject):
                continue
            out.append((subject, host, listed_at))
        yield out


def _plain(store: SQLStore, snapshot: Snapshot, now: datetime) -> Iterator[bytes]:
    try:
        for chunk in _listed(store, snapshot, now):
            if chunk:
                yield "".join(f"{subject}\n" for subject, _, _ in chunk).encode()
    finally:
        store.close()


@router.get(
    "/plain",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "One IP or CIDR a line."}},
    summary="Every listed IP and network, one a line (firewalls, ipset, many tools read this)",
)
async def export_plain(request: Request) -> StreamingResponse:
    """Stream the IP/CIDR subjects DNS lists (allowlisted hosts left out)."""
    ctx = context(request)
    snapshot = ctx.snapshots.current()
    return StreamingResponse(
        _plain(ctx.stores.open(), snapshot, ctx.clock()), media_type="text/plain; charset=utf-8"
    )


def _abuseipdb(
    store: SQLStore, config: Config, snapshot: Snapshot, now: datetime, minimum: int
) -> Iterator[bytes]:
    first = True
    try:
        yield b'{"meta":{"generatedAt":' + json.dumps(format_instant(now)).encode() + b'},"data":['
        for chunk in _listed(store, snapshot, now):
            hosts = [(s, at) for s, host, at in chunk if host]
            if not hosts:
                continue
            found = scores(store, config, [[s] for s, _ in hosts], now)
            parts: list[str] = []
            for (subject, listed_at), (score, _bucket) in zip(hosts, found, strict=True):
                confidence = 100 - score
                if confidence < minimum:
                    continue
                item: dict[str, Any] = {
                    "ipAddress": subject,
                    "countryCode": None,
                    "abuseConfidenceScore": confidence,
                    "lastReportedAt": format_instant(datetime.fromtimestamp(listed_at, UTC)),
                }
                parts.append(json.dumps(item, separators=(",", ":")))
            if parts:
                yield (b"" if first else b",") + ",".join(parts).encode()
                first = False
        yield b"]}\n"
    finally:
        store.close()


@router.get(
    "/abuseipdb",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/json": {}}, "description": "AbuseIPDB blacklist shape."},
        400: {"model": ErrorOut, "description": "confidenceMinimum outside 0-100."},
    },
    summary="Listed addresses in the shape of AbuseIPDB's blacklist endpoint",
)
async def export_abuseipdb(
    request: Request,
    confidence_minimum: int = Query(
        default=0,
        ge=0,
        le=100,
        alias="confidenceMinimum",
        description="Only addresses with abuseConfidenceScore (100 - our score) at least this.",
    ),
) -> StreamingResponse:
    """Stream ``{"meta": {...}, "data": [{ipAddress, abuseConfidenceScore, ...}]}``."""
    ctx = context(request)
    snapshot = ctx.snapshots.current()
    return StreamingResponse(
        _abuseipdb(ctx.stores.open(), ctx.config, snapshot, ctx.clock(), confidence_minimum),
        media_type="application/json",
    )

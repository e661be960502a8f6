"""Zone self-test with RFC 5782 §5 test points: finds dead zones and zones that list the world."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address

from reputable.checker.catalogue import SubjectKind, Zone
from reputable.checker.dnsbl import check_zone
from reputable.checker.model import Status, ZoneResult
from reputable.core.address import Domain
from reputable.core.dnsclient import Resolver


class Health(enum.StrEnum):
    """Verdict on one zone."""

    OK = "ok"
    DEAD = "dead"
    LISTS_WORLD = "lists_world"
    REFUSED = "refused"
    NO_ANSWER = "no_answer"


@dataclass(frozen=True, slots=True)
class ZoneHealth:
    """What the test points showed about one zone."""

    zone: str
    health: Health
    detail: str


def probe_points(zone: Zone) -> tuple[IPv4Address | Domain, IPv4Address | Domain]:
    """Return the must-be-listed and must-not-be-listed test subjects of *zone* (RFC 5782 §5)."""
    if zone.kind is SubjectKind.DOMAIN:
        return Domain("test"), Domain("invalid")
    return IPv4Address("127.0.0.2"), IPv4Address("127.0.0.1")


def judge(zone: Zone, positive: ZoneResult | None, negative: ZoneResult | None) -> ZoneHealth:
    """Return the health of *zone* from its answers for the two test points (pure)."""
    results = [r for r in (positive, negative) if r is not None]
    for bad, health in ((Status.REFUSED, Health.REFUSED), (Status.TIMEOUT, Health.NO_ANSWER),
                        (Status.ERROR, Health.NO_ANSWER)):  # fmt: skip
        hit = next((r for r in results if r.status is bad), None)
        if hit is not None:
            return ZoneHealth(zone.name, health, hit.meaning or bad.value)
    if negative is not None and negative.status is Status.LISTED:
        return ZoneHealth(
            zone.name,
            Health.LISTS_WORLD,
            f"lists the never-listed test point ({', '.join(negative.codes)}):"
            " the zone may be shut down and answering everything; do not use it",
        )
    if positive is None or positive.status is not Status.LISTED:
        return ZoneHealth(
            zone.name,
            Health.DEAD,
            "does not list its test point: the zone may be dead, renamed, or not"
            " implement RFC 5782 test points",
        )
    return ZoneHealth(zone.name, Health.OK, f"test point listed ({', '.join(positive.codes)})")


async def selftest_zone(zone: Zone, resolver: Resolver) -> ZoneHealth:
    """Query both test points of *zone* and judge it."""
    listed, unlisted = probe_points(zone)
    positive, negative = await asyncio.gather(
        check_zone(listed, zone, resolver, txt=False),
        check_zone(unlisted, zone, resolver, txt=False),
    )
    return judge(zone, positive, negative)


async def selftest(zones: Sequence[Zone], resolver: Resolver) -> tuple[ZoneHealth, ...]:
    """Return the health of every zone, all tested concurrently, in catalogue order."""
    return tuple(await asyncio.gather(*(selftest_zone(z, resolver) for z in zones)))

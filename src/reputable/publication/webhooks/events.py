"""Listing events, endpoint filters, signatures and backoff (pure)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Final

from reputable.core.cause import Cause
from reputable.publication.webhooks.settings import Endpoint

SIGNATURE_HEADER: Final = "X-Reputable-Signature"
DELIVERY_HEADER: Final = "X-Reputable-Delivery"
EVENT_HEADER: Final = "X-Reputable-Event"
REPLAY_WINDOW: Final = timedelta(minutes=5)
FIRST_RETRY: Final = timedelta(seconds=1)
MAX_RETRY: Final = timedelta(hours=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Something an endpoint may want to hear about."""

    kind: str  # listed, delisted, removal_requested, removal_decided
    subject: str
    at: datetime
    cause: str | None = None
    detail: str = ""

    def key(self) -> str:
        """Return a stable identity of the event (used in the delivery id)."""
        return f"{self.kind}:{self.subject}:{self.cause or ''}:{self.at.timestamp():.6f}"


def listing_events(
    added: Iterable[tuple[str, str, str]], removed: Iterable[tuple[str, str]], at: datetime
) -> list[Event]:
    """Return ``listed`` events for *added* (subject, cause, reason), ``delisted`` for *removed*."""
    events = [Event(kind="listed", subject=s, cause=c, at=at, detail=r) for s, c, r in added]
    events += [Event(kind="delisted", subject=s, cause=c, at=at) for s, c in removed]
    return events


def removal_events(rows: Iterable[tuple[int, float, str, str, str]]) -> Iterator[Event]:
    """Yield events for audit rows (id, at, action, subject, detail) of removal requests."""
    for _, at, action, subject, detail in rows:
        kind = "removal_requested" if action == "delist_request" else "removal_decided"
        outcome = action.removeprefix("delist_") if kind == "removal_decided" else ""
        yield Event(
            kind=kind,
            subject=subject,
            at=datetime.fromtimestamp(at, UTC),
            detail=f"{outcome}: {detail}" if outcome else detail,
        )


def matches(endpoint: Endpoint, event: Event) -> bool:
    """True when *endpoint* wants *event* (its kind, cause and network filters)."""
    if event.kind not in endpoint.events:
        return False
    if (
        endpoint.causes is not None
        and event.cause is not None
        and Cause(event.cause) not in endpoint.causes
    ):
        return False
    if endpoint.networks is not None:
        try:
            subject = ip_network(event.subject, strict=False)
        except ValueError:
            return False  # a domain is in no network
        return any(_within(subject, net) for net in endpoint.networks)
    return True


def _within(inner: IPv4Network | IPv6Network, outer: IPv4Network | IPv6Network) -> bool:
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]  # same family


def body(event: Event, delivery: str, lookup_url: str) -> str:
    """Return the JSON body POSTed for *event* (compact, stable key order)."""
    data = {
        "id": delivery,
        "event": event.kind,
        "subject": event.subject,
        "cause": event.cause,
        "at": event.at.isoformat(),
        "detail": event.detail,
        "lookup_url": lookup_url.replace("$", event.subject) if lookup_url else None,
    }
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def sign(secret: str, payload: str, timestamp: int) -> str:
    """Return the signature header value: ``t=TIMESTAMP,v1=HEX`` over ``TIMESTAMP.BODY``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(
    secret: str, header: str, payload: str, now: datetime, window: timedelta = REPLAY_WINDOW
) -> bool:
    """True when *header* signs *payload* with *secret* and its timestamp is within *window*."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now.timestamp() - timestamp) > window.total_seconds():
        return False
    expected = sign(secret, payload, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


def backoff(attempts: int) -> timedelta:
    """Return the wait before retry number *attempts* (1 s, 2 s, 4 s ... at most 1 h)."""
    return min(FIRST_RETRY * (1 << min(max(0, attempts - 1), 20)), MAX_RETRY)

"""Our IP listings as CrowdSec Local API decisions, so any CrowdSec bouncer enforces them.

The current decisions are computed once per store serial (shared by every bouncer) from the
active IP listings, minus what the snapshot does not list (allowlisted, 127.0.0.1). Each
bouncer (token) remembers what it was sent; a stream poll answers the difference.
A decision whose end moved is sent as deleted and new, so the bouncer's timeout follows.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import ip_network
from typing import Any, Final

from reputable.core.cause import Cause
from reputable.publication.lookup import Lookup

ORIGIN: Final = "reputable"


@dataclass(frozen=True, slots=True)
class Decision:
    """One ban: an address (scope Ip) or a network (scope Range), until a time (None: open)."""

    value: str
    scope: str  # "Ip" or "Range"
    cause: str
    until: float | None


def go_duration(seconds: float) -> str:
    """Return *seconds* as a Go duration string (``23h59m59s``), as CrowdSec writes them."""
    total = max(1, math.ceil(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes}m{secs}s"


def decisions_of(
    rows: Iterable[tuple[str, int, str, str, float, float | None]],
) -> dict[str, Decision]:
    """Return one decision per listed IP subject (the latest end wins; domains are skipped)."""
    found: dict[str, Decision] = {}
    for subject, family, cause, _reason, _listed, expires in rows:
        if family not in (4, 6):
            continue
        net = ip_network(subject, strict=False)
        if net.prefixlen == net.max_prefixlen:
            value, scope = str(net.network_address), "Ip"
        else:
            value, scope = str(net), "Range"
        held = found.get(value)
        if held is not None and (
            held.until is None or (expires is not None and expires <= held.until)
        ):
            continue
        found[value] = Decision(value, scope, cause, expires)
    return found


def decision_json(
    decision: Decision, ident: int, now: float, open_duration: float
) -> dict[str, Any]:
    """Return *decision* in the shape CrowdSec's Local API gives bouncers."""
    left = open_duration if decision.until is None else decision.until - now
    return {
        "id": ident,
        "uuid": f"reputable-{ident}",
        "origin": ORIGIN,
        "type": "ban",
        "scope": decision.scope,
        "value": decision.value,
        "duration": go_duration(left),
        "scenario": f"reputable/{decision.cause}",
        "simulated": False,
    }


def decisions_for(found: Lookup, now: datetime, open_duration: float) -> list[dict[str, Any]]:
    """Return the decisions answering for one looked-up address (GET /v1/decisions?ip=)."""
    out: list[dict[str, Any]] = []
    for index, answer in enumerate(found.listings, 1):
        net = ip_network(answer.listed_subject, strict=False)
        host = net.prefixlen == net.max_prefixlen
        decision = Decision(
            str(net.network_address) if host else str(net),
            "Ip" if host else "Range",
            answer.cause.value if isinstance(answer.cause, Cause) else str(answer.cause),
            answer.until.timestamp() if answer.until else None,
        )
        out.append(decision_json(decision, index, now.timestamp(), open_duration))
    return out


@dataclass(slots=True)
class Current:
    """The decisions at one (store serial, snapshot serial)."""

    serial: tuple[int, int]
    decisions: dict[str, Decision]


@dataclass(slots=True)
class BouncerStreams:
    """What each bouncer was last sent, and the shared current decisions."""

    current: Current | None = None
    sent: dict[str, dict[str, Decision]] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ident(self, value: str) -> int:
        """Return a stable id for *value* (CrowdSec decisions carry one)."""
        found = self.ids.get(value)
        if found is None:
            found = self.ids[value] = len(self.ids) + 1
        return found

    def poll(
        self, bouncer: str, current: dict[str, Decision], *, startup: bool
    ) -> tuple[list[Decision], list[Decision]]:
        """Return (new, deleted) for *bouncer* and remember *current* as sent."""
        with self.lock:
            before = None if startup else self.sent.get(bouncer)
            self.sent[bouncer] = current
        if before is None:
            return list(current.values()), []
        new = [d for v, d in current.items() if before.get(v) != d]
        deleted = [d for v, d in before.items() if current.get(v) != d]
        return new, deleted

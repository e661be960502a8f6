"""One policy request, its lookups, one action (pure: the lookup function is passed in).

Order of checks, as the issue asks: the client address against the IP zone, then the client
name, HELO name and sender domain against the domain zone. An allowlisted client address
answers DUNNO whatever else is listed (the allowlist comes first); an allowlisted name only
clears that name. Among several hits the strongest verb wins (REJECT > DEFER_IF_PERMIT >
PREPEND > DUNNO), the first hit of that verb gives the text. The text names the zone and the
lookup URL, so the bounce a sender sees says where to read why and how to get off the list.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import ip_network

from reputable.core.address import Domain, Subject, parse_domain
from reputable.core.cause import Cause
from reputable.core.errors import SubjectError
from reputable.policyd.protocol import Request
from reputable.policyd.settings import DEFER, DUNNO, PREPEND, REJECT, STRENGTH, PolicySettings
from reputable.publication.lookup import Answer, Lookup, Zones

ROLE_TEXT = {
    "client_address": "Client host",
    "client_name": "Client name",
    "helo_name": "HELO name",
    "sender": "Sender domain",
}


@dataclass(frozen=True, slots=True)
class Hit:
    """One listed subject of a request: which attribute, what was asked, the zone's answer."""

    role: str
    subject: str
    answer: Answer


@dataclass(frozen=True, slots=True)
class Decision:
    """The action for one request and what led to it."""

    action: str
    verb: str
    hits: tuple[Hit, ...] = ()
    allowlisted: bool = False


def subjects(
    request: Request, names: dict[str, Domain | None] | None = None
) -> list[tuple[str, Subject]]:
    """Return (role, subject) to look up, client address first; unusable values are skipped.

    *names* memoises the parsing of names (HELO names and sender domains repeat); None
    parses every time.
    """
    found: list[tuple[str, Subject]] = []
    address = request.get("client_address")
    if address and "/" not in address:  # an address, never a network
        with contextlib.suppress(ValueError):  # not an address: nothing to look up
            found.append(("client_address", ip_network(address)))  # a bare address: /32, /128
    for role in ("client_name", "helo_name", "sender"):
        value = request.get(role).strip()
        if role == "sender":
            value = value.rpartition("@")[2] if "@" in value else ""
        if not value or value == "unknown" or value.startswith("[") or "." not in value:
            continue  # "unknown" client name, address literal HELO, null sender
        if names is not None and value in names:
            domain = names[value]
        else:
            domain = _domain(value)
            if names is not None:
                names[value] = domain
        if domain is not None:
            found.append((role, domain))
    return found


def _domain(value: str) -> Domain | None:
    """Return *value* as a domain, or None for an address written as a name or junk."""
    if ":" in value or value.replace(".", "").isdigit():
        return None  # an address given as a name: the client address check covers it
    try:
        return parse_domain(value)
    except SubjectError:
        return None


def decide(
    request: Request,
    look: Callable[[Subject], Lookup],
    settings: PolicySettings,
    zones: Zones,
    names: dict[str, Domain | None] | None = None,
) -> Decision:
    """Return the action for *request*, looking each of its subjects up with *look*."""
    hits: list[Hit] = []
    seen: set[Subject] = set()
    for role, subject in subjects(request, names):
        if subject in seen:
            continue
        seen.add(subject)
        result = look(subject)
        if result.allowlisted:
            if role == "client_address":
                return Decision(action=DUNNO, verb=DUNNO, allowlisted=True)
            continue
        hits.extend(Hit(role, result.subject, answer) for answer in result.listings)
    if not hits:
        return Decision(action=DUNNO, verb=DUNNO)
    best = max(hits, key=lambda h: STRENGTH[settings.actions[h.answer.cause]])
    verb = settings.actions[best.answer.cause]
    if settings.soft and verb != DUNNO:
        verb = PREPEND
    return Decision(action=_text(verb, best, settings, zones), verb=verb, hits=tuple(hits))


def _text(verb: str, hit: Hit, settings: PolicySettings, zones: Zones) -> str:
    """Return the action line for *verb* explaining *hit*."""
    answer = hit.answer
    return action_text(verb, hit.role, hit.subject, answer.zone, answer.kind, answer.cause,
                       settings, zones)  # fmt: skip


def action_text(
    verb: str,
    role: str,
    subject: str,
    zone_name: str,
    kind: str,
    cause: Cause,
    settings: PolicySettings,
    zones: Zones,
) -> str:
    """Return the action line for *verb*: *subject* (in *role*) is listed in *zone_name*."""
    zone = zones.ip if kind == "ip" else zones.domain
    url = zone.lookup_url.replace("$", subject) if zone.lookup_url else ""
    why = f"{ROLE_TEXT[role]} {subject} is listed in {zone_name} ({cause.value})"
    see = f"; see {url}" if url else ""
    if verb == REJECT:
        return f"REJECT 5.7.1 {why}{see}"
    if verb == DEFER:
        return f"DEFER_IF_PERMIT 4.7.1 {why}{see}"
    if verb == PREPEND:
        return (
            f"PREPEND {settings.header}: listed={zone_name} cause={cause.value}"
            f" subject={subject} role={role}"
        )
    return DUNNO

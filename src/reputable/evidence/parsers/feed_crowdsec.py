"""CrowdSec decisions: the Local API stream or ``cscli decisions list -o json`` output.

The Local API (``GET /v1/decisions/stream?startup=true`` with a bouncer's ``X-Api-Key``)
answers one object; ``new`` holds the active decisions (``deleted`` the lifted ones, which
change no evidence already seen)::

    {"new": [{"id": 7, "origin": "crowdsec", "type": "ban", "scope": "Ip",
              "value": "192.0.2.7", "duration": "3h59m50s",
              "scenario": "crowdsecurity/ssh-bf"}], "deleted": null}

``cscli decisions list -o json`` prints the alerts behind the decisions, with their time::

    [{"id": 3, "scenario": "crowdsecurity/http-probing", "created_at": "2026-01-05T10:00:00Z",
      "decisions": [{"id": 9, "type": "ban", "scope": "Ip", "value": "198.51.100.4",
                     "duration": "3h", "origin": "crowdsec",
                     "scenario": "crowdsecurity/http-probing"}]}]

Each decision on one address becomes evidence: ``spam`` for a scenario about spam, else
``compromised`` (brute force, scans, probing, exploits: a host attacking others), with the
scenario, origin, type and decision id in the detail. Decisions on ranges, countries or AS
numbers are not evidence about one host: they are skipped, each counted and named in the
sync's report (``FeedContent.skipped``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import ip_address
from typing import Any, Final

from reputable.core.cause import Cause
from reputable.evidence.parsers.feed_model import CsvMapping, EventEntry, FeedContent, Tally

NAME: Final = "crowdsec"


def cause_of(scenario: str) -> Cause:
    """Return the cause a CrowdSec scenario shows (spam scenarios: spam; the rest: compromised)."""
    return Cause.SPAM if "spam" in scenario.lower() else Cause.COMPROMISED


def parse(text: str, mapping: CsvMapping) -> FeedContent:
    """Return one event per decision on a single address, from either JSON shape."""
    del mapping  # JSON: no column mapping
    tally = Tally()
    stripped = text.strip()
    if not stripped or stripped == "null":
        return tally.content()
    try:
        data = json.loads(stripped)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        tally.lines = 1
        tally.bad(1, stripped, f"not CrowdSec JSON: {exc}")
        return tally.content()
    events: list[EventEntry] = []
    for number, (decision, created) in enumerate(_decisions(data), 1):
        tally.lines += 1
        event = _event(decision, created)
        if isinstance(event, str):
            tally.bad(number, json.dumps(decision)[:80], event)
        elif isinstance(event, Unused):
            tally.skip(event.why)
        else:
            events.append(event)
    if not isinstance(data, dict | list):
        tally.lines += 1
        tally.bad(1, stripped[:80], "expected a JSON object (LAPI stream) or array (cscli)")
    return tally.content(events=events)


def _decisions(data: Any) -> Iterator[tuple[Any, str | None]]:
    """Yield (decision, alert time or None) from a stream object or a cscli alert list."""
    if isinstance(data, dict):
        for decision in data.get("new") or ():
            yield decision, None
    elif isinstance(data, list):
        for alert in data:
            if not isinstance(alert, dict):
                yield alert, None
                continue
            created = alert.get("created_at") or alert.get("start_at")
            found: Iterable[Any] = alert.get("decisions") or ()
            for item in found:
                if isinstance(item, dict):
                    yield {"scenario": alert.get("scenario", ""), **item}, created
                else:
                    yield item, created


@dataclass(frozen=True, slots=True)
class Unused:
    """A decision that reads fine but is not about one address (a range, a country, an AS)."""

    why: str


def _event(decision: Any, created: str | None) -> EventEntry | Unused | str:
    """Return the event of one decision, why it is of no use, or why it is unreadable."""
    if not isinstance(decision, dict):
        return "a decision must be a JSON object"
    scope = str(decision.get("scope", "Ip"))
    if scope.lower() != "ip":  # ranges, countries, AS numbers: not one host's behaviour
        return Unused(
            f"CrowdSec decision {decision.get('id')} on {scope} {decision.get('value')!r}:"
            " not one address (only scope Ip decisions become evidence)"
        )
    try:
        address = ip_address(str(decision.get("value", "")).strip())
    except ValueError:
        return f"value {decision.get('value')!r} is not an IP address"
    when: datetime | None = None
    if created:
        try:
            when = datetime.fromisoformat(str(created).replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            return f"created_at {created!r} is not an ISO 8601 time"
    scenario = str(decision.get("scenario", ""))
    detail = {
        "tool": "crowdsec",
        "scenario": scenario,
        "origin": str(decision.get("origin", "")),
        "type": str(decision.get("type", "")),
        "decision": decision.get("id"),
    }
    return EventEntry(address=address, cause=cause_of(scenario), observed_at=when, detail=detail)

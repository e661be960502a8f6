"""The documented JSON-lines evidence format, for any producer (see docs/evidence.md).

One object per line::

    {"subject": "198.51.100.7", "cause": "spam", "source": "traps",
     "at": "2026-11-29T08:00:00Z", "weight": 1.0, "domain": "example.net",
     "detail": {"trap": "t1@example.net"}, "id": "optional idempotency key"}

``subject``, ``cause`` and ``source`` are required; ``at`` defaults to the reference time,
``weight`` to 1.0. Blank lines and lines starting with ``#`` are skipped.
"""

from __future__ import annotations

import json
import json.scanner
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from reputable.core.address import Domain, looks_like_ip, parse_address, parse_domain
from reputable.core.cause import Cause
from reputable.core.clock import parse_instant
from reputable.core.errors import InputError
from reputable.evidence.model import Evidence, EvidenceSubject

NAME: Final = "jsonl"
_CAUSES: Final = {c.value: c for c in Cause}
_FIELDS: Final = frozenset({"subject", "cause", "source", "at", "weight", "domain", "detail", "id"})
#: json.loads without its per-call checks: the C scanner json.loads itself ends up in.
_SCAN: Final = json.scanner.make_scanner(
    json.JSONDecoder()  # type: ignore[arg-type]  # typeshed types the argument as make_scanner
)


@dataclass(frozen=True, slots=True)
class LineError:
    """A line that could not be read, and why."""

    lineno: int
    message: str


def evidence_from_fields(fields: dict[str, Any], *, now: datetime) -> Evidence:
    """Return the Evidence described by one JSON object; raise InputError saying what is wrong."""
    return _evidence(fields, now, {}, {})


def _evidence(
    fields: dict[str, Any],
    now: datetime,
    subjects: dict[str, EvidenceSubject],
    domains: dict[str, Domain],
) -> Evidence:
    """Do the work of evidence_from_fields, remembering parsed subjects and domains."""
    if not _FIELDS.issuperset(fields):
        unknown = set(fields) - _FIELDS
        raise InputError(f"unknown field(s) {sorted(unknown)}; allowed: {sorted(_FIELDS)}")
    try:
        subject_text = fields["subject"]
        cause_text = fields["cause"]
        source = fields["source"]
    except KeyError as exc:
        raise InputError(f"missing required field {exc.args[0]!r}") from None
    if not isinstance(subject_text, str) or not isinstance(source, str) or not source:
        raise InputError("subject and source must be non-empty strings")
    cause = _CAUSES.get(cause_text) if type(cause_text) is str else None
    if cause is None:
        cause = _CAUSES.get(str(cause_text).lower())
        if cause is None:
            raise InputError(f"unknown cause {cause_text!r}; expected one of: {', '.join(_CAUSES)}")
    subject = subjects.get(subject_text)
    if subject is None:
        subject = subjects[subject_text] = (
            parse_address(subject_text)
            if looks_like_ip(subject_text)
            else parse_domain(subject_text)
        )
    at = fields.get("at")
    observed = parse_instant(at) if isinstance(at, str) else now
    if at is not None and not isinstance(at, str):
        raise InputError("at must be an ISO-8601 string")
    weight = fields.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight <= 1000:
        raise InputError(f"weight must be a number in (0, 1000], got {weight!r}")
    domain = fields.get("domain")
    detail = fields.get("detail") or {}
    if not isinstance(detail, dict):
        raise InputError("detail must be a JSON object")
    key = fields.get("id")
    if key is not None and (not isinstance(key, str) or not key):
        raise InputError("id must be a non-empty string")
    related = None
    if isinstance(domain, str) and domain:
        related = domains.get(domain)
        if related is None:
            related = domains[domain] = parse_domain(domain)
    return Evidence(
        subject=subject,
        cause=cause,
        source=source,
        observed_at=observed,
        weight=float(weight),
        related_domain=related,
        detail=detail,
        key=f"id:{source}:{key}" if key else "",
    )


def _decode(text: str) -> Any:
    """Return ``json.loads(text)`` for a stripped line, minus json.loads' per-call overhead."""
    try:
        value, end = _SCAN(text, 0)
    except (StopIteration, ValueError):
        pass
    else:
        if end == len(text):
            return value
    return json.loads(text)  # the error (or value) json.loads gives, message and all


def parse(lines: Iterable[str], *, now: datetime) -> tuple[list[Evidence], list[LineError]]:
    """Return the evidence of every good line and an error for every bad one (pure)."""
    good: list[Evidence] = []
    bad: list[LineError] = []
    # Subjects repeat within a batch: parse each text once (the values are immutable).
    subjects: dict[str, EvidenceSubject] = {}
    domains: dict[str, Domain] = {}
    for lineno, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            fields = _decode(text)
            if not isinstance(fields, dict):
                raise InputError("line is not a JSON object")
            good.append(_evidence(fields, now, subjects, domains))
        except json.JSONDecodeError as exc:
            bad.append(LineError(lineno, f"bad JSON: {exc.msg} at column {exc.colno}"))
        except RecursionError:
            bad.append(LineError(lineno, "bad JSON: nested too deeply"))
        except InputError as exc:
            bad.append(LineError(lineno, str(exc)))
    return good, bad

"""The documented JSON-lines evidence format, for any producer (see docs/evidence.md).

One object per line::

    {"subject": "198.51.100.7", "cause": "spam", "source": "traps",
     "at": "2026-11-29T08:00:00Z", "weight": 1.0, "domain": "example.net",
     "detail": {"trap": "t1@example.net"}, "id": "optional idempotency key"}

``subject``, ``cause`` and ``source`` are required; ``at`` defaults to the reference time,
``weight`` to 1.0. Blank lines and lines starting with ``#`` are skipped.
"""

from __future__ import annotations

import hashlib
import json
import json.scanner
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from reputable.core.address import Domain, looks_like_ip, parse_address, parse_domain
from reputable.core.cause import Cause
from reputable.core.clock import parse_instant
from reputable.core.errors import InputError
from reputable.evidence.model import (
    HOSTED_CAUSES,
    Evidence,
    EvidenceSubject,
    json_encoder,
    scoring_target,
)

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


#: One evidence-table row: (key, subject, target, cause, source, observed_at, weight, domain,
#: detail JSON), as ``store.sqlite_evidence.evidence_table_rows`` makes it from an Evidence.
TableRow = tuple[str, str, str, str, str, float, float, str | None, str]
#: The time most producers write: whole seconds in UTC ("2026-11-29T08:00:00Z").
_PLAIN_TIME: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z"
)
#: The two encoders of a detail: the key's (compact) and the stored column's.
_KEY_JSON: Final = json_encoder(",", ":")
_COLUMN_JSON: Final = json_encoder(", ", ": ")
_KEY_STR: Final = json.encoder.encode_basestring_ascii
#: cause text -> (its value, its JSON string, hosted or not): no enum attribute per line.
_CAUSE_ROWS: Final = {c: (c.value, _KEY_STR(c.value), c in HOSTED_CAUSES) for c in Cause}


def table_rows(lines: Iterable[str], *, now: datetime) -> tuple[list[TableRow], list[LineError]]:
    """Return :func:`parse`'s evidence as evidence-table rows, and the bad lines (pure).

    The same validation, errors and rows as ``evidence_table_rows(parse(lines))``, without an
    Evidence object per line: subjects, domains and hours are parsed once per batch, and the
    idempotency key is written straight from the fields (bench/policy_scale.py; the parser
    process of ``evidence import``). tests/evidence/test_jsonl_rows.py holds the two equal.
    """
    good: list[TableRow] = []
    bad: list[LineError] = []
    parser = _RowParser(now)
    row = parser.row
    for lineno, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            fields = _decode(text)
            if not isinstance(fields, dict):
                raise InputError("line is not a JSON object")
            good.append(row(fields))
        except json.JSONDecodeError as exc:
            bad.append(LineError(lineno, f"bad JSON: {exc.msg} at column {exc.colno}"))
        except RecursionError:
            bad.append(LineError(lineno, "bad JSON: nested too deeply"))
        except InputError as exc:
            bad.append(LineError(lineno, str(exc)))
    return good, bad


class _RowParser:
    """:func:`_evidence` and ``evidence_table_rows`` in one step, with per-batch caches."""

    def __init__(self, now: datetime) -> None:
        self.now_ts = now.timestamp()
        #: subject text -> (canonical text, its JSON string, default target)
        self.subjects: dict[str, tuple[str, str, str]] = {}
        self.domains: dict[str, Domain] = {}
        #: "YYYY-MM-DDTHH" -> epoch seconds of that hour
        self.hours: dict[str, float] = {}
        #: one str object per distinct source: pickle sends a batch's repeats as references
        self.sources: dict[str, str] = {}

    def subject(self, text: str) -> tuple[str, str, str]:
        """Return the cached texts of subject *text* (SubjectError if it is none)."""
        subject = parse_address(text) if looks_like_ip(text) else parse_domain(text)
        canonical = str(subject)
        known = self.subjects[text] = (
            canonical,
            _KEY_STR(canonical),
            scoring_target(subject, None),
        )
        return known

    def observed(self, at: str) -> float:
        """Return the epoch seconds of time *at* (InputError if it is none)."""
        if _PLAIN_TIME.fullmatch(at):
            within = int(at[14:16]) * 60 + int(at[17:19])
            hour = self.hours.get(at[:13])
            if hour is None:  # parse the whole text: a bad date fails with its own words
                hour = self.hours[at[:13]] = parse_instant(at).timestamp() - within
            return hour + within
        return parse_instant(at).timestamp()

    def row(self, fields: dict[str, Any]) -> TableRow:
        """Return the table row of one JSON object; raise InputError as :func:`_evidence` does."""
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
                raise InputError(
                    f"unknown cause {cause_text!r}; expected one of: {', '.join(_CAUSES)}"
                )
        known = self.subjects.get(subject_text)
        if known is None:
            known = self.subject(subject_text)
        at = fields.get("at")
        if at is None:
            observed = self.now_ts
        elif isinstance(at, str):
            observed = self.observed(at)
        else:
            raise InputError("at must be an ISO-8601 string")
        weight = fields.get("weight", 1.0)
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not 0 < weight <= 1000
        ):
            raise InputError(f"weight must be a number in (0, 1000], got {weight!r}")
        weight = float(weight)
        domain = fields.get("domain")
        detail = fields.get("detail") or {}
        if not isinstance(detail, dict):
            raise InputError("detail must be a JSON object")
        key = fields.get("id")
        if key is not None and (not isinstance(key, str) or not key):
            raise InputError("id must be a non-empty string")
        name: str | None = None
        if isinstance(domain, str) and domain:
            related = self.domains.get(domain)
            if related is None:
                related = self.domains[domain] = parse_domain(domain)
            name = related.name
        empty = type(detail) is dict and not detail
        value, value_json, hosted = _CAUSE_ROWS[cause]
        if key:
            key = f"id:{source}:{key}"
        else:  # evidence_key's text, piece by piece (JSON gives a plain str and a finite time)
            raw = (
                f"[{known[1]},{value_json},{_KEY_STR(source)},"
                f"{float.__repr__(observed)},{float.__repr__(weight)},"
                f"{_KEY_STR(name) if name is not None else 'null'},"
                f"{'{}' if empty else _KEY_JSON(detail)}]"
            )
            key = hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()
        source = self.sources.setdefault(source, source)
        return (
            key,
            known[0],
            name if name is not None and hosted else known[2],
            value,
            source,
            observed,
            weight,
            name,
            "{}" if empty else _COLUMN_JSON(detail),
        )

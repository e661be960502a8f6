"""Bulk-sender readiness: one verdict line per requirement, and ready / not ready (pure).

The requirements are those the large mailbox providers have published for bulk senders since
2024 (Google's email sender guidelines, Yahoo's sender requirements): SPF and DKIM passing for
the sending domain, a DMARC record (at least ``p=none``) aligned with From, forward-confirmed
reverse DNS for every sending IP, TLS for transmission, one-click unsubscribe (RFC 8058), and a
proper From / Return-Path. Each line is read from the report's findings; a requirement that the
check could not see (no sending IP, no ``--smtp``, no ``--message``) is "cannot tell" with why.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from reputable.checker.model import Finding, Report, Severity


class State(enum.StrEnum):
    """How one requirement stands."""

    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "cannot tell"


@dataclass(frozen=True, slots=True, kw_only=True)
class Requirement:
    """One requirement's verdict and the finding (or missing input) behind it."""

    name: str
    state: State
    why: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Readiness:
    """All requirements and the summary line."""

    requirements: tuple[Requirement, ...]

    @property
    def verdict(self) -> str:
        """ "ready", "not ready" or "cannot tell yet" for bulk sending."""
        states = {r.state for r in self.requirements}
        if State.FAIL in states:
            return "not ready"
        if State.UNKNOWN in states:
            return "cannot tell yet"
        return "ready"

    @property
    def summary(self) -> str:
        """The summary line, e.g. "not ready for bulk sending: 2 of 8 requirements fail"."""
        failing = sum(r.state is State.FAIL for r in self.requirements)
        unknown = sum(r.state is State.UNKNOWN for r in self.requirements)
        total = len(self.requirements)
        if failing:
            return f"not ready for bulk sending: {failing} of {total} requirements fail"
        if unknown:
            return f"cannot tell yet: {unknown} of {total} requirements could not be checked"
        return f"ready for bulk sending: all {total} requirements pass"


#: Checks that show a sending context: without any of them readiness is not assessed.
SENDING_CHECKS: Final = frozenset({"spf", "dkim", "dmarc", "message-dkim", "from"})


def _of(findings: Sequence[Finding], check: str) -> list[Finding]:
    return [f for f in findings if f.check == check]


def _judge(found: Sequence[Finding], missing: str) -> tuple[State, str]:
    """Fail on an error, pass on an ok finding, else cannot tell (inconclusive or absent)."""
    errors = [f for f in found if f.severity is Severity.ERROR and not f.inconclusive]
    if errors:
        return State.FAIL, errors[0].message
    good = [f for f in found if f.severity is Severity.OK]
    if good:
        return State.PASS, good[0].message
    unchecked = [f for f in found if f.inconclusive or f.severity is Severity.INFO]
    if unchecked:
        return State.UNKNOWN, unchecked[0].message
    return State.UNKNOWN, missing


def _spf(findings: Sequence[Finding]) -> tuple[State, str]:
    spf = _of(findings, "spf")
    evaluated = [f for f in spf if "authorises" in f.message]
    state, why = _judge(spf, "no sending domain given (--domain, or --message)")
    if state is State.PASS and not evaluated:
        return State.PASS, why + " (no sending IP to evaluate it for)"
    if state is State.PASS:
        return State.PASS, evaluated[0].message
    return state, why


def _dkim(findings: Sequence[Finding]) -> tuple[State, str]:
    signed = _of(findings, "message-dkim")
    if signed:
        return _judge(signed, "")
    state, why = _judge(_of(findings, "dkim"), "no sending domain given")
    if state is State.PASS:
        return State.PASS, why + " (give --message to verify a signature)"
    if state is State.UNKNOWN:
        keys = [f.message for f in _of(findings, "dkim") if f.severity is Severity.INFO]
        return State.UNKNOWN, (keys[0] + "; give --message FILE.eml") if keys else why
    return state, why


def _dmarc(findings: Sequence[Finding]) -> tuple[State, str]:
    dmarc = _of(findings, "dmarc")
    published = [f for f in dmarc if ": policy p=" in f.message]
    if published:
        return State.PASS, published[0].message
    missing = [f for f in dmarc if "no valid DMARC record" in f.message]
    if missing:
        return State.FAIL, missing[0].message
    return _judge(dmarc, "no sending domain given (--domain, or --message)")


def _tls(findings: Sequence[Finding]) -> tuple[State, str]:
    tls = _of(findings, "starttls")
    if any(f.severity is Severity.WARNING and not f.inconclusive for f in tls):
        return State.FAIL, next(f.message for f in tls if f.severity is Severity.WARNING)
    return _judge(tls, "the SMTP path was not probed (--smtp)")


def readiness(report: Report) -> Readiness | None:
    """Return the bulk-sender readiness of *report*, or None when it has no sending context."""
    findings = report.findings
    if report.error or not any(f.check in SENDING_CHECKS for f in findings):
        return None
    rdns = [f for f in _of(findings, "rdns") if f.severity in (Severity.OK, Severity.ERROR)]
    message = "no sample message given (--message FILE.eml)"
    lines = [
        ("SPF passes for the sending domain", _spf(findings)),
        ("DKIM signs for the sending domain", _dkim(findings)),
        ("DMARC record published (p=none at least)", _dmarc(findings)),
        ("DMARC alignment with the From domain", _judge(_of(findings, "alignment"), message)),
        ("forward-confirmed PTR for the sending IP", _judge(rdns, "no sending IP checked")),
        ("TLS offered on the SMTP path (STARTTLS)", _tls(findings)),
        ("one-click unsubscribe (RFC 8058)", _judge(_of(findings, "list-unsubscribe"), message)),
        ("From and Return-Path", _judge(_of(findings, "from"), message)),
    ]
    return Readiness(requirements=tuple(Requirement(name=n, state=s, why=w) for n, (s, w) in lines))

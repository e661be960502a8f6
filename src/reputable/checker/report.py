"""Turning a Report into a verdict, a summary line and the documented ``--json`` document (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from reputable.checker.bulk import readiness
from reputable.checker.model import (
    EXIT_CODE,
    Delisting,
    Finding,
    Removal,
    Report,
    Severity,
    Status,
    Verdict,
    ZoneResult,
)
from reputable.checker.steps import next_steps
from reputable.core.cause import Cause

#: Version of the ``--json`` document; bumped only on an incompatible change (docs/checker.md).
SCHEMA_VERSION = 1


def blocklists(report: Report) -> tuple[ZoneResult, ...]:
    """Return the results of the block zones (allowlists never make a verdict worse)."""
    return tuple(r for r in report.listings if not r.allow)


def problems(report: Report) -> tuple[Finding, ...]:
    """Return the findings that count as problems (warnings and errors)."""
    return tuple(f for f in report.findings if f.is_problem)


def inconclusive(report: Report) -> tuple[Finding, ...]:
    """Return the findings of checks that could not be made (the nameserver gave no answer)."""
    return tuple(f for f in report.findings if f.inconclusive)


def verdict(report: Report) -> Verdict:
    """Return listed if any blocklist lists the subject, incomplete if some gave no answer."""
    if report.error:
        return Verdict.ERROR
    blocks = blocklists(report)
    if any(r.status is Status.LISTED for r in blocks):
        return Verdict.LISTED
    if blocks and all(r.status is not Status.CLEAN for r in blocks):
        return Verdict.ERROR
    if any(r.status is not Status.CLEAN for r in blocks):
        return Verdict.INCOMPLETE
    return Verdict.CLEAN


def exit_code(report: Report) -> int:
    """Return the process exit code for *report* (0 clean, 1 listed, 2 error, 3 incomplete)."""
    return EXIT_CODE[verdict(report)]


def _listed_on(results: Sequence[ZoneResult], lists: str) -> str:
    listed = sum(r.status is Status.LISTED for r in results)
    if listed:
        return f"listed on {listed} of {len(results)} {lists}"
    return f"not listed on any of {len(results)} {lists}"


def summary(report: Report) -> str:
    """Return the verdict line, e.g. "listed on 3 of 42 lists; 2 problems found".

    A domain check counts the domain's own lists and each MX host's lists separately:
    "not listed on any of 2 domain lists; MX host 192.0.2.1 listed on 1 of 40 lists; ...".
    """
    if report.error:
        return f"check failed: {report.error}"
    blocks = blocklists(report)
    by_subject: dict[str, list[ZoneResult]] = {}
    for result in blocks:
        by_subject.setdefault(result.subject, []).append(result)
    own = by_subject.pop("", [])
    if not by_subject:
        parts = [_listed_on(own, "lists")]
    else:
        parts = [_listed_on(own, "domain lists")]
        clean_hosts: dict[int, list[str]] = {}  # by number of lists asked (IPv6: fewer)
        for host, results in by_subject.items():
            if any(r.status is Status.LISTED for r in results):
                parts.append(f"MX host {host} {_listed_on(results, 'lists')}")
            else:
                clean_hosts.setdefault(len(results), []).append(host)
        for size, hosts in clean_hosts.items():
            noun = "MX host" if len(hosts) == 1 else "MX hosts"
            parts.append(f"{noun} {', '.join(hosts)} not listed on any of {size} lists")
    unanswered = sum(r.status in (Status.TIMEOUT, Status.ERROR, Status.REFUSED) for r in blocks)
    allowed = [r.zone for r in report.listings if r.allow and r.status is Status.LISTED]
    count = len(problems(report))
    if unanswered:
        parts.append(f"{unanswered} gave no usable answer")
    if allowed:
        parts.append(f"allowlisted on {len(allowed)}")
    parts.append(f"{count} problem{'s' if count != 1 else ''} found")
    unchecked = len(inconclusive(report))
    if unchecked:
        parts.append(
            f"{unchecked} check{'s' if unchecked != 1 else ''} inconclusive (no DNS answer)"
        )
    return "; ".join(parts)


def listing_json(result: ZoneResult) -> dict[str, Any]:
    """Return one entry of the ``listings`` array."""
    return {
        "zone": result.zone,
        "kind": "allow" if result.allow else "block",
        "status": result.status.value,
        "codes": list(result.codes),
        "meaning": result.meaning,
        "causes": [c.value for c in result.causes],
        "txt": result.txt,
        "removal_url": result.removal_url,
        "subject": result.subject,
        "delisting": delisting_json(result.delisting),
    }


def readiness_json(report: Report) -> dict[str, Any] | None:
    """Return the bulk-sender readiness: verdict, summary, one entry per requirement (or null)."""
    ready = readiness(report)
    if ready is None:
        return None
    return {
        "verdict": ready.verdict,
        "summary": ready.summary,
        "requirements": [
            {"name": r.name, "state": r.state.value, "why": r.why} for r in ready.requirements
        ],
    }


def delisting_json(delisting: Delisting | None) -> dict[str, Any] | None:
    """Return how a list removes an entry: method, expiry in seconds (or null), paid express."""
    if delisting is None:
        return None
    expires = delisting.expires
    return {
        "method": delisting.method.value,
        "expires_after_seconds": int(expires.total_seconds()) if expires is not None else None,
        "paid_express": delisting.paid_express,
    }


def delisting_from_json(data: Mapping[str, Any] | None) -> Delisting | None:
    """Return the Delisting a ``delisting`` entry describes (None stays None)."""
    if not data:
        return None
    seconds = data.get("expires_after_seconds")
    return Delisting(
        method=Removal(data.get("method", Removal.UNKNOWN.value)),
        expires=timedelta(seconds=seconds) if seconds is not None else None,
        paid_express=bool(data.get("paid_express", False)),
    )


def finding_json(finding: Finding) -> dict[str, Any]:
    """Return one entry of the ``findings`` array."""
    return {
        "check": finding.check,
        "cause": str(finding.cause),
        "severity": finding.severity.value,
        "message": finding.message,
        "remediation": finding.remediation,
        "inconclusive": finding.inconclusive,
    }


def report_json(report: Report) -> dict[str, Any]:
    """Return the ``--json`` document of *report* (schema in docs/checker.md)."""
    return {
        "schema": SCHEMA_VERSION,
        "subject": report.subject,
        "verdict": verdict(report).value,
        "summary": summary(report),
        "error": report.error,
        "steps": [
            {"kind": st.kind.value, "text": st.text, "zones": list(st.zones), "url": st.url}
            for st in next_steps(report)
        ],
        "readiness": readiness_json(report),
        "listings": [listing_json(r) for r in report.listings],
        "findings": [finding_json(f) for f in report.findings],
    }


def report_from_json(data: dict[str, Any]) -> Report:
    """Return the Report a ``--json`` document describes (used for watch state on disk)."""
    listings = tuple(
        ZoneResult(
            zone=e["zone"],
            allow=e.get("kind") == "allow",
            status=Status(e["status"]),
            codes=tuple(e.get("codes", ())),
            meaning=e.get("meaning", ""),
            causes=tuple(Cause(c) for c in e.get("causes", ())),
            txt=e.get("txt", ""),
            removal_url=e.get("removal_url", ""),
            subject=e.get("subject", ""),
            delisting=delisting_from_json(e.get("delisting")),
        )
        for e in data.get("listings", ())
    )
    findings = tuple(
        Finding(
            check=e.get("check", ""),
            cause=e["cause"] if e["cause"] == "mail_auth" else Cause(e["cause"]),
            severity=Severity(e["severity"]),
            message=e.get("message", ""),
            remediation=e.get("remediation", ""),
            inconclusive=bool(e.get("inconclusive", False)),
        )
        for e in data.get("findings", ())
    )
    return Report(
        subject=data["subject"], listings=listings, findings=findings, error=data.get("error", "")
    )

"""What to do next, in order: fix the causes, then get each listing removed, then re-check (pure).

The steps come from the report alone: the findings' remediations and the catalogue's removal
method of each list that lists the subject (see ``removal`` in data/zones.toml). A list that
sells express removal is said to do so, with the free path first; paying is never advised.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from reputable.checker.model import Delisting, Removal, Report, Severity, Status, ZoneResult
from reputable.core.cause import Cause

#: The fix for each cause a list gives (findings carry their own, more specific ones).
CAUSE_FIX: Final[dict[Cause, str]] = {
    Cause.SPAM: "Find what sent the spam (a compromised mailbox or web form, a bulk campaign to"
    " addresses that never opted in) and stop it; check the outgoing queue and the mail log.",
    Cause.HARVEST: "Clean the mailing list: remove addresses that bounce, and send only to"
    " addresses that confirmed their subscription.",
    Cause.COMPROMISED: "Find and clean the infected or abused machine behind this address"
    " (malware, a cracked account, an open proxy); change its passwords and patch it.",
    Cause.OPEN_RELAY: "Close the open relay: relay only for your own networks and authenticated"
    " users (Postfix: smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated,"
    " defer_unauth_destination).",
    Cause.OPEN_PROXY: "Close the open proxy (HTTP CONNECT / SOCKS) on this address, or limit it"
    " to your own users.",
    Cause.MALWARE_HOST: "Remove the malware or phishing pages the address or domain hosts, and"
    " close the hole they came through.",
    Cause.RDNS: "This is an end-user or dynamic range: send through your provider's mail relay"
    " (smarthost), or get a static address with a PTR naming your mail server.",
    Cause.MANUAL: "Ask the list's operator why it lists you; its page says how.",
}


#: Why paid express removal is never needed, by removal method (said only when one is offered).
FREE_PATH: Final[dict[Removal, str]] = {
    Removal.SELF_SERVICE: "the free request is enough once the cause is fixed",
    Removal.EXPIRY: "the listing ends by itself once the cause is fixed",
    Removal.NETWORK: "the listing ends when the provider has cleaned up its network",
    Removal.PERMANENT: "the listing describes the address, and paying does not change that",
    Removal.UNKNOWN: "ask for the free removal first",
}


class StepKind(enum.StrEnum):
    """What a step asks of the admin."""

    FIX = "fix"
    REMOVE = "remove"  # request removal at a list's page
    WAIT = "wait"  # the listing expires by itself
    PROVIDER = "provider"  # only the network's provider can act
    INFO = "info"  # nothing to do (a list of what the address is)
    RECHECK = "recheck"


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One thing to do, with the lists it concerns and where to do it."""

    kind: StepKind
    text: str
    zones: tuple[str, ...] = ()
    url: str = ""


def duration_text(value: timedelta) -> str:
    """Return *value* in words: "24 hours", "7 days", "90 minutes"."""
    seconds = int(value.total_seconds())
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def _label(result: ZoneResult) -> str:
    return f"{result.zone} (MX host {result.subject})" if result.subject else result.zone


def _fix_steps(report: Report, listed: Sequence[ZoneResult]) -> list[Step]:
    steps: list[Step] = []
    seen: set[str] = set()
    ranked = sorted(
        (f for f in report.findings if f.is_problem and f.remediation),
        key=lambda f: f.severity is not Severity.ERROR,
    )
    for finding in ranked:
        if finding.remediation in seen:
            continue
        seen.add(finding.remediation)
        steps.append(Step(kind=StepKind.FIX, text=f"{finding.message}: {finding.remediation}"))
    causes = dict.fromkeys(c for r in listed for c in r.causes if c in CAUSE_FIX)
    for cause in causes:
        zones = tuple(_label(r) for r in listed if cause in r.causes)
        steps.append(
            Step(
                kind=StepKind.FIX,
                text=f"Listed for {cause} by {', '.join(zones)}: {CAUSE_FIX[cause]}",
                zones=zones,
            )
        )
    return steps


def _operator(results: Sequence[ZoneResult]) -> str:
    return results[0].operator or results[0].zone


def _removal_step(method: Removal, url: str, results: Sequence[ZoneResult]) -> Step:
    zones = tuple(_label(r) for r in results)
    names = ", ".join(zones)
    who = _operator(results)
    delisting = results[0].delisting or Delisting()
    express = (
        f" {who} also sells express removal for a fee; it is not needed: {FREE_PATH[method]}."
        if delisting.paid_express
        else ""
    )
    if method is Removal.SELF_SERVICE:
        where = f" at {url}" if url else f" from {who}"
        return Step(
            kind=StepKind.REMOVE,
            text=f"After fixing, request removal from {names}{where} (free).{express}",
            zones=zones,
            url=url,
        )
    if method is Removal.EXPIRY:
        after = f" after {duration_text(delisting.expires)}" if delisting.expires else ""
        return Step(
            kind=StepKind.WAIT,
            text=f"No request needed for {names}: its entries expire by themselves{after}"
            f" without new reports, so the listing ends once the cause is fixed.{express}",
            zones=zones,
            url=url,
        )
    if method is Removal.NETWORK:
        return Step(
            kind=StepKind.PROVIDER,
            text=f"{names} lists the network around this address (its provider's allocation or"
            " AS), not the address alone: its owner cannot remove it. Send this report to the"
            " provider's abuse desk, which must clean up its network, or send mail through a"
            f" relay in another network.{express}",
            zones=zones,
            url=url,
        )
    if method is Removal.PERMANENT:
        return Step(
            kind=StepKind.INFO,
            text=f"{names} lists what the address is ({results[0].meaning}), not what it did:"
            " it stays listed while that is true; few receivers block on it alone.",
            zones=zones,
            url=url,
        )
    where = f": see {url}" if url else ""
    return Step(
        kind=StepKind.REMOVE,
        text=f"Ask {who} how it removes entries from {names}{where}.",
        zones=zones,
        url=url,
    )


def _removal_steps(listed: Sequence[ZoneResult]) -> list[Step]:
    groups: dict[tuple[Removal, str], list[ZoneResult]] = {}
    for result in listed:
        method = (result.delisting or Delisting()).method
        groups.setdefault((method, result.removal_url), []).append(result)
    order = list(Removal)
    return [
        _removal_step(method, url, results)
        for (method, url), results in sorted(groups.items(), key=lambda g: order.index(g[0][0]))
    ]


def next_steps(report: Report) -> tuple[Step, ...]:
    """Return the ordered steps for *report*: fixes, removal per list, then when to re-check."""
    if report.error:
        return ()
    listed = [r for r in report.listings if not r.allow and r.status is Status.LISTED]
    steps = _fix_steps(report, listed) + _removal_steps(listed)
    if not steps:
        return ()
    again = f"reputable check {report.subject}"
    if listed:
        expiring = [
            r.delisting.expires
            for r in listed
            if r.delisting is not None and r.delisting.expires is not None
        ]
        later = f"; the expiring lists within {duration_text(max(expiring))}" if expiring else ""
        text = (
            f"Re-check with `{again}` once the removal requests are handled (usually within"
            f" hours){later}; `reputable watch` re-checks on a schedule and says when each"
            " listing is gone."
        )
    else:
        text = f"Re-check with `{again}` after the fixes (DNS changes need their TTL to pass)."
    return (*steps, Step(kind=StepKind.RECHECK, text=text))

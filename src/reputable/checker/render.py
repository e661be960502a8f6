"""Presenting a Report: Rich output for terminals and one self-contained HTML page.

Both lead with the verdict and the ordered steps (steps.py), then the lists grouped by status:
listings first with their meaning and removal path, then the lists that gave no usable answer
with the explanation said once per group, then the clean lists as a count (``--all`` or, in
HTML, a ``<details>`` element shows them), then the diagnostics. The page uses no tables for
the listings and findings, so it fits 375 to 1,280 px wide without horizontal scrolling.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Final

from rich.console import Console
from rich.table import Table
from rich.text import Text

from reputable.checker.bulk import State, readiness
from reputable.checker.model import (
    Delisting,
    Finding,
    LocalVerdict,
    Removal,
    Report,
    Severity,
    Status,
    Verdict,
    ZoneResult,
)
from reputable.checker.report import summary, verdict
from reputable.checker.steps import duration_text, next_steps

_STATUS_STYLE: Final = {
    Status.LISTED: "bold red",
    Status.CLEAN: "green",
    Status.REFUSED: "yellow",
    Status.TIMEOUT: "yellow",
    Status.ERROR: "magenta",
}
_SEVERITY_STYLE: Final = {
    Severity.OK: "green",
    Severity.INFO: "cyan",
    Severity.WARNING: "yellow",
    Severity.ERROR: "bold red",
}
_STATE_STYLE: Final = {State.PASS: "green", State.FAIL: "bold red", State.UNKNOWN: "yellow"}
_STATE_CLASS: Final = {State.PASS: "ok", State.FAIL: "error", State.UNKNOWN: "warning"}
_VERDICT_STYLE: Final = {
    Verdict.CLEAN: "bold green",
    Verdict.LISTED: "bold red",
    Verdict.INCOMPLETE: "bold yellow",
    Verdict.ERROR: "bold magenta",
}
#: What a group of unanswered lists means, said once for the group.
GROUP_NOTE: Final = {
    Status.REFUSED: "These lists refused the query (an error code such as 127.255.255.254, or"
    " REFUSED). Public resolvers and heavy unregistered use are refused by many lists: check"
    " again through your own recursive resolver (--nameserver), or register with the list.",
    Status.TIMEOUT: "These lists did not answer in time: their servers or the resolver are"
    " slow or down. Nothing is known about the address there; check again later.",
    Status.ERROR: "These lists gave an answer that is not a listing code (or the query"
    " failed): nothing is known about the address there.",
}


def removal_text(result: ZoneResult, *, with_url: bool = True) -> str:
    """Return how this listing goes away, in a few words (plus the list's page if *with_url*)."""
    delisting = result.delisting or Delisting()
    url = f" {result.removal_url}" if result.removal_url and with_url else ""
    express = "; paid express removal offered (not needed)" if delisting.paid_express else ""
    method = delisting.method
    if method is Removal.SELF_SERVICE:
        return f"request removal after fixing (free){':' if url else ''}{url}{express}"
    if method is Removal.EXPIRY:
        after = f" after {duration_text(delisting.expires)}" if delisting.expires else ""
        return f"expires by itself{after} without new reports{express}"
    if method is Removal.NETWORK:
        return f"network listing: only the provider can fix it{express}"
    if method is Removal.PERMANENT:
        return "lists what the address is: not removable while true"
    if result.removal_url:
        return f"see the list's page{':' if url else ''}{url}"
    return "the catalogue names no removal page"


def shown(report: Report, *, all_zones: bool) -> list[ZoneResult]:
    """Return the zone results worth listing one by one: all, or those not plainly clean."""
    return [r for r in report.listings if all_zones or r.status is not Status.CLEAN]


def _name(result: ZoneResult) -> str:
    name = result.zone + (f" (MX host {result.subject})" if result.subject else "")
    return name + (" [allowlist]" if result.allow else "")


def groups(report: Report) -> dict[Status, list[ZoneResult]]:
    """Return the blocklist results by status, in the order shown (listed first)."""
    order = (Status.LISTED, Status.REFUSED, Status.TIMEOUT, Status.ERROR, Status.CLEAN)
    out: dict[Status, list[ZoneResult]] = {status: [] for status in order}
    for result in report.listings:
        if not result.allow:
            out[result.status].append(result)
    return out


def _findings_in_order(findings: Sequence[Finding]) -> list[Finding]:
    rank = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2, Severity.OK: 3}
    return sorted(findings, key=lambda f: (f.inconclusive, rank[f.severity]))


def print_report(console: Console, report: Report, *, all_zones: bool = False) -> None:
    """Print the verdict, the steps, the lists by status and the diagnostics."""
    console.print(
        Text(f"{report.subject}: ", style="bold")
        + Text(summary(report), style=_VERDICT_STYLE[verdict(report)])
    )
    steps = next_steps(report)
    if steps:
        console.print(Text("\nWhat to do, in order", style="bold"))
        for number, step in enumerate(steps, 1):
            console.print(Text(f" {number}. {step.text}"), highlight=False)
    ready = readiness(report)
    if ready is not None:
        style = "bold green" if ready.verdict == "ready" else "bold red"
        style = "bold yellow" if ready.verdict == "cannot tell yet" else style
        console.print(Text("\nBulk-sender readiness: ", style="bold") + Text(ready.summary, style))
        for req in ready.requirements:
            console.print(
                Text(f"  {req.state.value:<11} ", style=_STATE_STYLE[req.state])
                + Text(f"{req.name}: {req.why}"),
                highlight=False,
            )
    by_status = groups(report)
    listed = by_status[Status.LISTED]
    if listed:
        console.print()
        table = Table(title=f"Listed on {len(listed)}", title_justify="left", expand=False)
        for column in ("list", "codes", "meaning", "removal"):
            table.add_column(column, overflow="fold")
        for r in listed:
            table.add_row(  # data from DNS and zone files: Text, never Rich markup
                Text(_name(r)),
                Text(", ".join(r.codes), style=_STATUS_STYLE[r.status]),
                Text(r.meaning + (f"\nTXT: {r.txt}" if r.txt else "")),
                Text(removal_text(r)),
            )
        console.print(table)
    for status, note in GROUP_NOTE.items():
        results = by_status[status]
        if not results:
            continue
        names = ", ".join(_name(r) + (f" ({', '.join(r.codes)})" if r.codes else "")
                          for r in results)  # fmt: skip
        console.print(
            Text(f"\n{status.value} ({len(results)}): ", style=_STATUS_STYLE[status]) + Text(names)
        )
        console.print(Text(f"  {note}"), highlight=False)
    clean = by_status[Status.CLEAN]
    if clean:
        more = ": " + ", ".join(_name(r) for r in clean) if all_zones else " (--all lists them)"
        console.print(Text(f"\nclean on {len(clean)}", style="green") + Text(more))
    allowed = [r for r in report.listings if r.allow and (all_zones or r.status is Status.LISTED)]
    for r in allowed:
        console.print(Text(f"allowlist {_name(r)}: {r.status.value} {r.meaning}".rstrip()))
    if report.findings:
        console.print()
        table = Table(title="Diagnostics", title_justify="left", expand=False)
        for column in ("check", "severity", "finding", "what to do"):
            table.add_column(column, overflow="fold")
        for f in _findings_in_order(report.findings):
            table.add_row(  # messages quote records and config keys ("[checker]"): Text
                Text(f"{f.check}\n({f.cause})"),
                Text(f.severity.value, style=_SEVERITY_STYLE[f.severity]),
                Text(f.message),
                Text(f.remediation),
            )
        console.print(table)


_CSS: Final = """
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:70em;color:#222;padding:1em}
h1{font-size:1.3em;margin:.2em 0} h2{font-size:1.1em;margin-top:1.5em}
h1,h2,p,li,dd,dt,summary{overflow-wrap:anywhere}
ol.steps li{margin:.35em 0} ul.cards{list-style:none;padding:0;margin:0}
ul.cards>li{border:1px solid #ccc;border-radius:6px;padding:.5em .7em;margin:.5em 0}
.name{font-weight:600} .meta{color:#555;font-size:.92em} .fix{margin-top:.25em}
.listed,.error,.v-listed{color:#b00020;font-weight:600} .clean,.ok,.v-clean{color:#1b7f3b}
.refused,.timeout,.warning,.v-incomplete{color:#a15c00} .info{color:#0b5cad}
.v-error{color:#7a1fa2} footer{margin-top:2em;color:#777;font-size:.85em}
details{margin:.6em 0} summary{cursor:pointer}
"""


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _link(url: str) -> str:
    if url.startswith(("https://", "http://")):
        return f'<a href="{_e(url)}">{_e(url)}</a>'
    return _e(url)


def print_local(console: Console, local: LocalVerdict) -> None:
    """Print the local lists' verdict under the public report (no markup from the data)."""
    label = Text("local list: ", style="bold red" if local.listed else "")
    console.print(label + Text(local.summary), highlight=False)
    for line in local.details:
        console.print(Text(f"  {line}"), highlight=False)


def _html_listed(results: Sequence[ZoneResult]) -> list[str]:
    parts = [f"<h2 class=listed>Listed on {len(results)}</h2><ul class=cards>"]
    for r in results:
        link = f" {_link(r.removal_url)}" if r.removal_url else ""
        how = removal_text(r, with_url=False)
        parts.append(
            f"<li><div class=name>{_e(_name(r))} <span class=listed>{_e(', '.join(r.codes))}"
            f"</span></div><div>{_e(r.meaning)}</div>"
            + (f"<div class=meta>TXT: {_e(r.txt)}</div>" if r.txt else "")
            + f"<div class=fix>Removal: {_e(how)}{link}</div></li>"
        )
    parts.append("</ul>")
    return parts


def _html_report(report: Report) -> list[str]:
    v = verdict(report)
    parts = [
        f"<section><h1>{_e(report.subject)}: <span class='v-{v.value}'>"
        f"{_e(summary(report))}</span></h1>"
    ]
    steps = next_steps(report)
    if steps:
        parts.append("<h2>What to do, in order</h2><ol class=steps>")
        parts += [f"<li>{_e(step.text)}</li>" for step in steps]
        parts.append("</ol>")
    ready = readiness(report)
    if ready is not None:
        parts.append(f"<h2>Bulk-sender readiness: {_e(ready.summary)}</h2><ul class=cards>")
        parts += [
            f"<li><span class={_STATE_CLASS[req.state]}>{_e(req.state.value)}</span>"
            f" {_e(req.name)}<div class=meta>{_e(req.why)}</div></li>"
            for req in ready.requirements
        ]
        parts.append("</ul>")
    by_status = groups(report)
    if by_status[Status.LISTED]:
        parts += _html_listed(by_status[Status.LISTED])
    for status, note in GROUP_NOTE.items():
        results = by_status[status]
        if results:
            names = ", ".join(_name(r) + (f" ({' '.join(r.codes)})" if r.codes else "")
                              for r in results)  # fmt: skip
            parts.append(
                f"<h2 class={status.value}>{_e(status.value.capitalize())}: {len(results)}</h2>"
                f"<p>{_e(names)}</p><p class=meta>{_e(note)}</p>"
            )
    clean = by_status[Status.CLEAN]
    if clean:
        parts.append(
            f"<details><summary class=clean>Clean on {len(clean)} lists</summary><p>"
            f"{_e(', '.join(_name(r) for r in clean))}</p></details>"
        )
    allowed = [r for r in report.listings if r.allow]
    if allowed:
        items = "".join(
            f"<li>{_e(_name(r))}: <span class={r.status.value}>{_e(r.status.value)}</span>"
            f" {_e(r.meaning)}</li>"
            for r in allowed
        )
        parts.append(f"<h2>Allowlists</h2><ul>{items}</ul>")
    if report.findings:
        parts.append("<h2>Diagnostics</h2><ul class=cards>")
        for f in _findings_in_order(report.findings):
            fix = f"<div class=fix>{_e(f.remediation)}</div>" if f.remediation else ""
            parts.append(
                f"<li><span class={f.severity.value}>{_e(f.severity.value)}</span>"
                f" <span class=meta>{_e(f.check)} ({_e(str(f.cause))})</span>"
                f"<div>{_e(f.message)}</div>{fix}</li>"
            )
        parts.append("</ul>")
    parts.append("</section>")
    return parts


def html_page(
    reports: Sequence[Report], *, generated: str, local: Sequence[LocalVerdict] = ()
) -> str:
    """Return one self-contained HTML page (inline CSS, no scripts) for *reports*.

    *local* adds the verdicts of this machine's own reputable lists, when a store exists.
    """
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width,initial-scale=1'>",
        f"<title>reputable check: {_e(', '.join(r.subject for r in reports))}</title>",
        f"<style>{_CSS}</style></head><body>",
    ]
    for report in reports:
        parts += _html_report(report)
    for verdict_ in local:
        style = "listed" if verdict_.listed else "clean"
        parts.append(f"<h2>Local lists: {_e(verdict_.subject)}</h2>")
        parts.append(f"<p class='{style}'>{_e(verdict_.summary)}</p>")
        if verdict_.details:
            parts.append("<ul>" + "".join(f"<li>{_e(d)}</li>" for d in verdict_.details) + "</ul>")
    parts.append(f"<footer>generated by reputable check at {_e(generated)}</footer>")
    parts.append("</body></html>\n")
    return "".join(parts)

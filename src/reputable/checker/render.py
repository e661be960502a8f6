"""Presenting a Report: a Rich table for terminals and one self-contained HTML page."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Final

from rich.console import Console
from rich.table import Table
from rich.text import Text

from reputable.checker.model import LocalVerdict, Report, Severity, Status, Verdict, ZoneResult
from reputable.checker.report import summary, verdict

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
_VERDICT_STYLE: Final = {
    Verdict.CLEAN: "bold green",
    Verdict.LISTED: "bold red",
    Verdict.INCOMPLETE: "bold yellow",
    Verdict.ERROR: "bold magenta",
}


def shown(report: Report, *, all_zones: bool) -> list[ZoneResult]:
    """Return the zone results worth showing: all, or only those that are not plain clean."""
    return [r for r in report.listings if all_zones or r.status is not Status.CLEAN]


def print_report(console: Console, report: Report, *, all_zones: bool = False) -> None:
    """Print the verdict line, the listings table and the findings table."""
    console.print(
        Text(f"{report.subject}: ", style="bold")
        + Text(summary(report), style=_VERDICT_STYLE[verdict(report)])
    )
    rows = shown(report, all_zones=all_zones)
    if rows:
        table = Table(title="DNS lists", title_justify="left", expand=False)
        for column in ("list", "status", "meaning", "TXT / removal"):
            table.add_column(column, overflow="fold")
        for r in rows:
            name = r.zone + (f"\n(MX {r.subject})" if r.subject else "")
            name += " [allow]" if r.allow else ""
            codes = f" {', '.join(r.codes)}" if r.codes else ""
            table.add_row(  # data from DNS and zone files: Text, never Rich markup
                Text(name),
                Text(r.status.value + codes, style=_STATUS_STYLE[r.status]),
                Text(r.meaning),
                Text("\n".join(x for x in (r.txt, r.removal_url) if x)),
            )
        console.print(table)
    if report.findings:
        table = Table(title="Diagnostics", title_justify="left", expand=False)
        for column in ("check", "cause", "severity", "finding", "what to do"):
            table.add_column(column, overflow="fold")
        for f in report.findings:
            table.add_row(  # messages quote records and config keys ("[checker]"): Text
                Text(f.check),
                Text(str(f.cause)),
                Text(f.severity.value, style=_SEVERITY_STYLE[f.severity]),
                Text(f.message),
                Text(f.remediation),
            )
        console.print(table)


_CSS: Final = """
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;color:#222;padding:0 1em}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;width:100%} td,th{border:1px solid #ccc;padding:.35em .5em;
vertical-align:top;text-align:left} th{background:#f3f3f3}
.listed,.error,.v-listed{color:#b00020;font-weight:600} .clean,.ok,.v-clean{color:#1b7f3b}
.refused,.timeout,.warning,.v-incomplete{color:#a15c00} .info{color:#0b5cad}
.v-error{color:#7a1fa2} footer{margin-top:2em;color:#777;font-size:.85em}
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
        v = verdict(report)
        parts.append(f"<h1>{_e(report.subject)}: <span class='v-{v.value}'>")
        parts.append(f"{_e(summary(report))}</span></h1>")
        rows = shown(report, all_zones=True)
        if rows:
            parts.append("<h2>DNS lists</h2><table><tr><th>list</th><th>status</th>")
            parts.append("<th>meaning</th><th>TXT</th><th>removal</th></tr>")
            for r in rows:
                extra = f" (MX {r.subject})" if r.subject else ""
                extra += " [allowlist]" if r.allow else ""
                parts.append(
                    f"<tr><td>{_e(r.zone + extra)}</td>"
                    f"<td class='{r.status.value}'>{_e(r.status.value)} {_e(' '.join(r.codes))}"
                    f"</td><td>{_e(r.meaning)}</td><td>{_e(r.txt)}</td>"
                    f"<td>{_link(r.removal_url)}</td></tr>"
                )
            parts.append("</table>")
        if report.findings:
            parts.append("<h2>Diagnostics</h2><table><tr><th>check</th><th>cause</th>")
            parts.append("<th>severity</th><th>finding</th><th>what to do</th></tr>")
            for f in report.findings:
                parts.append(
                    f"<tr><td>{_e(f.check)}</td><td>{_e(str(f.cause))}</td>"
                    f"<td class='{f.severity.value}'>{_e(f.severity.value)}</td>"
                    f"<td>{_e(f.message)}</td><td>{_e(f.remediation)}</td></tr>"
                )
            parts.append("</table>")
    for verdict_ in local:
        style = "listed" if verdict_.listed else "clean"
        parts.append(f"<h2>Local lists: {_e(verdict_.subject)}</h2>")
        parts.append(f"<p class='{style}'>{_e(verdict_.summary)}</p>")
        if verdict_.details:
            parts.append("<ul>" + "".join(f"<li>{_e(d)}</li>" for d in verdict_.details) + "</ul>")
    parts.append(f"<footer>generated by reputable check at {_e(generated)}</footer>")
    parts.append("</body></html>\n")
    return "".join(parts)

"""Charts drawn on the server as inline SVG (pure; no library, no JavaScript).

Each chart is an ``<svg role="img">`` with a title and a text summary, so screen readers
and text browsers get the numbers too; the page carries a table of the same data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from reputable.web.pages.html import esc

# Colour-blind-safe palette (Okabe-Ito), dark enough against white.
PALETTE: Final = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#7f7f00",
    "#000000",
    "#999999",
)
WIDTH: Final = 480
HEIGHT: Final = 200
PAD_LEFT: Final = 40
PAD_BOTTOM: Final = 22


def _nice(top: float) -> float:
    """Return a round upper bound at or above *top*."""
    if top <= 0:
        return 1.0
    step = 10 ** (len(str(int(top))) - 1)
    return float(((int(top) // step) + 1) * step)


def stacked_bars(title: str, labels: Sequence[str], series: Mapping[str, Sequence[float]]) -> str:
    """Return a stacked bar chart: one bar per label, one colour per series."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    top = _nice(max(totals, default=0.0))
    plot_w = WIDTH - PAD_LEFT - 4
    plot_h = HEIGHT - PAD_BOTTOM - 8
    n = max(len(labels), 1)
    bar_w = plot_w / n
    parts: list[str] = []
    for s_index, (name, values) in enumerate(series.items()):
        colour = PALETTE[s_index % len(PALETTE)]
        for i in range(len(labels)):
            below = sum(list(series.values())[k][i] for k in range(s_index))
            value = values[i]
            if value <= 0:
                continue
            h = value / top * plot_h
            y = 8 + plot_h - (below / top * plot_h) - h
            x = PAD_LEFT + i * bar_w + bar_w * 0.1
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w * 0.8:.1f}" height="{h:.1f}"'
                f' fill="{colour}"><title>{esc(labels[i])} {esc(name)}: {value:g}</title></rect>'
            )
    return _frame(title, labels, top, parts, series, totals)


def line(title: str, labels: Sequence[str], values: Sequence[float]) -> str:
    """Return a line chart of *values* (e.g. an evidence timeline)."""
    top = _nice(max(values, default=0.0))
    plot_w = WIDTH - PAD_LEFT - 4
    plot_h = HEIGHT - PAD_BOTTOM - 8
    n = max(len(values) - 1, 1)
    points = " ".join(
        f"{PAD_LEFT + i * plot_w / n:.1f},{8 + plot_h - v / top * plot_h:.1f}"
        for i, v in enumerate(values)
    )
    parts = [f'<polyline fill="none" stroke="{PALETTE[0]}" stroke-width="2" points="{points}"/>']
    return _frame(title, labels, top, parts, {title: values}, list(values))


def _frame(
    title: str,
    labels: Sequence[str],
    top: float,
    parts: list[str],
    series: Mapping[str, Sequence[float]],
    totals: Sequence[float],
) -> str:
    plot_h = HEIGHT - PAD_BOTTOM - 8
    axis = (
        f'<line x1="{PAD_LEFT}" y1="8" x2="{PAD_LEFT}" y2="{8 + plot_h}" stroke="#4a4a4a"/>'
        f'<line x1="{PAD_LEFT}" y1="{8 + plot_h}" x2="{WIDTH - 4}" y2="{8 + plot_h}" stroke="#4a4a4a"/>'
        f'<text x="{PAD_LEFT - 4}" y="14" text-anchor="end" font-size="11" fill="#1a1a1a">{top:g}</text>'
        f'<text x="{PAD_LEFT - 4}" y="{8 + plot_h}" text-anchor="end" font-size="11" fill="#1a1a1a">0</text>'
    )
    ticks = ""
    if labels:
        for i in (0, len(labels) - 1):
            x = PAD_LEFT + (i + 0.5) * (WIDTH - PAD_LEFT - 4) / len(labels)
            anchor = "start" if i == 0 else "end"
            ticks += (
                f'<text x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}" font-size="11"'
                f' fill="#1a1a1a">{esc(labels[i])}</text>'
            )
    summary = f"{title}: total {sum(totals):g}" + (
        f" from {labels[0]} to {labels[-1]}" if labels else ""
    )
    legend = ""
    if len(series) > 1:
        legend = (
            "<p class=legend>"
            + " ".join(
                f'<span><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10"'
                f' fill="{PALETTE[i % len(PALETTE)]}"/></svg> {esc(name)} ({sum(v):g})</span>'
                for i, (name, v) in enumerate(series.items())
            )
            + "</p>"
        )
    return (
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img"'
        f' aria-label="{esc(summary)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{esc(summary)}</title>{axis}{''.join(parts)}{ticks}</svg>{legend}"
    )

"""Event-time listing periods (pure): replay one subject's evidence for one cause in time order.

A listing is a function of what was seen and of the operator's actions, never of when the
policy happened to run: the replay opens a period at the evidence arrival whose decayed score
reaches ``list_at``, and ends it at the earliest of

- the decay crossing below ``delist_at`` (hysteresis),
- the last evidence + ``max_quiet`` (bounded expiry: the listing ends when the abuse does),
- a stop: a granted removal request (for the periods that existed when it was made) or a
  re-probe that found the relay/proxy closed,

but never before its minimum time. A period opened within ``recidivism_window`` of the end
of the previous one has twice that one's minimum (capped at ``max_listing``). Evaluating at
*now* replays everything up to *now*, so any evaluation schedule gives the same listings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Final

#: Relative tolerance on the listing threshold: a single piece of evidence of weight 1.0
#: reaches a threshold of 1.0 whatever rounding the decay did.
_EPSILON: Final = 1e-9


@dataclass(frozen=True, slots=True)
class Stop:
    """An operator action or a fix that ends the periods open since *applies_to* or earlier."""

    at: float
    applies_to: float  # periods that began at or before this instant end (a request's creation)
    why: str  # "request" or "probe"


@dataclass(frozen=True, slots=True)
class Span:
    """One listing period the evidence made, as of the replay's *now*."""

    since: float
    min_until: float
    until: float  # when it ends (or ended) if nothing new is seen
    first_at: float  # first evidence of the run that made the period, and the last in it
    last_at: float
    count: int  # pieces of evidence from first_at to last_at
    ended_by: str  # "decay", "quiet", "minimum", "request", "probe"; how it ends if it is open
    open: bool  # still in force at *now*


@dataclass(frozen=True, slots=True)
class Rule:
    """The numbers one replay needs (a cause's rule plus the policy-wide recidivism terms)."""

    list_at: float
    delist_at: float
    half_life: float  # seconds
    min_listing: float  # seconds
    max_quiet: float | None  # seconds; None: only decay ends it
    recidivism_window: float
    max_listing: float


def _end(value: float, at: float, last: float, min_until: float, rule: Rule) -> tuple[float, str]:
    """Return when a period ends if nothing new comes after *at* (score *value*), and why."""
    decay = at
    if value > rule.delist_at and rule.delist_at > 0:
        decay = at + rule.half_life * math.log2(value / rule.delist_at)
    elif rule.delist_at <= 0:
        decay = math.inf
    quiet = last + rule.max_quiet if rule.max_quiet is not None else math.inf
    end, why = (quiet, "quiet") if quiet < decay else (decay, "decay")
    if end < min_until:
        return min_until, "minimum"
    return end, why


def _minimum(spans: Sequence[Span], mins: Sequence[float], at: float, rule: Rule) -> float:
    """Return the minimum length of a period opening at *at*: doubled after a recent one."""
    if spans and spans[-1].until >= at - rule.recidivism_window:
        return min(max(rule.min_listing, 2 * mins[-1]), max(rule.max_listing, rule.min_listing))
    return rule.min_listing


#: (at, kind): evidence (0) before a stop (1) at the same instant; C-level, no lambda per item.
_BY_TIME_THEN_KIND: Final = itemgetter(0, 1)
_BY_TIME: Final = itemgetter(0)


def replay(
    events: Sequence[tuple[float, float]],
    rule: Rule,
    now: float,
    stops: Sequence[Stop] = (),
) -> list[Span]:
    """Return every listing period *events* ((observed_at, weight), any order) made up to *now*.

    Evidence after *now* is ignored. Stops end the period open at their time when it began
    no later than their *applies_to*; after a stop only newer evidence counts towards a new
    listing (the score starts again from zero).
    """
    # Evidence sorts before a stop at the same instant: the stop saw it. Without stops (most
    # replays) the evidence is sorted by time alone, in the same stable order.
    merged: Iterable[tuple[float, int, float, Stop | None]]
    if any(s.at <= now for s in stops):
        merged = sorted(
            [(t, 0, w, None) for t, w in events if t <= now]
            + [(s.at, 1, 0.0, s) for s in stops if s.at <= now],
            key=_BY_TIME_THEN_KIND,
        )
    else:
        merged = [(t, 0, w, None) for t, w in sorted(events, key=_BY_TIME) if t <= now]
    spans: list[Span] = []
    mins: list[float] = []
    value = 0.0
    value_at = -math.inf
    cur: list[float] | None = None  # [since, min_until, until, first, last, count]
    stale = False  # cur's until (and why) wait for the score at its last evidence, *last*
    last = 0.0
    why = ""
    threshold = rule.list_at * (1 - _EPSILON)
    faded = rule.list_at / 100  # below this the run of evidence that may list starts again
    run_start, run_count = -math.inf, 0
    half = rule.half_life
    for at, _order, weight, stop in merged:
        # A period ends no sooner than its minimum: before that its end need not be known.
        if cur is not None and at >= cur[1]:
            if stale:
                cur[2], why = _end(last, cur[4], cur[4], cur[1], rule)
                stale = False
            if cur[2] <= at:
                spans.append(Span(cur[0], cur[1], cur[2], cur[3], cur[4], int(cur[5]), why, False))
                mins.append(cur[1] - cur[0])
                cur = None
                run_start = math.nan  # the next run of evidence starts after this period
        if stop is not None:
            if cur is not None and cur[0] <= stop.applies_to:
                spans.append(Span(cur[0], cur[1], at, cur[3], cur[4], int(cur[5]), stop.why, False))
                mins.append(cur[1] - cur[0])
                cur = None
                stale = False
                value, value_at = 0.0, at
            elif cur is None and stop.why == "probe":
                value, value_at = 0.0, at  # the fix makes the old findings moot
            continue
        value = value * 0.5 ** ((at - value_at) / half) if value else 0.0
        if value < faded or math.isnan(run_start):  # NaN: a period ended since
            run_start, run_count = at, 0
        value += weight
        value_at = at
        run_count += 1
        if cur is not None:
            cur[4] = at
            cur[5] += 1
            last, stale = value, True
        elif value >= threshold and weight > 0:
            min_until = at + _minimum(spans, mins, at, rule)
            until, why = _end(value, at, at, min_until, rule)
            cur = [at, min_until, until, run_start, at, float(run_count)]
    if cur is not None:
        if stale:
            cur[2], why = _end(last, cur[4], cur[4], cur[1], rule)
        is_open = cur[2] > now
        spans.append(Span(cur[0], cur[1], cur[2], cur[3], cur[4], int(cur[5]), why, is_open))
    return spans

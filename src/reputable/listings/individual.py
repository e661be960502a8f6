"""Individual listings in event time: replay each (target, cause) and keep the period in force.

The inputs are gathered by the engine (listings/engine.py); everything here is a function of
the evidence rows, the stops (granted removals, re-probes that found a fix), the allowlist,
the config and *now*.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from reputable.core.cause import Cause
from reputable.listings.allowlist import Allowlist
from reputable.listings.policy import Decision, Period, PolicyParams
from reputable.listings.reason import evidence_reason
from reputable.listings.timeline import Rule, Span, Stop, replay
from reputable.reputation.scoring import CauseScore, ReputationParams

#: (target, cause text, observed_at, weight), as the store yields evidence.
Row = tuple[str, str, float, float]
#: Which probe's "closed" finding ends which cause.
PROBE_ENDS: dict[str, Cause] = {"relay": Cause.OPEN_RELAY, "proxy": Cause.OPEN_PROXY}

Key = tuple[str, Cause]


def rule_of(cause: Cause, policy: PolicyParams, rep: ReputationParams) -> Rule:
    """Return the replay numbers of *cause* under *policy*."""
    rule = policy.rules[cause]
    quiet = policy.max_quiet.get(cause)
    return Rule(
        list_at=rule.list_at,
        delist_at=rule.delist_at,
        half_life=rep.seconds(cause),
        min_listing=rule.min_listing.total_seconds(),
        max_quiet=quiet.total_seconds() if quiet is not None else None,
        recidivism_window=policy.recidivism_window.total_seconds(),
        max_listing=policy.max_listing.total_seconds(),
    )


@dataclass(slots=True)
class Individual:
    """The outcome of the individual decisions of one evaluation."""

    decided: dict[Key, Decision] = field(default_factory=dict)
    spans: dict[Key, list[Span]] = field(default_factory=dict)
    new_periods: list[tuple[str, Cause, Period]] = field(default_factory=list)
    period_updates: list[tuple[str, Cause, float, float, str | None]] = field(default_factory=list)


def replay_all(
    scores: Mapping[str, Mapping[Cause, CauseScore]],
    stops: Mapping[str, Sequence[Stop]],
    closures: Mapping[str, Sequence[tuple[float, str]]],
    policy: PolicyParams,
    rep: ReputationParams,
    now: float,
) -> dict[Key, list[Span]]:
    """Replay every (target, cause) whose undecayed total could reach ``list_at``.

    *scores* come from :func:`~reputable.reputation.scoring.accumulate_events` (events kept).
    """
    rules: dict[Cause, Rule] = {}
    thresholds = {c: r.list_at * (1 - 1e-9) for c, r in policy.rules.items()}
    out: dict[Key, list[Span]] = {}
    for target, by_cause in scores.items():
        for cause, score in by_cause.items():
            if cause not in thresholds or score.total < thresholds[cause] or not score.events:
                continue
            rule = rules.get(cause)
            if rule is None:
                rule = rules[cause] = rule_of(cause, policy, rep)
            # A fix found by a probe comes first: at the same instant it is the better reason.
            mine = [
                Stop(at, at, "probe")
                for at, kind in closures.get(target, ())
                if PROBE_ENDS.get(kind) is cause
            ]
            mine += stops.get(target, ())
            spans = replay(score.events, rule, now, mine)
            if spans:
                out[(target, cause)] = spans
    return out


def decide_individual(
    chosen: Collection[str],
    spans: Mapping[Key, list[Span]],
    periods: Mapping[Key, list[Period]],
    allow: Allowlist,
    now: float,
) -> Individual:
    """Return the listing in force per (target, cause) and the period rows to write.

    Reasons are left empty: the engine fills them in for new or moved listings only.
    """
    result = Individual(spans={k: v for k, v in spans.items() if k[0] in chosen})
    covered: dict[str, bool] = {}
    for key in set(result.spans) | {k for k in periods if k[0] in chosen}:
        target, cause = key
        mine = result.spans.get(key, [])
        if target not in covered:
            covered[target] = allow.covers(target)
        last = mine[-1] if mine else None
        if last is not None and last.open and not covered[target]:
            result.decided[key] = Decision(
                target, cause, last.since, last.min_until, last.until, ""
            )
        _period_rows(key, mine, periods.get(key, []), covered[target], now, result)
    return result


def _period_rows(
    key: Key,
    spans: Sequence[Span],
    stored: Sequence[Period],
    covered: bool,
    now: float,
    out: Individual,
) -> None:
    """Diff the replayed periods of *key* against the stored ones (the audit record)."""
    target, cause = key
    by_start = {round(p.listed_at): p for p in stored}
    seen: set[int] = set()
    for span in spans:
        start = round(span.since)
        seen.add(start)
        ended_by: str | None = None if span.open else span.ended_by
        ends_at = span.until
        if span.open and covered:
            ended_by, ends_at = "allowlist", now
        old = by_start.get(start)
        if old is None:
            out.new_periods.append(
                (target, cause, Period(span.since, span.min_until, ends_at, ended_by))
            )
        elif abs(old.ends_at - ends_at) >= 1 or old.ended_by != ended_by:
            out.period_updates.append((target, cause, old.listed_at, ends_at, ended_by))
    for start, old in by_start.items():
        if start not in seen and old.ended_by is None and old.ends_at > now:
            out.period_updates.append((target, cause, old.listed_at, now, "replaced"))


def with_reasons(
    decided: dict[Key, Decision],
    spans: Mapping[Key, list[Span]],
    labels: Iterable[tuple[str, str, float, str]],
) -> dict[Key, Decision]:
    """Return *decided* with reasons counting the evidence of each period by detector or source."""
    # Keyed by the cause's text as the store yields it: no enum lookup per evidence row. The
    # labels of a window are listed, then counted at once (Counter's C loop), not one
    # ``+= 1`` (and a __missing__ call per new label) per row.
    windows: dict[tuple[str, str], tuple[float, float, list[str]]] = {}
    for key in decided:
        span = spans[key][-1]
        windows[(key[0], key[1].value)] = (span.first_at, span.last_at, [])
    get = windows.get
    for target, cause_text, at, label in labels:
        window = get((target, cause_text))
        if window is not None and window[0] <= at <= window[1]:
            window[2].append(label)
    out: dict[Key, Decision] = {}
    for key, d in decided.items():
        first, last, seen = windows[(key[0], key[1].value)]
        out[key] = Decision(
            d.target,
            d.cause,
            d.listed_at,
            d.min_until,
            d.expires_at,
            evidence_reason(d.cause, Counter(seen), first, last),
        )
    return out

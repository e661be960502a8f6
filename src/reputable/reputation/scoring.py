"""Decayed scores (pure): every piece of evidence halves in weight every half-life of its cause."""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

from reputable.core.cause import Cause

#: (target, cause, observed_at epoch seconds, weight), as the store yields evidence.
EvidenceRow = tuple[str, str, float, float]

DEFAULT_HALF_LIFE: Final[dict[Cause, timedelta]] = {
    Cause.SPAM: timedelta(days=2),
    Cause.HARVEST: timedelta(days=3),
    Cause.COMPROMISED: timedelta(days=2),
    Cause.OPEN_RELAY: timedelta(days=7),
    Cause.OPEN_PROXY: timedelta(days=7),
    Cause.MALWARE_HOST: timedelta(days=3),
    Cause.RDNS: timedelta(days=30),
    Cause.NETWORK: timedelta(days=7),
    Cause.MANUAL: timedelta(days=30),
    Cause.CLEAN: timedelta(days=14),
}


#: Badness (:func:`badness`) from which bad evidence counts as still in its window: 1 % of a
#: listing threshold, e.g. one complaint (1.0 of spam's 2.5) for about 2 weeks at 2 days' half-life.
BAD_FLOOR: Final = 0.01


class Bucket(enum.StrEnum):
    """A reputation in one word; an address with no history is unknown, never good."""

    UNKNOWN = "unknown"
    GOOD = "good"
    NEUTRAL = "neutral"
    POOR = "poor"
    BAD = "bad"


@dataclass(frozen=True, slots=True)
class ReputationParams:
    """Half-life per cause (how fast evidence is forgotten)."""

    half_life: Mapping[Cause, timedelta] = field(default_factory=lambda: dict(DEFAULT_HALF_LIFE))

    def seconds(self, cause: Cause) -> float:
        """Return the half-life of *cause* in seconds."""
        return self.half_life[cause].total_seconds()


@dataclass(slots=True)
class CauseScore:
    """The decayed weight of one subject's evidence for one cause, at one time."""

    value: float = 0.0
    count: int = 0
    first_at: float = math.inf
    last_at: float = -math.inf
    total: float = 0.0  # undecayed sum of the weights: no replay can score higher
    events: list[tuple[float, float]] | None = None  # (observed_at, weight), when kept


def decayed(weight: float, age: timedelta, half_life: timedelta) -> float:
    """Weight of one piece of evidence after *age*, halving every *half_life*."""
    return float(weight * 0.5 ** (age / half_life))


def accumulate(
    rows: Iterable[EvidenceRow], params: ReputationParams, now: float
) -> dict[str, dict[Cause, CauseScore]]:
    """Return decayed scores per target and cause at *now*; evidence after *now* is ignored."""
    # The hot loop of a full evaluation (one pass per evidence row, bench/policy_scale.py):
    # local names, one dict probe per level, no min()/max() calls.
    halves = {c.value: (c, params.seconds(c)) for c in Cause}
    out: dict[str, dict[Cause, CauseScore]] = {}
    get_target = out.get
    for target, cause_text, observed_at, weight in rows:
        if observed_at > now:
            continue
        cause, half = halves[cause_text]
        by_cause = get_target(target)
        if by_cause is None:
            by_cause = out[target] = {}
        value = weight * 0.5 ** ((now - observed_at) / half)
        score = by_cause.get(cause)
        if score is None:
            by_cause[cause] = CauseScore(0.0 + value, 1, observed_at, observed_at, weight)
            continue
        score.value += value
        score.count += 1
        score.total += weight
        if observed_at < score.first_at:  # noqa: PLR1730  # cheaper than min() in this loop
            score.first_at = observed_at
        if observed_at > score.last_at:  # noqa: PLR1730  # cheaper than max() in this loop
            score.last_at = observed_at
    return out


def accumulate_events(
    rows: Iterable[EvidenceRow], params: ReputationParams, now: float
) -> dict[str, dict[Cause, CauseScore]]:
    """Return :func:`accumulate` with each score's (observed_at, weight) events kept.

    The policy engine replays the events of the (target, cause) pairs that may list
    (listings/timeline.py); keeping them here spares a second pass over every row.
    """
    halves = {c.value: (c, params.seconds(c)) for c in Cause}
    out: dict[str, dict[Cause, CauseScore]] = {}
    get_target = out.get
    for target, cause_text, observed_at, weight in rows:
        if observed_at > now:
            continue
        cause, half = halves[cause_text]
        by_cause = get_target(target)
        if by_cause is None:
            by_cause = out[target] = {}
        value = weight * 0.5 ** ((now - observed_at) / half)
        score = by_cause.get(cause)
        if score is None:
            by_cause[cause] = CauseScore(
                0.0 + value, 1, observed_at, observed_at, weight, [(observed_at, weight)]
            )
            continue
        score.value += value
        score.count += 1
        score.total += weight
        score.events.append((observed_at, weight))  # type: ignore[union-attr]  # always set here
        if observed_at < score.first_at:  # noqa: PLR1730  # cheaper than min() in this loop
            score.first_at = observed_at
        if observed_at > score.last_at:  # noqa: PLR1730  # cheaper than max() in this loop
            score.last_at = observed_at
    return out


def crossing_time(value: float, threshold: float, half_life: float, now: float) -> float:
    """Return when *value* decaying from *now* falls to *threshold* (now if already below)."""
    if value <= threshold or threshold <= 0:
        return now
    return now + half_life * math.log2(value / threshold)


def badness(scores: Mapping[Cause, CauseScore], list_at: Mapping[Cause, float]) -> float:
    """Return the sum over listing causes of score / listing threshold (1.0 = at a threshold)."""
    return sum(
        s.value / list_at[c]
        for c, s in scores.items()
        if c.lists and c in list_at and list_at[c] > 0
    )


def reputation(
    scores: Mapping[Cause, CauseScore], list_at: Mapping[Cause, float]
) -> tuple[int, Bucket]:
    """Return the 0-100 reputation (100 best) and its bucket.

    ``score = 100 * (1 + good) / (1 + good + 3 * bad)`` where *bad* is :func:`badness` and
    *good* the decayed weight of ``clean`` evidence. No evidence at all is 50/unknown; good
    needs positive evidence, so silence alone never earns it. Bad evidence still in its
    window (*bad* of at least :data:`BAD_FLOOR`) keeps the score below unknown's 50, whatever
    clean evidence says: unknown stays below clean, bad below unknown.
    """
    if not scores:
        return 50, Bucket.UNKNOWN
    bad = badness(scores, list_at)
    good = scores[Cause.CLEAN].value if Cause.CLEAN in scores else 0.0
    value = round(100 * (1 + good) / (1 + good + 3 * bad))
    if bad >= BAD_FLOOR:
        value = min(value, 49)
    if value < 25:
        return value, Bucket.BAD
    if value < 50:
        return value, Bucket.POOR
    if value >= 80 and good >= 1.0 and bad < 0.1:
        return value, Bucket.GOOD
    return value, Bucket.NEUTRAL

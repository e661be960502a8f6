"""Decayed scores and the 0-100 reputation."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from reputable.core.cause import Cause
from reputable.reputation.scoring import (
    Bucket,
    CauseScore,
    ReputationParams,
    accumulate,
    crossing_time,
    decayed,
    reputation,
)

DAY = 86400.0
THRESHOLDS = {Cause.SPAM: 3.0, Cause.HARVEST: 3.0}


def test_weight_halves_every_half_life() -> None:
    """One half-life halves the weight; two quarter it."""
    assert decayed(8.0, timedelta(days=2), timedelta(days=2)) == 4.0
    assert decayed(8.0, timedelta(days=4), timedelta(days=2)) == 2.0


def test_future_evidence_is_ignored() -> None:
    """Evidence observed after the evaluation time does not count (replays)."""
    rows = [("a", "spam", 100.0, 1.0), ("a", "spam", 200.0, 1.0)]
    scores = accumulate(rows, ReputationParams(), now=150.0)
    assert scores["a"][Cause.SPAM].count == 1


def test_crossing_time_inverts_decay() -> None:
    """The predicted crossing is when the decayed score equals the threshold."""
    half = 2 * DAY
    t = crossing_time(4.0, 1.0, half, now=0.0)
    assert t == 2 * half
    assert crossing_time(0.5, 1.0, half, now=7.0) == 7.0


@given(
    st.lists(st.tuples(st.floats(0, 10 * DAY), st.floats(0.1, 10)), min_size=1, max_size=20),
    st.floats(0, 30 * DAY),
)
def test_score_never_rises_without_new_evidence(
    events: list[tuple[float, float]], wait: float
) -> None:
    """Without new evidence a score only decays."""
    rows = [("a", "spam", t, w) for t, w in events]
    now = 10 * DAY
    early = accumulate(rows, ReputationParams(), now)["a"][Cause.SPAM].value
    late = accumulate(rows, ReputationParams(), now + wait)["a"][Cause.SPAM].value
    assert late <= early * (1 + 1e-9)


def test_buckets() -> None:
    """No history is unknown; positive evidence earns good; bad evidence poor or bad."""
    assert reputation({}, THRESHOLDS) == (50, Bucket.UNKNOWN)
    assert reputation({Cause.CLEAN: CauseScore(value=5.0, count=5)}, THRESHOLDS)[1] is Bucket.GOOD
    assert (
        reputation({Cause.CLEAN: CauseScore(value=0.2, count=1)}, THRESHOLDS)[1] is Bucket.NEUTRAL
    )
    assert reputation({Cause.SPAM: CauseScore(value=2.0, count=2)}, THRESHOLDS)[1] is Bucket.POOR
    assert reputation({Cause.SPAM: CauseScore(value=6.0, count=6)}, THRESHOLDS)[1] is Bucket.BAD


def test_list_server_with_some_unknown_recipients_is_poor_not_bad() -> None:
    """A fifth of a threshold of harvest evidence puts a clean sender below unknown, not in bad."""
    score, bucket = reputation(
        {
            Cause.HARVEST: CauseScore(value=1.0, count=3),
            Cause.CLEAN: CauseScore(value=3.0, count=30),
        },
        THRESHOLDS,
    )
    assert 25 <= score < 50 and bucket is Bucket.POOR


@given(
    st.sampled_from([c for c in Cause if c.lists and c in THRESHOLDS]),
    st.floats(min_value=0.05, max_value=100),
    st.floats(min_value=0, max_value=1000),
)
def test_property_unknown_stays_below_clean(cause: Cause, bad: float, clean: float) -> None:
    """Any bad evidence in its window scores below no evidence at all, whatever clean evidence says."""
    scores = {cause: CauseScore(value=bad, count=1), Cause.CLEAN: CauseScore(value=clean, count=1)}
    assert reputation(scores, THRESHOLDS)[0] < reputation({}, THRESHOLDS)[0]

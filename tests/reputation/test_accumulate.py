"""accumulate, the hot loop of a full evaluation, against its plain definition."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from reputable.core.cause import Cause
from reputable.reputation.scoring import CauseScore, ReputationParams, accumulate

NOW = 1_796_000_000.0


def reference(
    rows: list[tuple[str, str, float, float]], params: ReputationParams, now: float
) -> dict[str, dict[Cause, CauseScore]]:
    """Sum every row's decayed weight per target and cause, the obvious way."""
    out: dict[str, dict[Cause, CauseScore]] = {}
    for target, cause_text, observed_at, weight in rows:
        if observed_at > now:
            continue
        cause = Cause(cause_text)
        score = out.setdefault(target, {}).setdefault(cause, CauseScore())
        score.value += weight * 0.5 ** ((now - observed_at) / params.seconds(cause))
        score.count += 1
        score.total += weight
        score.first_at = min(score.first_at, observed_at)
        score.last_at = max(score.last_at, observed_at)
    return out


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["192.0.2.1", "192.0.2.2", "2001:db8::/64", "a.example"]),
            st.sampled_from([c.value for c in Cause]),
            st.floats(min_value=NOW - 90 * 86400, max_value=NOW + 3600),
            st.floats(min_value=0.001, max_value=1000),
        ),
        max_size=40,
    )
)
def test_property_accumulate_matches_definition(rows: list[tuple[str, str, float, float]]) -> None:
    """Scores, counts and first/last times equal the plain per-row sum, bit for bit."""
    params = ReputationParams()
    assert accumulate(rows, params, NOW) == reference(rows, params, NOW)


def test_future_evidence_is_ignored_and_empty_is_empty() -> None:
    """Evidence after now does not count; no rows give no scores."""
    params = ReputationParams()
    assert accumulate([("192.0.2.1", "spam", NOW + 1, 1.0)], params, NOW) == {}
    assert accumulate([], params, NOW) == {}
    (score,) = accumulate([("192.0.2.1", "spam", NOW, 2.0)], params, NOW)["192.0.2.1"].values()
    assert math.isclose(score.value, 2.0) and score.count == 1

"""Listings follow event time: they depend on what was seen, never on when the policy ran."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reputable.config import DEFAULT_TOML, Config, parse_config
from reputable.core.address import Domain, parse_address
from reputable.core.cause import Cause
from reputable.evidence.model import Evidence
from reputable.listings.engine import evaluate, evaluate_new
from reputable.listings.explain import explain
from reputable.listings.timeline import Rule, Stop, replay
from reputable.store.dsn import open_dsn
from reputable.store.sqlite import SQLiteStore

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
HOUR = 3600

#: (host, cause, weight, observed hour, hours late)
Event = tuple[int, Cause, float, int, int]

events_strategy = st.lists(
    st.tuples(
        st.integers(1, 8),
        st.sampled_from([Cause.SPAM, Cause.COMPROMISED, Cause.OPEN_RELAY, Cause.MALWARE_HOST]),
        st.sampled_from([0.5, 1.0, 2.0]),
        st.integers(0, 24 * 40),
        st.integers(0, 24 * 10),
    ),
    max_size=30,
)


#: Denser streams over ten days: enough listed neighbours for escalations, enough bad sites
#: for a shared-hosting listing.
dense_strategy = st.lists(
    st.tuples(
        st.integers(1, 8),
        st.sampled_from([Cause.SPAM, Cause.COMPROMISED, Cause.MALWARE_HOST]),
        st.sampled_from([1.0, 2.0, 3.0]),
        st.integers(0, 24 * 10),
        st.integers(0, 48),
    ),
    min_size=10,
    max_size=40,
)


#: Dense streams with positive evidence: clean hosts among listed neighbours are carved out
#: of the escalation, and an incremental run sees clean-only arrivals (engine.evaluate_new).
clean_strategy = st.lists(
    st.tuples(
        st.integers(1, 8),
        st.sampled_from([Cause.SPAM, Cause.COMPROMISED, Cause.CLEAN, Cause.CLEAN]),
        st.sampled_from([1.0, 2.0, 3.0]),
        st.integers(0, 24 * 10),
        st.integers(0, 48),
    ),
    min_size=10,
    max_size=40,
)


def _evidence(index: int, event: Event) -> Evidence:
    host, cause, weight, hour, _ = event
    site = f"site{host % 3}.example" if cause is Cause.MALWARE_HOST and host > 4 else None
    return Evidence(
        subject=parse_address(f"198.51.100.{50 if site else host}"),
        cause=cause,
        source="traps" if cause is Cause.SPAM else "test",
        observed_at=T0 + timedelta(hours=hour, seconds=index),
        weight=weight,
        related_domain=Domain(site) if site else None,
        detail={"i": index},
    )


def _arrival(event: Event) -> int:
    return event[3] + event[4]


def _listings(store: SQLiteStore, at: datetime) -> set[tuple[str, str, str, float, float, str]]:
    return {
        (
            x.subject_text,
            x.cause.value,
            x.source,
            x.listed_at.timestamp(),
            x.expires_at.timestamp() if x.expires_at else 0.0,
            x.reason,
        )
        for x in store.listings(active_at=at)
    }


def _compare(
    folder: Path, events: list[Event], schedule: list[int], final: int, rnd: random.Random
) -> None:
    """Assert that stepping through *schedule* gives the listings of one evaluation at *final*."""
    config = parse_config(DEFAULT_TOML, folder / "reputable.toml")
    # Small thresholds so that network escalations and shared-hosting listings happen too.
    config = replace(config, policy=replace(config.policy, escalate_v4=3, hosting_domains=2))
    # SQLite only: a fresh store per Hypothesis example (PostgreSQL runs the same engine and
    # store calls in tests/listings/test_engine.py, on the shared store fixture).
    stepped, once = SQLiteStore(folder / "a.db"), SQLiteStore(folder / "b.db")
    for store in (stepped, once):
        store.add_hosting([("198.51.100.50", f"site{k}.example") for k in range(3)])
    items = [(_arrival(e), _evidence(i, e)) for i, e in enumerate(events)]
    stored: set[int] = set()
    for hour in sorted(h for h in schedule if h <= final):
        due = [i for i, (arrives, _) in enumerate(items) if arrives <= hour and i not in stored]
        stepped.add_evidence(items[i][1] for i in due)
        stored.update(due)
        at = T0 + timedelta(hours=hour)
        if rnd.random() < 0.5:
            evaluate_new(stepped, config.policy, config.reputation, at)
        else:
            evaluate(stepped, config.policy, config.reputation, at)
    end = T0 + timedelta(hours=final)
    stepped.add_evidence(
        e for i, (arrives, e) in enumerate(items) if arrives <= final and i not in stored
    )
    evaluate_new(stepped, config.policy, config.reputation, end)
    once.add_evidence(e for arrives, e in items if arrives <= final)
    evaluate(once, config.policy, config.reputation, end)
    assert _listings(stepped, end) == _listings(once, end)
    stepped.close()
    once.close()


@pytest.mark.slow
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    events_strategy,
    st.lists(st.integers(0, 24 * 50), max_size=8),
    st.integers(24 * 20, 24 * 55),
    st.randoms(use_true_random=False),
)
def test_listings_at_t_equal_one_evaluation_at_t(
    tmp_path_factory: pytest.TempPathFactory,
    events: list[Event],
    schedule: list[int],
    final: int,
    rnd: random.Random,
) -> None:
    """For any evidence stream and evaluation schedule, the listings at T equal one evaluation at T."""
    _compare(tmp_path_factory.mktemp("event"), events, schedule, final, rnd)


@pytest.mark.slow
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    dense_strategy,
    st.lists(st.integers(0, 24 * 12), max_size=10),
    st.integers(24 * 2, 24 * 14),
    st.randoms(use_true_random=False),
)
def test_escalations_and_hosting_follow_event_time(
    tmp_path_factory: pytest.TempPathFactory,
    events: list[Event],
    schedule: list[int],
    final: int,
    rnd: random.Random,
) -> None:
    """Network escalations and shared-hosting listings, too, do not depend on the schedule."""
    _compare(tmp_path_factory.mktemp("dense"), events, schedule, final, rnd)


@pytest.mark.slow
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    clean_strategy,
    st.lists(st.integers(0, 24 * 12), max_size=10),
    st.integers(24 * 2, 24 * 14),
    st.randoms(use_true_random=False),
)
def test_carve_outs_follow_event_time(
    tmp_path_factory: pytest.TempPathFactory,
    events: list[Event],
    schedule: list[int],
    final: int,
    rnd: random.Random,
) -> None:
    """Clean evidence arriving alone re-decides its network's carve-outs, whatever the schedule."""
    _compare(tmp_path_factory.mktemp("clean"), events, schedule, final, rnd)


def _rule(**kw: float | None) -> Rule:
    base: dict[str, float | None] = {
        "list_at": 2.5,
        "delist_at": 1.0,
        "half_life": 2 * 86400.0,
        "min_listing": 86400.0,
        "max_quiet": 7 * 86400.0,
        "recidivism_window": 90 * 86400.0,
        "max_listing": 180 * 86400.0,
    }
    base.update(kw)
    return Rule(**base)  # type: ignore[arg-type]


def test_listing_starts_at_the_arrival_that_reaches_the_threshold() -> None:
    """The period starts at the third hit, whenever the replay runs."""
    events = [(0.0, 1.0), (HOUR, 1.0), (2 * HOUR, 1.0)]
    early = replay(events, _rule(), now=2 * HOUR)
    late = replay(events, _rule(), now=30 * HOUR)
    assert early[0].since == late[0].since == 2 * HOUR
    assert early[0].until == late[0].until


def test_quiet_time_bounds_a_heavy_listing() -> None:
    """A score far above the threshold still ends max_quiet after the last evidence."""
    events = [(i * 60.0, 1.0) for i in range(200)]
    (span,) = replay(events, _rule(), now=60 * 86400.0)
    assert span.ended_by == "quiet"
    assert span.until == 199 * 60.0 + 7 * 86400.0
    assert not span.open


def test_stop_ends_only_periods_that_existed_when_asked() -> None:
    """A removal decided later ends the period open when it was asked, not a newer one."""
    events = [(0.0, 3.0), (10 * 86400.0, 3.0)]
    asked = Stop(at=12 * 86400.0, applies_to=86400.0, why="request")
    spans = replay(events, _rule(), now=13 * 86400.0, stops=[asked])
    assert [s.open for s in spans] == [False, True]
    probe = Stop(at=12 * 86400.0, applies_to=12 * 86400.0, why="probe")
    spans = replay(events, _rule(), now=13 * 86400.0, stops=[probe])
    assert spans[-1].ended_by == "probe" and spans[-1].until == 12 * 86400.0


def test_old_logs_ingested_today_are_already_expired(tmp_path: Path, store_dsn: str) -> None:
    """Last month's spam ingested today made a listing that has already ended."""
    config: Config = parse_config(DEFAULT_TOML, tmp_path / "reputable.toml")
    store = open_dsn(store_dsn)
    store.add_evidence(
        Evidence(
            subject=parse_address("198.51.100.9"),
            cause=Cause.SPAM,
            source="traps",
            observed_at=T0 + timedelta(minutes=i),
            detail={"i": i},
        )
        for i in range(10)
    )
    today = T0 + timedelta(days=30)
    evaluate(store, config.policy, config.reputation, today)
    assert list(store.listings(active_at=today)) == []
    periods = store.periods(["198.51.100.9"])[("198.51.100.9", Cause.SPAM)]
    assert [(p.listed_at, p.ended_by) for p in periods] == [
        ((T0 + timedelta(minutes=2)).timestamp(), "decay")
    ]
    why = explain(store, config, "198.51.100.9", T0 + timedelta(days=1))
    assert not why.listed  # nothing was written for the past; the history shows the period

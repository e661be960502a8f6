"""Listing policy decisions (pure): thresholds, hysteresis, minimum time, recidivism, escalation."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reputable.core.cause import Cause
from reputable.listings.policy import (
    CauseRule,
    Period,
    PolicyParams,
    _cut,
    decide,
    escalate,
    hosting_decision,
    network_of,
    required_duration,
)
from reputable.reputation.scoring import CauseScore

DAY = 86400.0
HALF = 2 * DAY
RULE = CauseRule(3.0, 1.0, timedelta(days=1))
PARAMS = PolicyParams()


def score(value: float, last: float = 0.0) -> CauseScore:
    """A score of *value* last fed at *last*."""
    return CauseScore(value=value, count=int(value) or 1, first_at=0.0, last_at=last)


def run(
    value: float,
    *,
    current: Period | None = None,
    history: list[Period] | None = None,
    now: float = 0.0,
    relist_after: float | None = None,
    last: float = 0.0,
) -> object:
    """Call decide with the test rule."""
    return decide(
        "198.51.100.7",
        Cause.SPAM,
        score(value, last),
        half_life=HALF,
        rule=RULE,
        current=current,
        history=history or [],
        relist_after=relist_after,
        params=PARAMS,
        now=now,
    )


def test_lists_at_threshold_not_below() -> None:
    """A score exactly at the threshold lists; just under does not."""
    assert run(3.0) is not None
    assert run(2.99) is None


def test_expiry_is_when_score_falls_below_delist() -> None:
    """A new listing lasts until its score decays below the delisting threshold."""
    decision = run(4.0)
    assert decision.expires_at == pytest.approx(2 * HALF)  # type: ignore[attr-defined]


def test_hysteresis_keeps_listing_between_thresholds() -> None:
    """Listed, a score between delist and list keeps the listing; unlisted, it does not list."""
    current = Period(listed_at=-DAY, min_until=0.0, ends_at=DAY * 3)
    assert run(2.0, current=current) is not None
    assert run(2.0) is None
    assert run(0.9, current=current) is None


def test_minimum_listing_time() -> None:
    """A listing stays at least its minimum time even if the score collapses."""
    decision = run(3.0)
    assert decision.min_until == DAY  # type: ignore[attr-defined]
    current = Period(listed_at=0.0, min_until=DAY, ends_at=DAY)
    kept = run(0.1, current=current, now=DAY / 2)
    assert kept is not None and kept.expires_at == DAY  # type: ignore[attr-defined]


def test_recidivism_doubles_and_caps() -> None:
    """Each re-listing within the look-back lasts at least twice the previous one, capped."""
    first = Period(listed_at=0.0, min_until=DAY, ends_at=3 * DAY, ended_by="decay")
    assert required_duration(RULE, [first], PARAMS, now=10 * DAY) == 6 * DAY
    long = Period(listed_at=0.0, min_until=DAY, ends_at=150 * DAY, ended_by="decay")
    assert required_duration(RULE, [long], PARAMS, now=160 * DAY) == 180 * DAY
    old = Period(listed_at=0.0, min_until=DAY, ends_at=3 * DAY, ended_by="decay")
    assert required_duration(RULE, [old], PARAMS, now=200 * DAY) == DAY


def test_removal_needs_new_evidence_to_relist() -> None:
    """After a granted removal only evidence newer than it can list again."""
    assert run(5.0, relist_after=100.0, last=50.0, now=200.0) is None
    assert run(5.0, relist_after=100.0, last=150.0, now=200.0) is not None


def test_escalation_at_k_minus_one_and_k() -> None:
    """K-1 listed members do not escalate the /24; K do, sparing good members."""
    members = {f"198.51.100.{i}": 10 * DAY + i for i in range(1, 8)}
    assert escalate("198.51.100.0/24", members, [], threshold=8, now=0.0) is None
    members["198.51.100.8"] = 10 * DAY + 8
    result = escalate("198.51.100.0/24", members, ["198.51.100.25"], threshold=8, now=0.0)
    assert result is not None
    assert "198.51.100.25/32" not in result.cidrs
    assert len(result.cidrs) == 8  # a /24 minus one address is eight CIDRs
    assert result.expires_at == 10 * DAY + 1  # until fewer than K remain
    assert "198.51.100.25" in result.reason


def test_escalation_ignores_expired_members() -> None:
    """Members whose listing has expired do not count."""
    members = {f"198.51.100.{i}": (10 * DAY if i < 8 else -1.0) for i in range(1, 9)}
    assert escalate("198.51.100.0/24", members, [], threshold=8, now=0.0) is None


def test_network_of() -> None:
    """Addresses escalate to their /24, IPv6 /64s to their /48; domains have none."""
    assert network_of("198.51.100.7") == "198.51.100.0/24"
    assert network_of("2001:db8:1:5::/64") == "2001:db8:1::/48"
    assert network_of("evil.example") is None


def test_hosting_needs_n_domains() -> None:
    """One listed domain on a shared IP spares the IP; two list it with the common cause."""
    one = {"a.example": (Cause.MALWARE_HOST, 5 * DAY)}
    assert hosting_decision("203.0.113.5", one, threshold=2, now=0.0) is None
    two = {**one, "b.example": (Cause.MALWARE_HOST, 3 * DAY)}
    decision = hosting_decision("203.0.113.5", two, threshold=2, now=0.0)
    assert decision is not None and decision.cause is Cause.MALWARE_HOST
    assert decision.expires_at == 3 * DAY
    assert "a.example, b.example" in decision.reason


@given(
    st.integers(0, 2**24 - 1),
    st.lists(st.tuples(st.integers(0, 255), st.sampled_from([32, 31, 30, 28, 26])), max_size=5),
)
def test_cut_matches_address_exclude(base: int, specs: list[tuple[int, int]]) -> None:
    """Cutting holes out of a /24 gives exactly what ipaddress's address_exclude gives."""
    net = ipaddress.ip_network((base << 8, 24))
    holes = sorted(
        {
            ipaddress.ip_network((int(net.network_address) + host, plen), strict=False)
            for host, plen in specs
        },
        key=lambda n: int(n.network_address),
    )
    remaining = [net]
    for hole in holes:
        remaining = [
            part
            for block in remaining
            for part in (
                block.address_exclude(hole)
                if hole.subnet_of(block)
                else ([] if block.subnet_of(hole) else [block])
            )
        ]
    expected = [str(b) for b in sorted(remaining, key=lambda n: int(n.network_address))]
    assert _cut(net, holes) == expected

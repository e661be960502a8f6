"""The policy engine over a real SQLite store, with time passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import IPv6Address

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reputable.config import DEFAULT_TOML, Config, parse_config
from reputable.core.address import Domain, parse_address, parse_subject
from reputable.core.cause import Cause
from reputable.core.errors import ListingRefused
from reputable.evidence.model import Evidence
from reputable.listings.delisting import decide_request, request_removal
from reputable.listings.engine import evaluate, evaluate_new
from reputable.listings.explain import explain
from reputable.listings.model import AllowEntry, Batch
from reputable.store.sqlite import SQLiteStore

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def add(
    store: SQLiteStore,
    subject: str,
    cause: Cause,
    n: int = 1,
    *,
    at: datetime = T0,
    domain: str | None = None,
    source: str = "test",
) -> None:
    """Store *n* distinct pieces of evidence about *subject*."""
    store.add_evidence(
        Evidence(
            subject=parse_address(subject)
            if subject[0].isdigit() or ":" in subject
            else Domain(subject),
            cause=cause,
            source=source,
            observed_at=at + timedelta(seconds=i),
            related_domain=Domain(domain) if domain else None,
            detail={"i": i},
        )
        for i in range(n)
    )


def active(store: SQLiteStore, at: datetime) -> dict[str, set[str]]:
    """Return active listings as subject -> causes."""
    out: dict[str, set[str]] = {}
    for item in store.listings(active_at=at):
        out.setdefault(item.subject_text, set()).add(item.cause.value)
    return out


def run(store: SQLiteStore, config: Config, at: datetime) -> object:
    """Evaluate everything at *at*."""
    return evaluate(store, config.policy, config.reputation, at)


def test_threshold_lists_and_decay_delists(store: SQLiteStore, config: Config) -> None:
    """Three spam hits list an IP; without new evidence it is delisted once the score decays."""
    add(store, "198.51.100.7", Cause.SPAM, 2)
    run(store, config, T0 + timedelta(minutes=1))
    assert active(store, T0 + timedelta(minutes=1)) == {}
    add(store, "198.51.100.7", Cause.SPAM, 1, at=T0 + timedelta(minutes=2))
    run(store, config, T0 + timedelta(minutes=3))
    assert active(store, T0 + timedelta(minutes=3)) == {"198.51.100.7": {"spam"}}
    # Score 3 decays below 1 after log2(3) half-lives (~3.2 days at 2 days each).
    assert active(store, T0 + timedelta(days=3)) == {"198.51.100.7": {"spam"}}
    assert active(store, T0 + timedelta(days=3, hours=12)) == {}


def test_evaluation_is_idempotent(store: SQLiteStore, config: Config) -> None:
    """Evaluating twice at the same time changes nothing the second time."""
    add(store, "198.51.100.7", Cause.SPAM, 5)
    first = run(store, config, T0 + timedelta(hours=1))
    serial = store.serial()
    second = run(store, config, T0 + timedelta(hours=1))
    assert not first.changes.empty()  # type: ignore[attr-defined]
    assert second.changes.empty()  # type: ignore[attr-defined]
    assert store.serial() == serial


def test_incremental_only_touches_new_targets(store: SQLiteStore, config: Config) -> None:
    """The incremental run evaluates just the targets with new evidence."""
    add(store, "198.51.100.7", Cause.SPAM, 5)
    evaluate_new(store, config.policy, config.reputation, T0 + timedelta(minutes=5))
    add(store, "198.51.100.8", Cause.COMPROMISED, 4, at=T0 + timedelta(minutes=6))
    outcome = evaluate_new(store, config.policy, config.reputation, T0 + timedelta(minutes=7))
    assert outcome.targets == 1
    assert active(store, T0 + timedelta(minutes=7)) == {
        "198.51.100.7": {"spam"},
        "198.51.100.8": {"compromised"},
    }


def test_recidivist_gets_twice_the_minimum(store: SQLiteStore, config: Config) -> None:
    """A re-listing within 90 days of the previous one has twice its minimum listing time."""
    add(store, "198.51.100.7", Cause.SPAM, 3)
    later = T0 + timedelta(days=10)
    add(store, "198.51.100.7", Cause.SPAM, 3, at=later)
    add(store, "198.51.100.7", Cause.SPAM, 3, at=later + timedelta(days=10))
    run(store, config, later + timedelta(days=10, minutes=1))
    periods = store.periods(["198.51.100.7"])[("198.51.100.7", Cause.SPAM)]
    assert [round((p.min_until - p.listed_at) / 3600) for p in periods] == [24, 48, 96]
    assert [p.ended_by for p in periods] == ["decay", "decay", None]


def test_escalation_at_exactly_k(store: SQLiteStore, config: Config) -> None:
    """Seven listed addresses leave the /24 alone; the eighth lists it, sparing a clean server."""
    for i in range(1, 8):
        add(store, f"198.51.100.{i}", Cause.SPAM, 3)
    add(store, "198.51.100.25", Cause.CLEAN, 20)
    at = T0 + timedelta(minutes=5)
    run(store, config, at)
    assert not any(s.startswith("198.51.100.0/") for s in active(store, at))
    add(store, "198.51.100.8", Cause.COMPROMISED, 3, at=at)
    run(store, config, at + timedelta(minutes=1))
    listed = active(store, at + timedelta(minutes=1))
    network = {s for s, c in listed.items() if "network" in c}
    assert "198.51.100.0/28" in network  # part of the /24 ...
    assert not any(parse_subject("198.51.100.25").subnet_of(parse_subject(n)) for n in network)  # type: ignore[arg-type]
    assert len(network) == 8
    why = explain(store, config, "198.51.100.3", at + timedelta(minutes=1))
    assert any(item["cause"] == "network" for item in why.listings)
    clean = explain(store, config, "198.51.100.25", at + timedelta(minutes=1))
    assert not clean.listed and clean.bucket == "good"


def test_ipv6_hosts_aggregate_per_64_and_escalate_48(store: SQLiteStore, config: Config) -> None:
    """IPv6 evidence is scored per /64, and eight listed /64s list their /48."""
    for i in range(8):
        add(store, str(IPv6Address(f"2001:db8:1:{i}::{i + 1}")), Cause.COMPROMISED, 3)
        add(store, str(IPv6Address(f"2001:db8:1:{i}::ffff")), Cause.COMPROMISED, 0)
    at = T0 + timedelta(minutes=5)
    run(store, config, at)
    listed = active(store, at)
    assert "2001:db8:1::/64" in listed and "compromised" in listed["2001:db8:1::/64"]
    assert "2001:db8:1::/48" in listed and listed["2001:db8:1::/48"] == {"network"}


def test_shared_hosting_lists_domain_first(store: SQLiteStore, config: Config) -> None:
    """Evidence naming a domain lists the domain; the IP only when two of its domains are listed."""
    store.add_hosting(
        [
            ("203.0.113.5", "good.example"),
            ("203.0.113.5", "bad1.example"),
            ("203.0.113.5", "bad2.example"),
        ]
    )
    add(store, "203.0.113.5", Cause.MALWARE_HOST, 2, domain="bad1.example")
    at = T0 + timedelta(minutes=5)
    run(store, config, at)
    listed = active(store, at)
    assert listed == {"bad1.example": {"malware_host"}}
    why = explain(store, config, "203.0.113.5", at)
    assert not why.listed and "good.example" in why.collateral
    add(store, "203.0.113.5", Cause.MALWARE_HOST, 2, domain="bad2.example", at=at)
    run(store, config, at + timedelta(minutes=1))
    listed = active(store, at + timedelta(minutes=1))
    assert listed["203.0.113.5"] == {"malware_host"}
    why = explain(store, config, "203.0.113.5", at + timedelta(minutes=1))
    assert "bad1.example, bad2.example" in why.listings[0]["reason"]
    assert why.collateral == ["bad1.example", "bad2.example", "good.example"]


def test_allowlist_always_wins(store: SQLiteStore, config: Config) -> None:
    """An allowlisted address is never listed, whatever its evidence."""
    store.apply(
        Batch(
            allows=(
                AllowEntry(
                    subject=parse_subject("192.0.2.10"),
                    note="partner MX",
                    source="t",
                    created_at=T0,
                ),
            )
        ),
        actor="t",
        action="allow",
    )
    add(store, "192.0.2.10", Cause.SPAM, 50)
    run(store, config, T0 + timedelta(minutes=1))
    assert active(store, T0 + timedelta(minutes=1)) == {}


def test_removal_request_quiet_granted_busy_pending(store: SQLiteStore, config: Config) -> None:
    """A request after a quiet week is granted at once; one while evidence flows waits for review."""
    add(store, "198.51.100.7", Cause.OPEN_RELAY, 10)
    add(store, "198.51.100.9", Cause.OPEN_RELAY, 10)
    run(store, config, T0 + timedelta(minutes=1))
    add(store, "198.51.100.9", Cause.OPEN_RELAY, 10, at=T0 + timedelta(days=7))
    at = T0 + timedelta(days=8)
    run(store, config, at)
    quiet = request_removal(
        store, "198.51.100.7", contact="a@example.net", note="fixed", params=config.policy, now=at
    )
    assert quiet.status == "granted"
    assert "198.51.100.7" not in active(store, at + timedelta(seconds=1))
    busy = request_removal(
        store, "198.51.100.9", contact="b@example.net", note="fixed?", params=config.policy, now=at
    )
    assert busy.status == "pending"
    decide_request(store, busy.request_id, grant=True, by="op", why="checked", now=at)
    assert active(store, at + timedelta(seconds=1)) == {}
    # The old evidence alone does not list it again.
    run(store, config, at + timedelta(seconds=2))
    assert active(store, at + timedelta(seconds=2)) == {}
    history = explain(store, config, "198.51.100.9", at + timedelta(seconds=3)).history
    assert any("removal request" in h["action"] for h in history)


def test_removal_requests_are_rate_limited(store: SQLiteStore, config: Config) -> None:
    """A fourth self-service removal within 30 days is refused once three were granted."""
    for i in range(4):
        start = T0 + timedelta(days=9 * i)
        add(store, "198.51.100.7", Cause.MANUAL, 5, at=start, source=f"s{i}")
        run(store, config, start + timedelta(minutes=1))
        asked = start + timedelta(days=8)
        if i == 3:
            break
        granted = request_removal(
            store,
            "198.51.100.7",
            contact="a@example.net",
            note=str(i),
            params=config.policy,
            now=asked,
        )
        assert granted.status == "granted"
    with pytest.raises(ListingRefused, match="limit"):
        request_removal(
            store,
            "198.51.100.7",
            contact="a@example.net",
            note="again",
            params=config.policy,
            now=asked,
        )


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 12),
            st.sampled_from([Cause.SPAM, Cause.COMPROMISED, Cause.CLEAN]),
            st.integers(1, 6),
            st.integers(0, 72),
        ),
        max_size=20,
    ),
    st.sets(st.integers(1, 12), max_size=3),
)
def test_properties_allowlist_and_idempotence(
    tmp_path_factory: pytest.TempPathFactory,
    events: list[tuple[int, Cause, int, int]],
    allowed: set[int],
) -> None:
    """For any evidence: allowlisted addresses are never listed and a second evaluation changes nothing."""
    folder = tmp_path_factory.mktemp("prop")
    # SQLite only: a fresh store per Hypothesis example; this file's other tests run on both.
    store = SQLiteStore(folder / "r.db")
    config = parse_config(DEFAULT_TOML, folder / "reputable.toml")
    store.apply(
        Batch(
            allows=tuple(
                AllowEntry(
                    subject=parse_subject(f"198.51.100.{a}"), note="n", source="t", created_at=T0
                )
                for a in allowed
            )
        ),
        actor="t",
        action="t",
    )
    for host, cause, n, hours in events:
        add(
            store,
            f"198.51.100.{host}",
            cause,
            n,
            at=T0 + timedelta(hours=hours),
            source=f"s{hours}",
        )
    at = T0 + timedelta(hours=80)
    evaluate(store, config.policy, config.reputation, at)
    again = evaluate(store, config.policy, config.reputation, at)
    assert again.changes.empty()
    for item in store.listings(active_at=at):
        assert not any(parse_subject(f"198.51.100.{a}").subnet_of(item.subject) for a in allowed)  # type: ignore[arg-type]
    store.close()


def test_evidence_from_a_clock_ahead_is_evaluated_when_due(
    store: SQLiteStore, config: Config
) -> None:
    """Evidence stamped after the evaluation time is not lost: it lists once its time comes."""
    at = T0 + timedelta(minutes=10)
    add(
        store, "198.51.100.7", Cause.SPAM, 3, at=at + timedelta(seconds=30)
    )  # the sender's clock is ahead
    evaluate_new(store, config.policy, config.reputation, at)
    assert active(store, at) == {}
    later = at + timedelta(minutes=1)
    evaluate_new(store, config.policy, config.reputation, later)
    assert active(store, later) == {"198.51.100.7": {"spam"}}

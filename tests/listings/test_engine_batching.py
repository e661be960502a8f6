"""The policy engine's grouped reads: many networks in one evaluation, allowlist lookups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Network, IPv6Network, ip_network

from hypothesis import given, settings
from hypothesis import strategies as st

from reputable.config import Config
from reputable.core.address import Domain, parse_address, parse_subject
from reputable.core.cause import Cause
from reputable.evidence.model import Evidence
from reputable.listings.allowlist import Allowlist
from reputable.listings.engine import evaluate, evaluate_new
from reputable.listings.model import AllowEntry, Batch
from reputable.store.sqlite import SQLiteStore

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def add(store: SQLiteStore, subject: str, cause: Cause, n: int, at: datetime = T0) -> None:
    """Store *n* distinct pieces of evidence about *subject*."""
    store.add_evidence(
        Evidence(
            subject=parse_address(subject),
            cause=cause,
            source="test",
            observed_at=at + timedelta(seconds=i),
            detail={"i": i},
        )
        for i in range(n)
    )


def network_listings(store: SQLiteStore, at: datetime) -> dict[str, set[str]]:
    """Return the active network escalations as source network -> listed CIDRs."""
    out: dict[str, set[str]] = {}
    for item in store.listings(active_at=at):
        if item.cause is Cause.NETWORK:
            out.setdefault(item.source.split(":", 2)[2], set()).add(item.subject_text)
    return out


def test_escalation_with_carve_out_is_idempotent(store: SQLiteStore, config: Config) -> None:
    """A /24 escalated around a clean server is left alone by the next evaluation."""
    for i in range(1, 9):
        add(store, f"198.51.100.{i}", Cause.SPAM, 3)
    add(store, "198.51.100.25", Cause.CLEAN, 20)
    at = T0 + timedelta(minutes=5)
    evaluate(store, config.policy, config.reputation, at)
    listed = network_listings(store, at)["198.51.100.0/24"]
    assert "198.51.100.24" in listed  # the single-address neighbour of the carved-out server
    serial = store.serial()
    again = evaluate(store, config.policy, config.reputation, at)
    assert again.changes.empty()
    assert store.serial() == serial


def test_many_networks_in_one_evaluation(store: SQLiteStore, config: Config) -> None:
    """Each /24 and /48 is judged on its own members, the allowlist and its own clean hosts."""
    store.apply(
        Batch(
            allows=(
                AllowEntry(
                    subject=parse_subject("203.0.113.0/24"),
                    note="partner",
                    source="t",
                    created_at=T0,
                ),
            )
        ),
        actor="t",
        action="allow",
    )
    for i in range(1, 9):
        add(store, f"192.0.2.{i}", Cause.SPAM, 3)  # K: escalates
        add(store, f"203.0.113.{i}", Cause.COMPROMISED, 3)  # K, but allowlisted
        add(store, f"2001:db8:1:{i}::1", Cause.COMPROMISED, 3)  # K /64s: the /48 escalates
    for i in range(1, 8):
        add(store, f"198.51.100.{i}", Cause.SPAM, 3)  # K-1: stays
    add(store, "192.0.2.200", Cause.CLEAN, 20)
    at = T0 + timedelta(minutes=5)
    outcome = evaluate(store, config.policy, config.reputation, at)
    escalated = {n for n, e in outcome.escalations.items() if e}
    assert escalated == {"192.0.2.0/24", "2001:db8:1::/48"}
    networks = network_listings(store, at)
    assert set(networks) == escalated
    assert networks["2001:db8:1::/48"] == {"2001:db8:1::/48"}
    assert "192.0.2.201" in networks["192.0.2.0/24"]
    assert not any(
        parse_subject("192.0.2.200").subnet_of(parse_subject(c))  # type: ignore[arg-type]
        for c in networks["192.0.2.0/24"]
    )


def test_incremental_recomputes_only_touched_networks(store: SQLiteStore, config: Config) -> None:
    """New evidence in one /24 re-evaluates that /24 and leaves the others as they were."""
    for i in range(1, 9):
        add(store, f"192.0.2.{i}", Cause.SPAM, 3)
    for i in range(1, 8):
        add(store, f"198.51.100.{i}", Cause.SPAM, 3)
    at = T0 + timedelta(minutes=5)
    evaluate_new(store, config.policy, config.reputation, at)
    add(store, "198.51.100.8", Cause.SPAM, 3, at=at)
    outcome = evaluate_new(store, config.policy, config.reputation, at + timedelta(minutes=1))
    assert set(outcome.escalations) == {"198.51.100.0/24"}
    assert set(network_listings(store, at + timedelta(minutes=1))) == {
        "192.0.2.0/24",
        "198.51.100.0/24",
    }


def test_incremental_counts_members_listed_earlier(store: SQLiteStore, config: Config) -> None:
    """Members listed by earlier runs count when one more /24 host or /48 /64 is listed."""
    for i in range(1, 8):
        add(store, f"192.0.2.{i}", Cause.SPAM, 3)
        add(store, f"2001:db8:1:{i}::1", Cause.COMPROMISED, 3)
    at = T0 + timedelta(minutes=5)
    evaluate_new(store, config.policy, config.reputation, at)
    assert network_listings(store, at) == {}
    add(store, "192.0.2.8", Cause.SPAM, 3, at=at)
    add(store, "2001:db8:1:8::1", Cause.COMPROMISED, 3, at=at)
    later = at + timedelta(minutes=1)
    outcome = evaluate_new(store, config.policy, config.reputation, later)
    assert {n for n, e in outcome.escalations.items() if e} == {"192.0.2.0/24", "2001:db8:1::/48"}
    assert evaluate(store, config.policy, config.reputation, later, apply=False).changes.empty()


_nets = st.one_of(
    st.builds(
        lambda a, n: IPv4Network((a, n), strict=False),
        st.integers(0, 2**32 - 1),
        st.integers(0, 32),
    ),
    st.builds(
        lambda a, n: IPv6Network((a, n), strict=False),
        st.integers(0, 2**128 - 1),
        st.integers(0, 128),
    ),
)
_targets = st.one_of(
    st.integers(0, 2**32 - 1).map(lambda a: str(ip_network(a))).map(lambda s: s.split("/")[0]),
    st.integers(0, 2**128 - 1).map(lambda a: str(IPv6Network((a, 64), strict=False))),
    st.sampled_from(["a.example", "mail.a.example", "b.example"]),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_nets, max_size=6),
    st.sets(st.sampled_from(["a.example", "c.example"])),
    st.lists(_targets, min_size=1, max_size=10),
)
def test_property_allowlist_covers_like_subnet_of(
    networks: list[IPv4Network | IPv6Network], domains: set[str], targets: list[str]
) -> None:
    """Allowlist.covers agrees with subnet_of over the entries (and parent domains)."""
    entries = [AllowEntry(subject=n, note="", source="t", created_at=T0) for n in networks]
    entries += [AllowEntry(subject=Domain(d), note="", source="t", created_at=T0) for d in domains]
    allow = Allowlist(entries)
    for target in targets:
        subject = parse_subject(target)
        if isinstance(subject, Domain):
            expected = any(p.name in domains for p in subject.parents())
        else:
            expected = any(
                n.version == subject.version and subject.subnet_of(n)  # type: ignore[arg-type]
                for n in networks
            )
        assert allow.covers(target) is expected

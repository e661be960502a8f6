"""Regression tests for the defects of issue 18 (one definitive finding, explain vs DNS, removals)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reputable.config import DEFAULT_TOML, Config, parse_config
from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.core.errors import ListingRefused
from reputable.listings.delisting import decide_request, request_removal
from reputable.listings.engine import evaluate, evaluate_new
from reputable.listings.explain import explain
from reputable.listings.model import AllowEntry, Batch, Listing
from reputable.store.sqlite import SQLiteStore
from tests.listings.test_engine import active, add

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """The default configuration in a temporary folder."""
    return parse_config(DEFAULT_TOML, tmp_path / "reputable.toml")


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    """A fresh SQLite store."""
    return SQLiteStore(tmp_path / "r.db")


def run(store: SQLiteStore, config: Config, at: datetime) -> None:
    """Evaluate everything at *at*."""
    evaluate(store, config.policy, config.reputation, at)


def operator_listing(store: SQLiteStore, subject: str, cause: Cause, source: str = "cli") -> None:
    """List *subject* by hand (or as a feed would), without expiry."""
    store.apply(
        Batch(
            listings=(
                Listing(
                    subject=parse_subject(subject),
                    cause=cause,
                    reason="operator",
                    source=source,
                    listed_at=T0,
                ),
            )
        ),
        actor="op",
        action="list",
    )


@pytest.mark.parametrize("cause", [Cause.OPEN_RELAY, Cause.OPEN_PROXY, Cause.MALWARE_HOST])
def test_one_definitive_finding_lists(store: SQLiteStore, config: Config, cause: Cause) -> None:
    """One probe finding or malware report of weight 1.0 lists, however late the policy runs."""
    add(store, "198.51.100.11", cause, 1, source="probe:relay")
    later = T0 + timedelta(seconds=1)
    run(store, config, later)
    assert active(store, later) == {"198.51.100.11": {cause.value}}
    why = explain(store, config, "198.51.100.11", later)
    assert why.listed
    # It ends after one half-life (1.0 decays to the delisting threshold 0.5), in words.
    days = {Cause.OPEN_RELAY: 7, Cause.OPEN_PROXY: 7, Cause.MALWARE_HOST: 3}[cause]
    assert why.listings[0]["ends"].endswith("if nothing new is seen")
    assert f"(in {days - 1} d 23 h)" in why.listings[0]["ends"]


def test_incremental_run_lists_one_finding(store: SQLiteStore, config: Config) -> None:
    """Serve's incremental evaluation lists one open-relay finding seen a minute earlier."""
    add(store, "198.51.100.12", Cause.OPEN_RELAY, 1, source="probe:relay")
    at = T0 + timedelta(minutes=1)
    evaluate_new(store, config.policy, config.reputation, at)
    listed = list(store.listings(active_at=at))
    assert [(x.subject_text, x.listed_at) for x in listed] == [("198.51.100.12", T0)]


@pytest.mark.parametrize("source", ["cli", "feed:spamhaus-drop"])
def test_explain_sees_ranges_that_dns_answers_for(
    store: SQLiteStore, config: Config, source: str
) -> None:
    """An address inside an operator or feed range is explained as listed, as DNS answers it."""
    operator_listing(store, "203.0.113.0/24", Cause.COMPROMISED, source)
    why = explain(store, config, "203.0.113.5", T0 + timedelta(minutes=1))
    assert why.listed
    assert [(x["cause"], x["subject"], x["code"]) for x in why.listings] == [
        ("compromised", "203.0.113.0/24", "127.0.0.4")
    ]


def test_explain_sees_allowlist_cut_outs(store: SQLiteStore, config: Config) -> None:
    """An allowlisted address inside a listed range is explained as not listed, as DNS answers."""
    operator_listing(store, "203.0.113.0/24", Cause.COMPROMISED)
    store.apply(
        Batch(
            allows=(
                AllowEntry(
                    subject=parse_subject("203.0.113.7"), note="mx", source="t", created_at=T0
                ),
            )
        ),
        actor="op",
        action="allow",
    )
    why = explain(store, config, "203.0.113.7", T0 + timedelta(minutes=1))
    assert not why.listed and why.allowlisted
    assert explain(store, config, "203.0.113.8", T0 + timedelta(minutes=1)).listed


def test_pending_requests_do_not_count_toward_the_limit(store: SQLiteStore, config: Config) -> None:
    """Requests still pending review never exhaust the self-removal limit."""
    operator_listing(store, "198.51.100.20", Cause.MANUAL)
    for i in range(5):
        result = request_removal(
            store,
            "198.51.100.20",
            contact="a@example.net",
            note=str(i),
            params=config.policy,
            now=T0 + timedelta(hours=i),
        )
        assert result.status == "pending"


def test_request_ends_when_its_listing_ends(store: SQLiteStore, config: Config) -> None:
    """A request still pending when the listing expires is closed as ended, not left pending."""
    add(store, "198.51.100.21", Cause.SPAM, 5)
    run(store, config, T0 + timedelta(minutes=1))
    result = request_removal(
        store,
        "198.51.100.21",
        contact="a@example.net",
        note="n",
        params=config.policy,
        now=T0 + timedelta(hours=1),
    )
    assert result.status == "pending"
    later = T0 + timedelta(days=20)
    evaluate_new(store, config.policy, config.reputation, later)
    assert store.delist_requests(status="pending") == []
    assert [r.status for r in store.delist_requests()] == ["ended"]
    with pytest.raises(Exception, match="ended"):
        decide_request(store, result.request_id, grant=True, by="op", why="ok", now=later)


def test_old_request_spares_newer_listing(store: SQLiteStore, config: Config) -> None:
    """Approving a request ends the listings that existed when it was made, not newer ones."""
    add(store, "198.51.100.22", Cause.SPAM, 5)
    run(store, config, T0 + timedelta(minutes=1))
    asked = request_removal(
        store,
        "198.51.100.22",
        contact="a@example.net",
        note="n",
        params=config.policy,
        now=T0 + timedelta(hours=1),
    )
    newer = T0 + timedelta(hours=2)
    add(store, "198.51.100.22", Cause.COMPROMISED, 5, at=newer)
    run(store, config, newer + timedelta(minutes=1))
    approve = newer + timedelta(hours=1)
    decide_request(store, asked.request_id, grant=True, by="op", why="checked", now=approve)
    evaluate_new(store, config.policy, config.reputation, approve + timedelta(seconds=1))
    assert active(store, approve + timedelta(seconds=1)) == {"198.51.100.22": {"compromised"}}


def escalate_network(store: SQLiteStore, config: Config, at: datetime) -> None:
    """List eight addresses of 198.51.100.0/24 for spam, so the /24 escalates."""
    for i in range(1, 9):
        add(store, f"198.51.100.{i}", Cause.SPAM, 3)
    run(store, config, at)


def test_member_of_escalated_network_gets_a_carve_out(store: SQLiteStore, config: Config) -> None:
    """A clean address inside an escalated /24 asks for a carve-out and is granted at once."""
    at = T0 + timedelta(minutes=5)
    escalate_network(store, config, at)
    assert explain(store, config, "198.51.100.200", at).listed
    result = request_removal(
        store, "198.51.100.200", contact="a@example.net", note="mx", params=config.policy, now=at
    )
    assert result.status == "granted" and "carved out" in result.message
    later = at + timedelta(seconds=5)
    evaluate_new(store, config.policy, config.reputation, later)
    assert not explain(store, config, "198.51.100.200", later).listed
    assert explain(store, config, "198.51.100.201", later).listed


def test_carve_out_with_own_evidence_is_reviewed(store: SQLiteStore, config: Config) -> None:
    """A member with recent bad evidence of its own gets a reviewed carve-out request."""
    at = T0 + timedelta(minutes=5)
    add(store, "198.51.100.200", Cause.SPAM, 1)
    escalate_network(store, config, at)
    result = request_removal(
        store, "198.51.100.200", contact="a@example.net", note="mx", params=config.policy, now=at
    )
    assert result.status == "pending" and "carve-out" in result.message


def test_refusal_says_how_to_reach_the_operator(store: SQLiteStore, config: Config) -> None:
    """Over the self-removal limit, the refusal quotes the configured policy.contact."""
    params = replace(config.policy, self_removals=0, contact="abuse@list.example")
    operator_listing(store, "198.51.100.23", Cause.MANUAL)
    with pytest.raises(ListingRefused, match=r"abuse@list\.example"):
        request_removal(
            store, "198.51.100.23", contact="a@example.net", note="n", params=params, now=T0
        )


def test_address_in_operator_range_gets_a_reviewed_request(
    store: SQLiteStore, config: Config
) -> None:
    """An address listed only through an operator's range is not told "not listed"."""
    operator_listing(store, "203.0.113.0/24", Cause.COMPROMISED)
    result = request_removal(
        store, "203.0.113.5", contact="a@example.net", note="n", params=config.policy, now=T0
    )
    assert result.status == "pending" and "203.0.113.0/24" in result.message
    assert "allow add 203.0.113.5" in result.message
    evaluate_new(store, config.policy, config.reputation, T0 + timedelta(minutes=1))
    assert [r.status for r in store.delist_requests()] == ["pending"]

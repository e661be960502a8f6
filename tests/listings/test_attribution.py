"""Attribution by cause (behaviour to the IP, hosted content to the domain) and reasons in words."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reputable.config import DEFAULT_TOML, Config, parse_config
from reputable.core.address import Domain, parse_address
from reputable.core.cause import Cause
from reputable.evidence.model import Evidence
from reputable.listings.engine import evaluate
from reputable.listings.explain import explain
from reputable.listings.reason import MAX_REASON, evidence_reason, reason_count
from reputable.store.sqlite import SQLiteStore
from tests.listings.test_engine import active

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """The default configuration in a temporary folder."""
    return parse_config(DEFAULT_TOML, tmp_path / "reputable.toml")


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    """A fresh SQLite store."""
    return SQLiteStore(tmp_path / "r.db")


def seen(
    store: SQLiteStore,
    ip: str,
    cause: Cause,
    n: int,
    *,
    domain: str | None = None,
    detector: str | None = None,
    source: str = "maillog:/var/log/mail.log",
    start: datetime = T0,
) -> None:
    """Store *n* pieces of evidence about *ip*, one minute apart."""
    store.add_evidence(
        Evidence(
            subject=parse_address(ip),
            cause=cause,
            source=source,
            observed_at=start + timedelta(minutes=i),
            related_domain=Domain(domain) if domain else None,
            detail={"i": i, **({"detector": detector} if detector else {})},
        )
        for i in range(n)
    )


def test_shared_hosting_ip_that_spams_is_listed_with_its_sites_as_collateral(
    store: SQLiteStore, config: Config
) -> None:
    """Spam naming one of 40 sites lists the sending IP, not the sites, and names them all."""
    sites = [f"site{i}.example" for i in range(40)]
    store.add_hosting([("203.0.113.9", site) for site in sites])
    seen(store, "203.0.113.9", Cause.SPAM, 5, domain="site3.example", detector="spam_trap")
    at = T0 + timedelta(hours=1)
    evaluate(store, config.policy, config.reputation, at)
    assert active(store, at) == {"203.0.113.9": {"spam"}}
    why = explain(store, config, "203.0.113.9", at)
    assert why.listed and set(sites) <= set(why.collateral)


def test_domain_sending_spam_from_enough_listed_ips_is_listed(
    store: SQLiteStore, config: Config
) -> None:
    """A domain in the spam of three listed IPs is listed too; two are not enough."""
    for host in (1, 2):
        seen(store, f"198.51.100.{host}", Cause.SPAM, 3, domain="bulk.example")
    at = T0 + timedelta(hours=1)
    evaluate(store, config.policy, config.reputation, at)
    assert "bulk.example" not in active(store, at)
    seen(store, "198.51.100.3", Cause.SPAM, 3, domain="bulk.example", start=at)
    later = at + timedelta(hours=1)
    evaluate(store, config.policy, config.reputation, later)
    assert active(store, later)["bulk.example"] == {"spam"}
    why = explain(store, config, "bulk.example", later)
    assert why.listings[0]["source"] == "policy:senders"
    assert "3 listed addresses" in why.listings[0]["reason"]


def test_malware_on_one_site_lists_the_site_not_the_ip(store: SQLiteStore, config: Config) -> None:
    """Hosted malware belongs to the domain: the shared IP stays unlisted."""
    store.add_hosting([("203.0.113.10", f"s{i}.example") for i in range(40)])
    seen(store, "203.0.113.10", Cause.MALWARE_HOST, 2, domain="s7.example", source="feed:urlhaus")
    at = T0 + timedelta(hours=1)
    evaluate(store, config.policy, config.reputation, at)
    assert active(store, at) == {"s7.example": {"malware_host"}}


def test_reason_counts_what_was_seen(store: SQLiteStore, config: Config) -> None:
    """The reason says the cause in words with counts per detector or source and the dates."""
    seen(store, "198.51.100.40", Cause.SPAM, 37, detector="spam_trap")
    seen(
        store,
        "198.51.100.40",
        Cause.SPAM,
        2,
        source="arf:fbl.example",
        start=T0 + timedelta(days=3),
    )
    at = T0 + timedelta(days=3, hours=1)
    evaluate(store, config.policy, config.reputation, at)
    (listing,) = store.listings(active_at=at)
    assert listing.reason == "spam: 37 spam-trap hits, 2 complaints, 2026-11-01..11-04"


def test_reasons_stay_short() -> None:
    """However many sources, a reason fits one TXT string with room for the lookup URL."""
    labels = Counter({f"feed:{'x' * 60}{i}": i + 1 for i in range(50)})
    text = evidence_reason(Cause.COMPROMISED, labels, T0.timestamp(), T0.timestamp() + 86400 * 400)
    assert len(text.encode()) <= MAX_REASON


@given(
    st.dictionaries(
        st.sampled_from(
            ["spam_trap", "arf:x", "feed:urlhaus", "probe:relay", "traps", "weird:source"]
        ),
        st.integers(1, 500),
        min_size=1,
    )
)
def test_reason_count_reads_back_the_total(labels: dict[str, int]) -> None:
    """The count written into a reason reads back as the number of pieces of evidence."""
    text = evidence_reason(Cause.SPAM, Counter(labels), T0.timestamp(), T0.timestamp() + 86400)
    assert reason_count(text) == sum(labels.values())

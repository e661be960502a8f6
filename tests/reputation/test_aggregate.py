"""Prefix-to-ASN tables (CAIDA pfx2as) and per-origin counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from pathlib import Path

import pytest

from reputable.config import DEFAULT_TOML, parse_config
from reputable.core.address import parse_address
from reputable.core.cause import Cause
from reputable.core.errors import DataFileError
from reputable.evidence.model import Evidence
from reputable.listings.engine import evaluate
from reputable.listings.explain import explain
from reputable.reputation.aggregate import PrefixTable, count_by_origin, parse_pfx2as
from reputable.store.dsn import open_dsn

PFX2AS = """\
198.51.100.0\t22\t64500
198.51.100.0\t24\t64501
203.0.113.0\t24\t64502_64503
2001:db8::\t32\t64510
"""


def test_longest_prefix_wins() -> None:
    """An address maps to its most specific announcement; multi-origin ASNs are kept."""
    table = PrefixTable(parse_pfx2as(PFX2AS.splitlines()))
    assert len(table) == 4
    found = table.lookup(ip_network("198.51.100.7/32"))
    assert found is not None and found.asns == (64501,) and str(found.prefix) == "198.51.100.0/24"
    assert table.lookup(ip_network("198.51.101.7/32")).asns == (64500,)  # type: ignore[union-attr]
    assert table.lookup(ip_network("203.0.113.9/32")).asns == (64502, 64503)  # type: ignore[union-attr]
    assert table.lookup(ip_network("2001:db8:5::/64")).asns == (64510,)  # type: ignore[union-attr]
    assert table.lookup(ip_network("192.0.2.1/32")) is None


def test_counts_by_origin() -> None:
    """Listings are counted per announced prefix and per ASN."""
    table = PrefixTable(parse_pfx2as(PFX2AS.splitlines()))
    by_prefix, by_asn = count_by_origin(
        table,
        [
            ip_network("198.51.100.7/32"),
            ip_network("198.51.101.1/32"),
            ip_network("198.51.100.8/32"),
        ],
    )
    assert by_prefix == {"198.51.100.0/24": 2, "198.51.100.0/22": 1}
    assert by_asn == {64501: 2, 64500: 1}


def test_bad_line_names_file_and_line() -> None:
    """A malformed line is an error with file:line."""
    with pytest.raises(DataFileError, match=r"pfx:2: bad prefix"):
        parse_pfx2as(["198.51.100.0\t24\t64500", "198.51.100.0\t33\t1"], "pfx")


def test_explain_reports_asn(tmp_path: Path, store_dsn: str) -> None:
    """With a pfx2as table configured, explain reports the ASN and its listed addresses."""
    (tmp_path / "routes.pfx2as").write_text(PFX2AS)
    config = parse_config(
        DEFAULT_TOML.replace('# pfx2as = "routeviews.pfx2as"', 'pfx2as = "routes.pfx2as"'),
        tmp_path / "reputable.toml",
    )
    store = open_dsn(store_dsn)
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    for host in (7, 8):
        store.add_evidence(
            Evidence(
                subject=parse_address(f"198.51.100.{host}"),
                cause=Cause.SPAM,
                source="t",
                observed_at=t0 + timedelta(seconds=i),
                detail={"i": i},
            )
            for i in range(3)
        )
    evaluate(store, config.policy, config.reputation, t0 + timedelta(minutes=1))
    result = explain(store, config, "198.51.100.7", t0 + timedelta(minutes=1))
    assert result.network is not None
    assert result.network["asn"] == [64501]
    assert result.network["listed_in_prefix"] == 2
    assert result.network["listed_in_asn"] == {"64501": 2}


def test_opt_in_prefix_escalation(tmp_path: Path, store_dsn: str) -> None:
    """With escalate_prefix on, enough listed hosts in one announced prefix list the prefix."""
    (tmp_path / "routes.pfx2as").write_text(PFX2AS)
    text = DEFAULT_TOML.replace('# pfx2as = "routeviews.pfx2as"', 'pfx2as = "routes.pfx2as"')
    off = parse_config(text, tmp_path / "reputable.toml")
    on = parse_config(
        text.replace("# escalate_prefix = 0", "escalate_prefix = 3"), tmp_path / "reputable.toml"
    )
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    store = open_dsn(store_dsn)
    for host in ("198.51.101.1", "198.51.102.1", "198.51.103.1"):  # three /24s of AS64500's /22
        store.add_evidence(
            Evidence(
                subject=parse_address(host),
                cause=Cause.SPAM,
                source="t",
                observed_at=t0 + timedelta(seconds=i),
                detail={"i": i},
            )
            for i in range(3)
        )
    at = t0 + timedelta(minutes=1)
    evaluate(store, off.policy, off.reputation, at, prefixes=None)
    assert not any(item.source.startswith("policy:prefix") for item in store.listings(active_at=at))
    from reputable.app import prefix_table

    evaluate(store, on.policy, on.reputation, at, prefixes=prefix_table(on))
    (prefix,) = [
        item for item in store.listings(active_at=at) if item.source.startswith("policy:prefix")
    ]
    assert prefix.subject_text == "198.51.100.0/22" and prefix.cause is Cause.NETWORK
    assert "AS64500" in prefix.reason
    why = explain(store, on, "198.51.102.200", at)
    assert any(item["source"] == "policy:prefix:198.51.100.0/22" for item in why.listings)
    again = evaluate(store, on.policy, on.reputation, at, prefixes=prefix_table(on))
    assert again.changes.empty()


def test_prefix_escalation_needs_a_table(tmp_path: Path) -> None:
    """Switching prefix escalation on without pfx2as is a configuration error."""
    from reputable.core.errors import ConfigError

    with pytest.raises(ConfigError, match="needs pfx2as"):
        parse_config(
            DEFAULT_TOML.replace("# escalate_prefix = 0", "escalate_prefix = 3"),
            tmp_path / "r.toml",
        )

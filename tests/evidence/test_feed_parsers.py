"""Feed parsers: one format per file, each read from a real-format sample in feed_samples/."""

from __future__ import annotations

from ipaddress import ip_address, ip_network
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from reputable.core.address import Domain
from reputable.evidence.parsers.feed_kinds import FEED_PARSERS
from reputable.evidence.parsers.feed_model import CsvMapping, FeedContent

SAMPLES = Path(__file__).parent / "feed_samples"


def parse(kind: str, sample: str, mapping: CsvMapping | None = None) -> FeedContent:
    """Parse one sample file with the parser of *kind*."""
    text = (SAMPLES / sample).read_text(encoding="utf-8")
    return FEED_PARSERS[kind](text, mapping or CsvMapping())


def test_table_names_every_documented_kind() -> None:
    """The FEED_PARSERS table offers exactly the kinds `feed add --kind` documents."""
    assert set(FEED_PARSERS) == {
        *("plain", "drop", "urlhaus", "phishtank", "openphish", "csv"),
        *("crowdsec", "fail2ban"),
    }


def test_plain_list_reads_addresses_networks_and_reasons() -> None:
    """Comments are skipped, trailing comments become reasons, junk lines are counted."""
    content = parse("plain", "plain.txt")
    assert [str(e.network) for e in content.networks] == [
        "192.0.2.7/32",
        "192.0.2.64/26",
        "2001:db8:1::/48",
        "198.51.100.0/24",
    ]
    assert content.networks[0].reason == "scanner seen 2026-01-01"
    assert (content.lines, content.invalid) == (5, 1)
    assert "not-an-address" in content.samples[0]


def test_drop_list_keeps_sbl_references() -> None:
    """Each DROP entry carries its SBL reference as the reason."""
    content = parse("drop", "drop.txt")
    assert content.networks[0].network == ip_network("198.51.100.0/24")
    assert content.networks[0].reason == "Spamhaus DROP SBL100001"
    assert len(content.networks) == 4
    assert content.invalid == 0


def test_urlhaus_reduces_urls_to_registrable_domains() -> None:
    """URLhaus rows become host + registrable domain (public-suffix aware); offline rows go."""
    content = parse("urlhaus", "urlhaus.csv")
    hosts = {str(e.host): e.domain for e in content.urls}
    assert hosts == {
        "198.51.100.77": None,
        "cdn.bad-one.test": Domain("bad-one.test"),
        "www.shop.bad-two.test": Domain("bad-two.test"),
        "www.evil.co.uk": Domain("evil.co.uk"),
    }
    assert content.urls[0].host == ip_address("198.51.100.77")
    assert "Mozi" in content.urls[0].reason
    assert content.invalid == 0


def test_phishtank_csv_and_json_agree() -> None:
    """Both PhishTank dump formats yield the same verified, online phish."""
    from_csv = parse("phishtank", "phishtank.csv")
    from_json = parse("phishtank", "phishtank.json")
    assert [e.url for e in from_csv.urls] == [e.url for e in from_json.urls]
    assert [e.domain for e in from_csv.urls] == [
        Domain("phish-bank.test"),
        Domain("phish-pay.test"),
    ]
    assert "targeting Example Bank" in from_csv.urls[0].reason


def test_openphish_accepts_urls_without_scheme() -> None:
    """OpenPhish lines are URLs, with or without a scheme."""
    content = parse("openphish", "openphish.txt")
    assert [e.domain for e in content.urls] == [
        Domain("phish-one.test"),
        Domain("phish-two.test"),
        Domain("phish-three.test"),
    ]


def test_generic_csv_follows_the_column_mapping() -> None:
    """A header-named column and reason column pick the address and reason of each row."""
    mapping = CsvMapping(column="address", reason_column="why", delimiter=";", header=True)
    content = parse("csv", "generic.csv", mapping)
    assert [(str(e.network), e.reason) for e in content.networks] == [
        ("192.0.2.10/32", "ssh brute force"),
        ("192.0.2.11/32", "port scan"),
    ]
    assert content.invalid == 1


def test_generic_csv_can_hold_urls() -> None:
    """With holds=url the mapped column is read as a malware URL."""
    text = "1,http://x.bad-csv.test/a\n2,http://203.0.113.5/b\n"
    content = FEED_PARSERS["csv"](text, CsvMapping(column="1", holds="url"))
    assert [e.domain for e in content.urls] == [Domain("bad-csv.test"), None]


def test_crowdsec_decisions_on_ranges_are_counted_as_skipped() -> None:
    """A range (or country, AS) decision is no address's evidence: skipped, named, not junk."""
    content = parse("crowdsec", "crowdsec_stream.json")
    assert content.skipped == (
        "CrowdSec decision 10 on Range '203.0.113.0/24': not one address (only scope Ip"
        " decisions become evidence)",
    )
    assert (content.lines, content.invalid, content.entries) == (5, 1, 3)
    cscli = '[{"scenario": "geo", "decisions": [{"id": 4, "scope": "Country", "value": "XX"},'
    cscli += ' {"id": 5, "scope": "AS", "value": "64496"}, {"id": 6, "value": "192.0.2.6"}]}]'
    content = FEED_PARSERS["crowdsec"](cscli, CsvMapping())
    assert [why.split(":")[0] for why in content.skipped] == [
        "CrowdSec decision 4 on Country 'XX'",
        "CrowdSec decision 5 on AS '64496'",
    ]
    assert [str(e.address) for e in content.events] == ["192.0.2.6"]


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=400))
def test_parsers_never_crash_on_junk(junk: str) -> None:
    """Every parser turns arbitrary text into a result; junk only counts as unreadable lines."""
    for kind, parser in FEED_PARSERS.items():
        content = parser(junk, CsvMapping())
        assert content.invalid <= max(content.lines, 1), kind

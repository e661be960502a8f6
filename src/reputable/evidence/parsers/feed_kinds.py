"""The table of feed formats: one parser per file, keyed by the ``--kind`` of ``feed add``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, TypeAlias

from reputable.evidence.parsers import (
    feed_crowdsec,
    feed_csv,
    feed_drop,
    feed_fail2ban,
    feed_openphish,
    feed_phishtank,
    feed_plain,
    feed_urlhaus,
)
from reputable.evidence.parsers.feed_model import CsvMapping, FeedContent

FeedParser: TypeAlias = Callable[[str, CsvMapping], FeedContent]
RawFeedParser: TypeAlias = Callable[[bytes, CsvMapping], FeedContent]

FEED_PARSERS: Final[Mapping[str, FeedParser]] = {
    m.NAME: m.parse
    for m in (
        feed_plain,
        feed_drop,
        feed_urlhaus,
        feed_phishtank,
        feed_openphish,
        feed_csv,
        feed_crowdsec,
        feed_fail2ban,
    )
}

#: Kinds that read the downloaded bytes themselves (fail2ban's SQLite database is binary).
RAW_PARSERS: Final[Mapping[str, RawFeedParser]] = {feed_fail2ban.NAME: feed_fail2ban.parse_bytes}

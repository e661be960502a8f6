"""The table of feed formats: one parser per file, keyed by the ``--kind`` of ``feed add``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, TypeAlias

from reputable.evidence.parsers import (
    feed_csv,
    feed_drop,
    feed_openphish,
    feed_phishtank,
    feed_plain,
    feed_urlhaus,
)
from reputable.evidence.parsers.feed_model import CsvMapping, FeedContent

FeedParser: TypeAlias = Callable[[str, CsvMapping], FeedContent]

FEED_PARSERS: Final[Mapping[str, FeedParser]] = {
    m.NAME: m.parse
    for m in (feed_plain, feed_drop, feed_urlhaus, feed_phishtank, feed_openphish, feed_csv)
}

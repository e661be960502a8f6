"""OpenPhish feeds: one phishing URL per line, ``#`` starts a comment."""

from __future__ import annotations

from typing import Final

from reputable.core.errors import SubjectError
from reputable.evidence.parsers.feed_model import CsvMapping, FeedContent, Tally, UrlEntry
from reputable.evidence.parsers.feed_url import url_entry

NAME: Final = "openphish"


def parse(text: str, mapping: CsvMapping) -> FeedContent:
    """Return the phishing URLs listed in *text*."""
    tally = Tally()
    found: list[UrlEntry] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        tally.lines += 1
        if any(c.isspace() for c in line):
            tally.bad(lineno, raw, "a URL has no spaces")
            continue
        try:
            found.append(url_entry(line, "OpenPhish phishing URL"))
        except SubjectError as exc:
            tally.bad(lineno, raw, str(exc))
    return tally.content(urls=found)

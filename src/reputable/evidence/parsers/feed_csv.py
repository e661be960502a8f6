"""Generic CSV feeds: a column mapping says which column holds the IP/CIDR (or URL) and reason.

``--column`` is a header name (with ``--header``) or a 0-based index; ``--reason-column`` is
optional. Lines starting with the comment prefix are skipped.
"""

from __future__ import annotations

from typing import Final

from reputable.core.errors import SubjectError
from reputable.evidence.parsers.feed_model import (
    CsvMapping,
    FeedContent,
    FeedError,
    NetworkEntry,
    Tally,
    UrlEntry,
)
from reputable.evidence.parsers.feed_net import feed_network
from reputable.evidence.parsers.feed_url import url_entry

NAME: Final = "csv"


def _index(spec: str | None, header: list[str] | None) -> int | None:
    if spec is None:
        return None
    if spec.isdigit():
        return int(spec)
    if header is None:
        raise FeedError(f"CSV column {spec!r} is a name, but the feed has no header (--header)")
    names = [h.strip().lower() for h in header]
    if spec.strip().lower() not in names:
        raise FeedError(f"CSV column {spec!r} not in the header {header}")
    return names.index(spec.strip().lower())


def parse(text: str, mapping: CsvMapping) -> FeedContent:
    """Return the entries of a CSV feed read with *mapping*."""
    tally = Tally()
    nets: list[NetworkEntry] = []
    urls: list[UrlEntry] = []
    numbered = [
        (n, line)
        for n, line in enumerate(text.splitlines(), 1)
        if line.strip() and not (mapping.comment and line.lstrip().startswith(mapping.comment))
    ]
    header: list[str] | None = None
    if mapping.header and numbered:
        first, line = numbered.pop(0)
        header = tally.row(first, line, mapping.delimiter)
        if header is None:
            raise FeedError(f"line {first}: the header is no CSV line; {tally.samples[0]}")
    column = _index(mapping.column, header)
    reason_at = _index(mapping.reason_column, header)
    for lineno, line in numbered:
        tally.lines += 1
        row = tally.row(lineno, line, mapping.delimiter)
        if row is None:
            continue
        if column is None or column >= len(row):
            tally.bad(lineno, mapping.delimiter.join(row), f"no column {mapping.column}")
            continue
        reason = row[reason_at].strip() if reason_at is not None and reason_at < len(row) else ""
        try:
            if mapping.holds == "url":
                urls.append(url_entry(row[column], reason))
            else:
                nets.append(NetworkEntry(network=feed_network(row[column]), reason=reason))
        except SubjectError as exc:
            tally.bad(lineno, mapping.delimiter.join(row), str(exc))
    return tally.content(networks=nets, urls=urls)

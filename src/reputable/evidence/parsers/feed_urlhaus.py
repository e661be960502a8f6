"""abuse.ch URLhaus CSV dumps: ``#`` comment header, then quoted CSV rows.

Columns: id, dateadded, url, url_status, last_online, threat, tags, urlhaus_link, reporter.
Rows whose ``url_status`` is ``offline`` are skipped: the URL no longer serves malware.
"""

from __future__ import annotations

from typing import Final

from reputable.core.errors import SubjectError
from reputable.evidence.parsers.feed_model import CsvMapping, FeedContent, Tally, UrlEntry
from reputable.evidence.parsers.feed_url import url_entry

NAME: Final = "urlhaus"


def parse(text: str, mapping: CsvMapping) -> FeedContent:
    """Return the online malware URLs of a URLhaus CSV dump."""
    tally = Tally()
    found: list[UrlEntry] = []
    rows = ((n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip())
    for lineno, line in rows:
        if line.lstrip().startswith("#"):
            continue
        tally.lines += 1
        row = tally.row(lineno, line)
        if row is None:
            continue
        if len(row) < 4 or not row[0].strip().isdigit():
            tally.bad(lineno, line, "not a URLhaus row (id,dateadded,url,url_status,...)")
            continue
        if row[3].strip().lower() == "offline":
            continue
        threat = row[5].strip() if len(row) > 5 else ""
        tags = row[6].strip() if len(row) > 6 else ""
        reason = " ".join(p for p in ("URLhaus", threat, f"[{tags}]" if tags else "") if p)
        try:
            found.append(url_entry(row[2], reason))
        except SubjectError as exc:
            tally.bad(lineno, line, str(exc))
    return tally.content(urls=found)

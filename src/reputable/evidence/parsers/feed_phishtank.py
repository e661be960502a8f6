"""PhishTank database dumps, CSV or JSON (the format is told by the first character).

CSV header: ``phish_id,url,phish_detail_url,submission_time,verified,verification_time,online,target``;
JSON: a list of objects with the same keys. Only verified phish still online are kept.
"""

from __future__ import annotations

import json
from typing import Any, Final

from reputable.core.errors import SubjectError
from reputable.evidence.parsers.feed_model import CsvMapping, FeedContent, Tally, UrlEntry
from reputable.evidence.parsers.feed_url import url_entry

NAME: Final = "phishtank"


def _keep(row: dict[str, Any]) -> bool:
    verified = str(row.get("verified", "yes")).strip().lower()
    online = str(row.get("online", "yes")).strip().lower()
    return verified in ("yes", "true", "1") and online not in ("no", "false", "0")


def _rows(text: str, tally: Tally) -> list[tuple[int, dict[str, Any]]]:
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            tally.lines += 1
            tally.bad(exc.lineno, exc.doc[exc.pos : exc.pos + 40], f"bad JSON: {exc.msg}")
            return []
        return [(i, r if isinstance(r, dict) else {}) for i, r in enumerate(data, 1)]
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        return []
    header = tally.row(*lines[0]) or []
    rows: list[tuple[int, dict[str, Any]]] = []
    for lineno, line in lines[1:]:
        row = tally.row(lineno, line)
        if row is None:
            tally.lines += 1  # counted here: parse() never sees it
            continue
        rows.append((lineno, dict(zip(header, row, strict=False))))
    return rows


def parse(text: str, mapping: CsvMapping) -> FeedContent:
    """Return the verified, online phishing URLs of a PhishTank dump."""
    tally = Tally()
    found: list[UrlEntry] = []
    for where, row in _rows(text, tally):
        tally.lines += 1
        url = row.get("url")
        if not isinstance(url, str) or not url.strip():
            tally.bad(where, json.dumps(row)[:80], "no url field")
            continue
        if not _keep(row):
            continue
        target = str(row.get("target") or "").strip()
        reason = f"PhishTank phish {row.get('phish_id', '')}".strip()
        if target and target.lower() != "other":
            reason += f" targeting {target}"
        try:
            found.append(url_entry(url, reason))
        except SubjectError as exc:
            tally.bad(where, url, str(exc))
    return tally.content(urls=found)

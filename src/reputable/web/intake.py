"""Reading an evidence request body into table rows (pure; runs in a parser process).

Parsing (JSON, validation, keys) is the larger half of intake. A large body is parsed in a
separate process, so the server keeps answering and the next body's parse overlaps this
one's SQLite write; small bodies are parsed in a thread. Kept free of the web framework so
the parser process imports little.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from typing import Any, Final

from reputable.core.errors import InputError, ReputableError
from reputable.evidence.model import Evidence
from reputable.evidence.parsers import jsonl
from reputable.store.sqlite_evidence import evidence_table_rows

#: Bodies with at least this many bytes are parsed in the parser process.
PROCESS_AT: Final = 256 * 1024
PARENT_CHECK: Final = 1.0  # seconds between a parser's looks at whether the server lives

Rows = list[tuple[object, ...]]


def parser_pool() -> ProcessPoolExecutor:
    """Return the parser processes (spawned: the server has threads, never fork it).

    Two, as `evidence import` uses: concurrent posts parse side by side while this process
    writes SQLite. Each exits by itself if the server dies without shutting the pool down.
    """
    return ProcessPoolExecutor(
        max_workers=2,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_follow_parent,
        initargs=(os.getpid(),),
    )


def _follow_parent(parent: int) -> None:
    """Exit this parser process soon after *parent* (the server) is gone."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _lines(body: bytes) -> list[str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"body is not UTF-8 at byte {exc.start}") from exc
    return text.splitlines()


def parse_body(
    body: bytes, content_type: str, now: datetime
) -> tuple[list[Evidence], list[jsonl.LineError], int]:
    """Return (evidence, rejected lines, records received) of a request body."""
    lines, received, document = _split(body, content_type)
    if document is not None:
        return _records(document, now)
    good, bad = jsonl.parse(lines, now=now)
    return good, bad, received


def _split(body: bytes, content_type: str) -> tuple[list[str], int, list[Any] | None]:
    """Return a body's lines, its records received, and its records if it is one JSON document."""
    lines = _lines(body)
    received = 0
    for line in lines:
        text = line.strip()
        if text and not text.startswith("#"):
            received += 1
    single = content_type.split(";", 1)[0].strip().lower() == "application/json"
    if single and received > 1:
        # One JSON document over several lines (pretty-printed object or an array).
        try:
            document: Any = json.loads("\n".join(lines))
        except json.JSONDecodeError:
            pass  # JSON lines sent as application/json: read line by line below
        else:
            return lines, received, document if isinstance(document, list) else [document]
    return lines, received, None


def _records(items: list[Any], now: datetime) -> tuple[list[Evidence], list[jsonl.LineError], int]:
    good: list[Evidence] = []
    bad: list[jsonl.LineError] = []
    for index, item in enumerate(items, 1):
        try:
            if not isinstance(item, dict):
                raise InputError("record is not a JSON object")
            good.append(jsonl.evidence_from_fields(item, now=now))
        except ReputableError as exc:
            bad.append(jsonl.LineError(index, str(exc)))
    return good, bad, len(items)


def parse_rows(
    body: bytes, content_type: str, now: datetime
) -> tuple[Rows, list[jsonl.LineError], int]:
    """Return (evidence table rows, rejected lines, records received) of a request body.

    JSON lines go straight to table rows (``jsonl.table_rows``: the same rows and errors as
    ``parse_body`` then ``evidence_table_rows``, without an Evidence object per line).
    """
    lines, received, document = _split(body, content_type)
    if document is not None:
        good, bad, received = _records(document, now)
        return list(evidence_table_rows(good)), bad, received
    rows, bad = jsonl.table_rows(lines, now=now)
    return list(rows), bad, received

"""ARF reports in: single messages (.eml), mbox files and Maildir folders (stdlib ``mailbox``)."""

from __future__ import annotations

import mailbox
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final

from reputable.core.cause import Cause
from reputable.core.clock import format_instant
from reputable.core.errors import InputError
from reputable.evidence.model import Evidence
from reputable.evidence.parsers import arf
from reputable.evidence.sources.inputs import check_inputs, is_stdin, label, open_binary


@dataclass(slots=True)
class ArfRun:
    """One import: the evidence made, duplicates skipped, malformed reports named."""

    source: str
    now: datetime
    reports: int = 0
    duplicates: int = 0
    ignored: int = 0
    malformed: list[tuple[str, str]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    by_ip: Counter[str] = field(default_factory=Counter)

    def add(self, where: str, data: bytes) -> Evidence | None:
        """Return the evidence of one message, or None (duplicate, not a complaint, malformed)."""
        self.reports += 1
        try:
            report = arf.parse(data)
        except arf.ArfError as exc:
            self.malformed.append((where, str(exc)))
            return None
        if report.weight == 0.0:
            self.ignored += 1
            return None
        key = arf.dedup_key(report)
        if key in self.seen:
            self.duplicates += 1
            return None
        self.seen.add(key)
        self.by_ip[str(report.source_ip)] += 1
        detail: dict[str, object] = {
            "feedback_type": report.feedback_type,
            "message_id": report.message_id,
            "arrival": format_instant(report.arrival),
            "reported_domain": report.reported_domain,
            "original_mail_from": report.original_mail_from,
            "subject": report.subject,
            "user_agent": report.user_agent,
            "report": where,
        }
        return Evidence(
            subject=report.source_ip,
            cause=Cause.SPAM,
            source=self.source,
            observed_at=report.arrival or self.now,
            weight=report.weight,
            related_domain=report.dkim_domain,
            detail={k: v for k, v in detail.items() if v},
            key=f"{self.source}:arf:{key}",
        )


#: The most one report input may hold (an mbox of complaints is far smaller).
MAX_INPUT: Final = 256 << 20
_FROM_LINE: Final = re.compile(rb"^From [^\n]*\n", re.MULTILINE)


def messages(path: Path) -> Iterator[tuple[str, bytes]]:
    """Yield (where, raw message) from an .eml file, an mbox file, a Maildir folder or ``-``.

    A file or stream is read exactly once (pipes, FIFOs and ``-`` too): an mbox (its first
    line starts with ``From ``) is split at its ``From`` lines.
    """
    try:
        if not is_stdin(path) and path.is_dir():
            if (path / "cur").is_dir() or (path / "new").is_dir():
                box = mailbox.Maildir(path, create=False)
                for key in sorted(box.iterkeys()):
                    yield f"{path}/{key}", box.get_bytes(key)
            else:
                for child in sorted(path.iterdir()):
                    if child.is_file():
                        yield from messages(child)
            return
        with open_binary(path) as f:
            data = f.read(MAX_INPUT + 1)
    except OSError as exc:
        raise InputError(f"cannot read {label(path)}: {exc.strerror or exc}") from exc
    if len(data) > MAX_INPUT:
        raise InputError(
            f"{label(path)}: more than {MAX_INPUT >> 20} MiB; split it (one report per file,"
            " or a Maildir folder)"
        )
    where = label(path)
    if not data.startswith(b"From "):
        yield where, data
        return
    found = list(_FROM_LINE.finditer(data))
    ends = [m.start() for m in found[1:]]
    ends.append(len(data))
    for i, (start, end) in enumerate(zip((m.end() for m in found), ends, strict=True), 1):
        yield f"{where}#{i}", data[start:end]


def ingest_reports(run: ArfRun, paths: list[Path]) -> list[Evidence]:
    """Return the evidence of every complaint in *paths*; malformed ones are recorded in *run*."""
    check_inputs(paths, "file or folder")
    out: list[Evidence] = []
    for path in paths:
        for where, data in messages(path):
            item = run.add(where, data)
            if item is not None:
                out.append(item)
    return out

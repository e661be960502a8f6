"""ARF reports in: single messages (.eml), mbox files and Maildir folders (stdlib ``mailbox``)."""

from __future__ import annotations

import mailbox
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from reputable.core.cause import Cause
from reputable.core.clock import format_instant
from reputable.core.errors import InputError
from reputable.evidence.model import Evidence
from reputable.evidence.parsers import arf


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


def messages(path: Path) -> Iterator[tuple[str, bytes]]:
    """Yield (where, raw message) from an .eml file, an mbox file or a Maildir folder."""
    try:
        if path.is_dir():
            if (path / "cur").is_dir() or (path / "new").is_dir():
                box = mailbox.Maildir(path, create=False)
                for key in sorted(box.iterkeys()):
                    yield f"{path}/{key}", box.get_bytes(key)
            else:
                for child in sorted(path.iterdir()):
                    if child.is_file():
                        yield from messages(child)
            return
        with path.open("rb") as f:
            start = f.read(5)
        if start == b"From ":
            mbox = mailbox.mbox(path, create=False)
            try:
                for i, key in enumerate(mbox.iterkeys(), 1):
                    yield f"{path}#{i}", mbox.get_bytes(key)
            finally:
                mbox.close()
            return
        yield str(path), path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc


def ingest_reports(run: ArfRun, paths: list[Path]) -> list[Evidence]:
    """Return the evidence of every complaint in *paths*; malformed ones are recorded in *run*."""
    out: list[Evidence] = []
    for path in paths:
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        for where, data in messages(path):
            item = run.add(where, data)
            if item is not None:
                out.append(item)
    return out

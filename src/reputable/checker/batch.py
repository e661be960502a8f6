"""Checking many subjects: read a list, check with bounded parallelism, stream CSV or JSON lines."""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Final, TextIO

import dns.resolver

from reputable.checker.catalogue import Zone
from reputable.checker.model import Report, Status
from reputable.checker.report import blocklists, problems, report_json, summary, verdict
from reputable.checker.service import Request, check
from reputable.core.dnsclient import Resolver
from reputable.core.errors import ConfigError, InputError

CSV_FIELDS: Final = ("subject", "verdict", "listed_on", "no_answer", "problems", "summary", "error")
FORMATS: Final = ("csv", "jsonl")
#: Subjects checked at once; each already runs its zone queries concurrently.
PARALLEL_SUBJECTS: Final = 32


def read_subjects(lines: Iterable[str]) -> list[str]:
    """Return the subjects of a list file: one per line, ``#`` comments and blank lines ignored.

    A line is one subject; a line with spaces in it is kept whole, so it becomes an error row.
    """
    out = []
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if text:
            out.append(text)  # "not_an ip" stays whole and becomes an error row
    return out


def load_subjects(path: Path) -> list[str]:
    """Return the subjects in *path*, or raise ConfigError saying why it cannot be read."""
    try:
        with path.open(encoding="utf-8") as handle:
            return read_subjects(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read subject list: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text: {exc.reason}") from exc


def csv_row(report: Report) -> dict[str, str]:
    """Return the CSV row of *report*."""
    blocks = blocklists(report)
    return {
        "subject": report.subject,
        "verdict": verdict(report).value,
        "listed_on": ";".join(r.zone for r in blocks if r.status is Status.LISTED),
        "no_answer": ";".join(
            r.zone for r in blocks if r.status not in (Status.LISTED, Status.CLEAN)
        ),
        "problems": str(len(problems(report))),
        "summary": summary(report),
        "error": report.error,
    }


class Sink:
    """Writes reports as they arrive: CSV with a header, or one JSON document per line."""

    def __init__(self, handle: TextIO, fmt: str) -> None:
        check_format(fmt)
        self.handle = handle
        self.fmt = fmt
        self._csv = csv.DictWriter(handle, CSV_FIELDS) if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writeheader()

    def write(self, report: Report) -> None:
        """Append *report* and flush, so a crash loses at most the reports in flight."""
        if self._csv is not None:
            self._csv.writerow(csv_row(report))
        else:
            self.handle.write(json.dumps(report_json(report)) + "\n")
        self.handle.flush()


def check_format(fmt: str) -> None:
    """Raise InputError unless *fmt* is a batch output format (csv or jsonl)."""
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt}: unknown output format: use csv or jsonl")


def output_format(path: Path, explicit: str | None) -> str:
    """Return the format to write *path* in: explicit, or from the suffix (.csv, else jsonl)."""
    if explicit:
        return explicit
    return "csv" if path.suffix.lower() == ".csv" else "jsonl"


async def check_many(
    subjects: Sequence[str],
    template: Request,
    zones: Sequence[Zone],
    resolver: Resolver,
    sync: dns.resolver.Resolver | None = None,
    *,
    parallel: int = PARALLEL_SUBJECTS,
) -> AsyncIterator[Report]:
    """Yield one report per subject as each finishes; a failing subject yields an error report."""
    queue: asyncio.Queue[Report] = asyncio.Queue(maxsize=parallel)
    gate = asyncio.Semaphore(parallel)

    async def one(subject: str) -> None:
        async with gate:
            request = Request(subject=subject, domain=template.domain, helo=template.helo,
                              dkim_selectors=template.dkim_selectors,
                              diagnostics=template.diagnostics)  # fmt: skip
            try:
                report = await check(request, zones, resolver, sync)
            except Exception as exc:  # supervisor: one subject never stops the batch
                report = Report(subject=subject, error=f"{type(exc).__name__}: {exc}")
            await queue.put(report)

    async with asyncio.TaskGroup() as group:
        for subject in subjects:
            group.create_task(one(subject))
        for _ in subjects:
            yield await queue.get()

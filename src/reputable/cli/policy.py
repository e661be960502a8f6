"""`reputable evidence|policy|explain|delist|hosting`: from facts to explained listings."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import multiprocessing
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Annotated

import typer

from reputable.app import prefix_table
from reputable.cli.common import (
    EXIT_FOUND,
    EXIT_USAGE,
    Format,
    JsonOpt,
    PlainOpt,
    action_format,
    console,
    err_console,
    now_option,
    output_format,
    plain_line,
    print_json,
    show_records,
    show_result,
    state,
)
from reputable.config import Config, load_config
from reputable.core.address import looks_like_ip, parse_address, parse_domain
from reputable.core.clock import format_instant
from reputable.core.errors import DataFileError, InputError, SubjectError
from reputable.core.limits import MAX_LINE_BYTES, bounded_lines
from reputable.evidence.parsers import jsonl
from reputable.listings.delisting import (
    decide_request,
    request_removal,
    settle_requests,
    subject_names,
)
from reputable.listings.engine import CURSOR, Outcome, evaluate
from reputable.listings.explain import Explanation, explain
from reputable.store.dsn import open_store
from reputable.store.sqlite import SQLStore

evidence_app = typer.Typer(
    help="Record evidence: one fact, one cause, one time.", no_args_is_help=True
)
policy_app = typer.Typer(help="Turn evidence into listings.", no_args_is_help=True)
delist_app = typer.Typer(help="Removal requests and their review.", no_args_is_help=True)
hosting_app = typer.Typer(
    help="The shared-hosting map: which domains live on which IP.", no_args_is_help=True
)

NowOpt = Annotated[str | None, typer.Option("--now", help="Evaluate at this ISO-8601 time.")]
BATCH = 50_000
#: Bytes per parser job when the input is a regular file (~50,000 lines of 140 bytes).
RANGE_BYTES = 7 << 20
#: Processes parsing evidence while the main one writes SQLite (2 measured best on 2 cores).
PARSERS = 2


def register(app: typer.Typer) -> None:
    """Add this module's command groups to *app*."""
    app.add_typer(evidence_app, name="evidence")
    app.add_typer(policy_app, name="policy")
    app.add_typer(delist_app, name="delist")
    app.add_typer(hosting_app, name="hosting")
    app.command("explain")(explain_command)


@evidence_app.command("add")
def evidence_add(
    ctx: typer.Context,
    subject: Annotated[str, typer.Argument(help="IP address or domain the fact is about.")],
    cause: Annotated[str, typer.Option("--cause", "-c")],
    source: Annotated[str, typer.Option("--source", help="Where the fact comes from.")] = "cli",
    detail: Annotated[
        str, typer.Option("--detail", help="JSON object with the particulars.")
    ] = "{}",
    at: Annotated[str | None, typer.Option("--at", help="When it was seen (ISO-8601).")] = None,
    weight: Annotated[float, typer.Option("--weight", help="How much it counts.")] = 1.0,
    domain: Annotated[
        str | None, typer.Option("--domain", help="Related (sending/hosted) domain.")
    ] = None,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Record one piece of evidence (serve evaluates it within seconds; or run `policy run`)."""
    fmt = action_format(as_json, plain)
    try:
        detail_obj = json.loads(detail)
    except json.JSONDecodeError as exc:
        raise InputError(f"--detail is not JSON: {exc.msg}") from exc
    fields = {
        "subject": subject,
        "cause": cause,
        "source": source,
        "detail": detail_obj,
        "weight": weight,
    }
    if at:
        fields["at"] = at
    if domain:
        fields["domain"] = domain
    item = jsonl.evidence_from_fields(fields, now=now_option(None))
    store = open_store(state(ctx).config)
    try:
        added = store.add_evidence([item])
    finally:
        store.close()
    record = {
        "subject": str(item.subject),
        "target": item.target,
        "cause": item.cause.value,
        "source": item.source,
        "at": format_instant(item.observed_at),
        "weight": item.weight,
        "domain": item.related_domain.name if item.related_domain else None,
        "stored": bool(added),
    }
    show_result(
        fmt,
        record,
        f"{'recorded' if added else 'already recorded'}: {item.cause.value} evidence on {item.target}",
    )


@evidence_app.command("import")
def evidence_import(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="JSON-lines file (docs/evidence.md); - for stdin.")],
    now: NowOpt = None,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Import JSON-lines evidence; bad lines are reported and the good ones still land (exit 1 if any were bad)."""
    fmt = action_format(as_json, plain)
    reference = now_option(now)
    try:
        stream = sys.stdin if str(path) == "-" else path.open(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    read = stored = 0
    errors: list[jsonl.LineError] = []
    # Parsing (JSON, validation, keys) runs in PARSERS processes while this one writes
    # SQLite: one parser took an import from 55,000 to 84,000 records/s (bench/policy_scale.py).
    # A large regular file is handed out as byte ranges the parsers read themselves, so this
    # process neither reads nor pickles the lines (its SQLite writes are the import's pace).
    # Small files and stdin are parsed here or sent as lines.
    size = _regular_size(path, stream)
    first = [] if size > RANGE_BYTES else list(islice(stream, BATCH))
    ranges = _byte_ranges(path, size) if size > RANGE_BYTES else None
    pool = (
        ProcessPoolExecutor(max_workers=PARSERS, mp_context=multiprocessing.get_context("fork"))
        if ranges is not None or len(first) == BATCH
        else None
    )
    store = open_store(state(ctx).config)
    try:
        pending: deque[Future[Parsed]] = deque()
        lines = first
        while True:
            job: Future[Parsed] | None = None
            if ranges is not None:
                span = next(ranges, None)
                if span is not None:
                    job = pool.submit(parse_range, str(path), *span, reference)  # type: ignore[union-attr]
            elif lines:
                if pool is not None:
                    job = pool.submit(parse_rows_counted, lines, reference)
                else:
                    job = Future()
                    job.set_result(parse_rows_counted(lines, reference))
                lines = list(islice(stream, BATCH))
            if job is not None:
                pending.append(job)
            if not pending:
                break
            if len(pending) > PARSERS or job is None:
                rows, bad, count = pending.popleft().result()
                errors.extend(jsonl.LineError(e.lineno + read, e.message) for e in bad)
                stored += store.add_evidence_rows(rows)
                read += count
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        stream.close()
        store.close()
    _import_summary(
        fmt,
        {"path": str(path), "lines": read, "stored": stored, "bad": len(errors)},
        f"{path}: {read} lines, {stored} new evidence stored, {len(errors)} bad lines",
        [f"{path}:{e.lineno}: {e.message}" for e in errors],
    )


def _import_summary(
    fmt: Format, record: dict[str, object], sentence: str, errors: list[str], code: int = 1
) -> None:
    """Print an import's summary and its bad lines (stderr unless a sentence); exit *code*
    if any (1: the good lines were stored; 2: nothing was, --strict)."""
    if fmt is Format.JSON:
        print_json({**record, "errors": errors})
    else:
        show_result(fmt, record, sentence)
        out = console if fmt is Format.TABLE else err_console
        for error in errors[:20]:
            out.print(f"  {error}", highlight=False, markup=False)
        if len(errors) > 20:
            out.print(f"  ... and {len(errors) - 20} more bad lines", highlight=False)
    if errors:
        raise typer.Exit(code)


#: What a parser returns: evidence-table rows, bad lines (numbered from 1), lines read.
Parsed = tuple[list[jsonl.TableRow], list[jsonl.LineError], int]


def parse_rows_counted(lines: list[str], now: datetime) -> Parsed:
    """Parse JSON lines into evidence-table rows and line errors (runs in a worker process)."""
    rows, bad = jsonl.table_rows(lines, now=now)
    return rows, bad, len(lines)


def parse_range(path: str, start: int, end: int, now: datetime) -> Parsed:
    """Parse the lines of bytes *start* to *end* of *path* (a worker process reads them).

    The lines are those a text-mode read gives (UTF-8, bad bytes replaced, universal
    newlines): a range ends after a ``\\n``, so no character or ``\\r\\n`` is cut in two.
    """
    with open(path, "rb") as handle:
        handle.seek(start)
        data = handle.read(end - start)
    text = data.decode("utf-8", errors="replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the end of the last line, not a line
    return parse_rows_counted(lines, now)


def _regular_size(path: Path, stream: object) -> int:
    """Return the size of *path* when it is a regular file read from the start, else 0."""
    if str(path) == "-" or stream is sys.stdin:
        return 0
    try:
        return path.stat().st_size if path.is_file() else 0
    except OSError:
        return 0


def _byte_ranges(path: Path, size: int) -> Iterator[tuple[int, int]]:
    """Yield (start, end) byte ranges of about RANGE_BYTES that end at a line end (or EOF)."""
    with path.open("rb") as handle:
        start = 0
        while start < size:
            handle.seek(min(start + RANGE_BYTES, size))
            handle.readline()  # to the end of the line the cut fell in
            end = min(size, handle.tell())
            yield start, end
            start = end


@policy_app.command("run")
def policy_run(
    ctx: typer.Context, now: NowOpt = None, as_json: JsonOpt = False, plain: PlainOpt = False
) -> None:
    """Evaluate every subject with evidence now and apply the result (serve does this by itself)."""
    fmt = action_format(as_json, plain)
    config = state(ctx).config
    store = open_store(config)
    try:
        at = now_option(now)
        newest = store.evidence_cursor(store.cursor(CURSOR), observed_by=at.timestamp())
        outcome = evaluate(
            store, config.policy, config.reputation, at, prefixes=prefix_table(config)
        )
        store.set_cursor(CURSOR, newest)
    finally:
        store.close()
    escalated = sum(1 for e in outcome.escalations.values() if e)
    hosted = sum(1 for h in outcome.hosting.values() if h)
    record = {
        "evaluated": outcome.targets,
        "seconds": round(outcome.seconds, 3),
        "listed": len(outcome.decisions),
        "escalated": escalated,
        "hosting": hosted,
        "written": len(outcome.changes.upserts),
        "delisted": len(outcome.changes.ends),
    }
    show_result(
        fmt,
        record,
        f"evaluated {outcome.targets} subjects in {outcome.seconds:.2f} s: {len(outcome.decisions)} listed,"
        f" {escalated} networks escalated, {hosted} shared-hosting IPs listed;"
        f" {len(outcome.changes.upserts)} listings written, {len(outcome.changes.ends)} delisted",
    )


@policy_app.command("simulate")
def policy_simulate(
    ctx: typer.Context,
    candidate: Annotated[
        Path | None,
        typer.Option(
            "--candidate", help="Candidate reputable.toml to compare.", show_default=False
        ),
    ] = None,
    old_config: Annotated[
        Path | None,
        typer.Option("--config", hidden=True, help="Deprecated spelling of --candidate."),
    ] = None,
    now: NowOpt = None,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Compare a candidate policy with the live one on the stored evidence; change nothing.

    The live policy is the global --config (reputable --config LIVE policy simulate --candidate NEW).
    """
    fmt = output_format(as_json, plain)
    if old_config is not None:
        err_console.print(
            "warning: `policy simulate --config` is now `--candidate` (--config names the live"
            " config file, before the command)",
            markup=False,
            highlight=False,
        )
    candidate = candidate or old_config
    if candidate is None:
        raise InputError("policy simulate: give the candidate config with --candidate FILE")
    live_config = state(ctx).config
    cand_config = load_config(candidate)
    at = now_option(now)
    store = open_store(live_config)
    try:
        live = evaluate(
            store,
            live_config.policy,
            live_config.reputation,
            at,
            apply=False,
            prefixes=prefix_table(live_config),
        )
        cand = evaluate(
            store,
            cand_config.policy,
            cand_config.reputation,
            at,
            apply=False,
            prefixes=prefix_table(cand_config),
        )
    finally:
        store.close()

    def listed(outcome: Outcome) -> set[tuple[str, str]]:
        keys = {(d.target, d.cause.value) for d in outcome.decisions}
        keys |= {(n, "network") for n, e in outcome.escalations.items() if e}
        keys |= {(ip, d.cause.value) for ip, d in outcome.hosting.items() if d}
        return keys

    a, b = listed(live), listed(cand)
    would_list = [{"subject": s, "cause": c} for s, c in sorted(b - a)]
    would_delist = [{"subject": s, "cause": c} for s, c in sorted(a - b)]
    document = {
        "would_list": would_list,
        "would_delist": would_delist,
        "unchanged": len(a & b),
        "escalations": sorted(n for n, e in cand.escalations.items() if e),
    }
    records = [{"change": "list", **item} for item in would_list] + [
        {"change": "delist", **item} for item in would_delist
    ]
    show_records(
        fmt,
        records,
        ("change", "subject", "cause"),
        document=document,
        summary=f"candidate {candidate} vs live policy: {len(b - a)} more, {len(a - b)} fewer,"
        f" {len(a & b)} unchanged",
    )


def explain_command(
    ctx: typer.Context,
    subject: Annotated[str, typer.Argument(help="IP address, network or domain.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the documented JSON.")] = False,
    plain: Annotated[
        bool,
        typer.Option("--plain", help="Only its listings, one a line, tab-separated."),
    ] = False,
    now: NowOpt = None,
) -> None:
    """Explain a subject: listed?, since/until, why, evidence, network, collateral, how to fix it.

    Exits 1 when the subject is listed, 0 when it is not (as `check` does).
    """
    fmt = action_format(as_json, plain)
    config = state(ctx).config
    store = open_store(config, read_only=True)
    try:
        result = explain(store, config, subject, now_option(now))
    finally:
        store.close()
    if fmt is not Format.TABLE:
        document = result.to_json()
        if fmt is Format.JSON:
            print_json(document)
        else:
            columns = ("cause", "code", "since", "until", "reason", "source")
            for item in result.listings:
                typer.echo(plain_line({"subject": result.subject, **item}, ("subject", *columns)))
        if result.listed:
            raise typer.Exit(EXIT_FOUND)
        return
    _print_explained(result)
    if result.listed:
        raise typer.Exit(EXIT_FOUND)


def _print_explained(result: Explanation) -> None:
    """Print an explanation for a person."""
    verdict = "[red]LISTED[/red]" if result.listed else "[green]not listed[/green]"
    if result.allowlisted:
        verdict += " (allowlisted: DNS does not answer for it)"
    console.print(f"{result.subject}: {verdict}; reputation {result.score}/100 ({result.bucket})")
    for item in result.listings:
        console.print(
            f"  {item['cause']} ({item['code']}) since {item['since']} until {item['until'] or 'removed'}:"
            f" {item['reason']} [{item['source']}]; {item['ends']}",
            highlight=False,
            markup=False,
        )
    ev = result.evidence
    if ev["total"]:
        console.print(
            f"evidence: {ev['total']} pieces; "
            + ", ".join(
                f"{c}: {v['count']} (score {v['score']}, last {v['last']})"
                for c, v in ev["by_cause"].items()
            )
        )
    if result.network:
        n = result.network
        console.print(
            f"network {n['network']}: {n['listed_members']} listed members (escalates at {n['threshold']})"
            + ("; escalated" if n["escalated"] else "")
        )
    if result.collateral:
        console.print("domains on this address (collateral): " + ", ".join(result.collateral))
    if result.remediation:
        console.print("what to do:")
        for line in result.remediation:
            console.print(f"  - {line}", highlight=False)


@delist_app.command("request")
def delist_request(
    ctx: typer.Context,
    subject: Annotated[str, typer.Argument()],
    contact: Annotated[str, typer.Option("--contact", help="Email address for the answer.")],
    note: Annotated[str, typer.Option("--note", help="What you fixed.")] = "",
    now: NowOpt = None,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Ask for SUBJECT's removal; granted at once if nothing new was seen for the quiet period."""
    fmt = action_format(as_json, plain)
    config = state(ctx).config
    store = open_store(config)
    at = now_option(now)
    reprobes: list[dict[str, str]] = []
    still_listed = True
    try:
        result = request_removal(
            store, subject, contact=contact, note=note, params=config.policy, now=at
        )
        if result.status == "pending":
            reprobes, still_listed = _reprobe_now(store, config, result.subject, at)
    finally:
        store.close()
    record: dict[str, object] = {
        "id": result.request_id,
        "subject": result.subject,
        "status": result.status,
        "message": result.message,
    }
    if fmt is Format.JSON:
        print_json({**record, "reprobes": reprobes, "listed": still_listed})
        return
    show_result(fmt, record, f"request #{result.request_id} for {result.subject}: {result.message}")
    if fmt is Format.TABLE:
        for probe in reprobes:
            console.print(
                f"re-probe {probe['kind']} {probe['target']}: {probe['result']} - {probe['reason']}",
                markup=False,
                highlight=False,
            )
        if reprobes and not still_listed:
            console.print(f"{result.subject} is no longer listed", markup=False, highlight=False)


def _reprobe_now(
    store: SQLStore, config: Config, subject: str, at: datetime
) -> tuple[list[dict[str, str]], bool]:
    """Re-probe a probe-made listing a request waits on; end it at once if the fix holds.

    Returns the re-probes (kind, target, result, reason) and whether *subject* is still listed.
    """
    # Imported here: the probes pull in the resolver and SMTP code no other command needs.
    from reputable.evidence.sources.settings import parse_settings
    from reputable.listings.reprobe import reprobe_round

    settings = parse_settings(config.extra)
    every = config.policy.reprobe_every.total_seconds()
    results = asyncio.run(reprobe_round(store, settings, every, at, subjects=[subject]))
    done = [
        {"kind": p.kind, "target": p.target, "result": p.result, "reason": p.reason}
        for p in results
    ]
    if not results:
        return done, True
    evaluate(store, config.policy, config.reputation, at, targets=subject_names(subject))
    return done, bool(store.listings_where(subjects=subject_names(subject), active_at=at))


@delist_app.command("list")
def delist_list(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", help="pending, granted, denied or ended.")
    ] = "pending",
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """List removal requests (pending ones by default; --status '' for all)."""
    fmt = output_format(as_json, plain)
    store = open_store(state(ctx).config, read_only=True)
    try:
        settle_requests(store, now_option(None))
        rows = store.delist_requests(status=status or None)
    finally:
        store.close()
    data = [
        {
            "id": r.id,
            "subject": r.subject,
            "contact": r.contact,
            "note": r.note,
            "since": format_instant(r.created_at),
            "created_at": format_instant(r.created_at),
            "status": r.status,
            "decided_at": format_instant(r.decided_at),
            "decided_by": r.decided_by,
            "why": r.why,
        }
        for r in rows
    ]
    columns = ("id", "subject", "contact", "note", "since", "status")
    show_records(fmt, data, columns, summary=f"{len(data)} request(s)")


@delist_app.command("approve")
def delist_approve(
    ctx: typer.Context,
    request_id: Annotated[int, typer.Argument()],
    why: Annotated[str, typer.Option("--why")] = "approved by operator",
    now: NowOpt = None,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Grant a pending request: the subject's listings end now."""
    fmt = action_format(as_json, plain)
    store = open_store(state(ctx).config)
    try:
        subject = decide_request(
            store, request_id, grant=True, by="operator", why=why, now=now_option(now)
        )
    finally:
        store.close()
    record = {"id": request_id, "subject": subject, "status": "granted", "why": why}
    show_result(fmt, record, f"request #{request_id} granted: {subject} delisted")


@delist_app.command("deny")
def delist_deny(
    ctx: typer.Context,
    request_id: Annotated[int, typer.Argument()],
    why: Annotated[str, typer.Option("--why", help="Told to the requester.")],
    now: NowOpt = None,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Deny a pending request, saying why."""
    fmt = action_format(as_json, plain)
    store = open_store(state(ctx).config)
    try:
        subject = decide_request(
            store, request_id, grant=False, by="operator", why=why, now=now_option(now)
        )
    finally:
        store.close()
    record = {"id": request_id, "subject": subject, "status": "denied", "why": why}
    show_result(fmt, record, f"request #{request_id} for {subject} denied: {why}")


def _hosting_pairs(
    lines: Iterable[tuple[int, str | None]], where: str
) -> tuple[list[tuple[str, str]], list[str]]:
    """Return the (ip, domain) pairs of "ip,domain" lines, and each bad line by number and why."""
    pairs: list[tuple[str, str]] = []
    errors: list[str] = []
    for lineno, line in lines:
        if line is None:
            why = f"line longer than {MAX_LINE_BYTES} bytes"
            errors.append(str(DataFileError(where, lineno, why)))
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            row = next(csv.reader([line]), [])
        except csv.Error as exc:
            errors.append(str(DataFileError(where, lineno, f"not a CSV line: {exc}")))
            continue
        if len(row) != 2:
            errors.append(
                str(DataFileError(where, lineno, f"need 2 fields ip,domain, got {len(row)}"))
            )
            continue
        try:
            if not looks_like_ip(row[0]):
                raise SubjectError(f"bad IP address {row[0].strip()[:80]!r}")
            pairs.append((str(parse_address(row[0])), parse_domain(row[1]).name))
        except SubjectError as exc:
            errors.append(str(DataFileError(where, lineno, str(exc))))
    return pairs, errors


@hosting_app.command("import")
def hosting_import(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help='CSV lines "ip,domain"; - reads standard input.')],
    strict: Annotated[
        bool, typer.Option("--strict", help="Store nothing if any line is bad (all or nothing).")
    ] = False,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Import the shared-hosting map; bad lines are reported, good ones land (exit 1 if any were
    bad; with --strict nothing lands and the exit is 2)."""
    fmt = action_format(as_json, plain)
    where = "<stdin>" if str(path) == "-" else str(path)
    try:
        if str(path) == "-":
            stream = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
            pairs, errors = _hosting_pairs(bounded_lines(stream), where)
        else:
            with path.open(encoding="utf-8", errors="replace") as handle:
                pairs, errors = _hosting_pairs(bounded_lines(handle), where)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    added = 0
    if not (strict and errors):
        store = open_store(state(ctx).config)
        try:
            added = store.add_hosting(pairs)
        finally:
            store.close()
    stored = "nothing stored (--strict)" if strict and errors else f"{added} new"
    _import_summary(
        fmt,
        {"path": where, "pairs": len(pairs), "stored": added, "bad": len(errors)},
        f"{where}: {len(pairs)} pairs read, {stored}, {len(errors)} bad lines",
        errors,
        EXIT_USAGE if strict else EXIT_FOUND,
    )

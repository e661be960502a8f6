"""`reputable list ...` and `reputable allow ...`: manual listings and the allowlist."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Annotated

import typer

from reputable.cli.common import (
    Format,
    JsonOpt,
    PlainOpt,
    action_format,
    err_console,
    now_option,
    output_format,
    show_records,
    show_result,
    state,
)
from reputable.config import Config
from reputable.core.address import Domain, Subject, format_subject, parse_subject
from reputable.core.cause import Cause, parse_cause
from reputable.core.clock import format_instant, parse_duration
from reputable.core.errors import InputError
from reputable.listings.model import AllowEntry, Batch, Listing
from reputable.listings.rules import check_removable, new_listing
from reputable.publication.exports.listing_json import write_listing_records
from reputable.store.dsn import open_store
from reputable.store.sqlite import RANGES, SQLStore

list_app = typer.Typer(help="Add, show and remove listings.", no_args_is_help=True)
allow_app = typer.Typer(
    help="The allowlist: subjects never listed (served on the allowlist zone).",
    no_args_is_help=True,
)

NowOpt = Annotated[str | None, typer.Option("--now", help="Evaluate at this ISO-8601 time.")]


def _cause(text: str) -> Cause:
    try:
        return parse_cause(text)
    except ValueError as exc:
        raise InputError(str(exc)) from exc


def code_of(config: Config, listing: Listing) -> str:
    """Return the DNS return code *listing* answers with."""
    zone = config.domain_zone if isinstance(listing.subject, Domain) else config.ip_zone
    return str(zone.codes[listing.cause])


def zone_of(config: Config, subject: Subject) -> str:
    """Return the name of the block zone that answers for *subject*."""
    return (config.domain_zone if isinstance(subject, Domain) else config.ip_zone).name


#: Columns of `list show` in table and plain output (JSON has every field).
LISTING_COLUMNS = ("subject", "cause", "code", "zone", "reason", "source", "since", "until")


def listing_json(config: Config, listing: Listing, match: str = "") -> dict[str, object]:
    """Return the documented JSON shape of one listing (docs/cli.md "Field names").

    ``listed_at``/``expires_at`` repeat ``since``/``until`` under the names this document
    used before the vocabulary was unified (and that the admin HTTP API still uses).
    """
    since = format_instant(listing.listed_at)
    until = format_instant(listing.expires_at)
    data: dict[str, object] = {
        "subject": listing.subject_text,
        "cause": listing.cause.value,
        "code": code_of(config, listing),
        "zone": zone_of(config, listing.subject),
        "reason": listing.reason,
        "source": listing.source,
        "since": since,
        "until": until,
        "listed_at": since,
        "expires_at": until,
    }
    if match:
        data["match"] = match
    return data


@dataclass(frozen=True, slots=True, kw_only=True)
class ListingQuery:
    """What `list show` asks for: a subject (exact, inside or covering), cause, source, time."""

    subject: Subject | None = None
    cause: Cause | None = None
    source: str | None = None
    active_at: datetime | None = None
    limit: int | None = None


def _source_matches(wanted: str | None, source: str) -> bool:
    """Return whether *source* is *wanted* or one of its sub-sources (``feed`` ⊇ ``feed:x``)."""
    return wanted is None or source == wanted or source.startswith(wanted + ":")


def _around(store: SQLStore, query: ListingQuery) -> Iterator[tuple[Listing, str]]:
    """Yield (listing, how it matches) for a subject: the exact one, those covering it, inside."""
    subject = query.subject
    at = query.active_at
    if isinstance(subject, Domain):
        exact = format_subject(subject)
        for item in store.listings_where(subjects=[exact], active_at=at):
            yield item, "exact"
        parents = [p.name for p in subject.parents()[1:]]
        for item in store.listings_where(subjects=parents, active_at=at) if parents else ():
            yield item, "covering"
        # A LIKE with a leading % scans the domain listings; '_' is a LIKE wildcard, so the
        # suffix is checked again here.
        for item in store.listings_where(like=f"%.{exact}", family=0, active_at=at):
            if item.subject_text.endswith("." + exact):
                yield item, "inside"
        return
    if subject is None:
        return
    text = format_subject(subject)
    for item in store.listings_where(subjects=[text], active_at=at):
        yield item, "exact"
    for item in store.listings_where(like=RANGES, family=subject.version, active_at=at):
        whole = item.subject
        if (
            not isinstance(whole, Domain)
            and whole.version == subject.version
            and whole != subject
            and subject.subnet_of(whole)  # type: ignore[arg-type]  # same family, checked above
        ):
            yield item, "covering"
    if subject.prefixlen < subject.max_prefixlen:
        # Listings inside a range: the family's listings are read and filtered here (the
        # store has no containment index), so this costs a scan of that family.
        for item in store.listings_where(family=subject.version, active_at=at):
            part = item.subject
            if (
                not isinstance(part, Domain) and part != subject and part.subnet_of(subject)  # type: ignore[arg-type]  # same family
            ):
                yield item, "inside"


def select_listings(store: SQLStore, query: ListingQuery) -> Iterator[tuple[Listing, str]]:
    """Yield the listings `list show` prints, each with how it matches the subject ('' for none).

    The one place `list show` reads the store: the cause and the active time are pushed into
    the store query; the source (``S`` or ``S:...``) and the limit are applied to the stream.
    """
    if query.subject is None:
        found: Iterable[tuple[Listing, str]] = (
            (item, "") for item in store.listings(cause=query.cause, active_at=query.active_at)
        )
    else:
        found = (
            (item, match)
            for item, match in _around(store, query)
            if query.cause is None or item.cause is query.cause
        )
    wanted = ((item, m) for item, m in found if _source_matches(query.source, item.source))
    yield from islice(wanted, query.limit) if query.limit is not None else wanted


@list_app.command("add")
def list_add(
    ctx: typer.Context,
    subject: Annotated[str, typer.Argument(help="IPv4/IPv6 address or CIDR, or a domain.")],
    cause: Annotated[str, typer.Option("--cause", "-c", help="spam, harvest, compromised, ...")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Shown in TXT answers.")] = "",
    ttl: Annotated[str | None, typer.Option("--ttl", help="Expire after e.g. 7d, 12h.")] = None,
    source: Annotated[str, typer.Option("--source", help="Who decided this.")] = "cli",
    force: Annotated[
        bool, typer.Option("--force", help="Allow ranges broader than the max.")
    ] = False,
    now: NowOpt = None,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """List SUBJECT for CAUSE (a listed domain covers its subdomains)."""
    from reputable.app import limits  # the composition root: only when it is needed

    fmt = action_format(as_json, plain)
    config = state(ctx).config
    listing = new_listing(
        parse_subject(subject),
        _cause(cause),
        reason=reason,
        source=source,
        now=now_option(now),
        ttl=parse_duration(ttl) if ttl else None,
        limits=limits(config),
        force=force,
    )
    store = open_store(config)
    try:
        store.apply(Batch(listings=(listing,)), actor=source, action="list")
    finally:
        store.close()
    until = format_instant(listing.expires_at) or "removed"
    show_result(
        fmt,
        listing_json(config, listing),
        f"listed {listing.subject_text} for {listing.cause.value}"
        f" ({code_of(config, listing)}) until {until}",
        LISTING_COLUMNS,
    )


@list_app.command("show")
def list_show(
    ctx: typer.Context,
    subject: Annotated[
        str | None,
        typer.Argument(
            help="Only this address, CIDR or domain: its own listing, the ranges (or parent"
            " domains) covering it, and the listings inside it; `match` says which.",
            show_default=False,
        ),
    ] = None,
    cause: Annotated[str | None, typer.Option("--cause", "-c", help="Only this cause.")] = None,
    source: Annotated[
        str | None,
        typer.Option("--source", help="Only this source (S matches S and S:anything)."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Print at most N listings.")
    ] = None,
    expired: Annotated[bool, typer.Option("--expired", help="Include expired listings.")] = False,
    old_all: Annotated[
        bool, typer.Option("--all", hidden=True, help="Deprecated spelling of --expired.")
    ] = False,
    now: NowOpt = None,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Show listings (active ones unless --expired); exit 0 even when none matches."""
    fmt = output_format(as_json, plain)
    if old_all:
        err_console.print(
            "warning: `list show --all` is now `--expired` (--all is going away)",
            markup=False,
            highlight=False,
        )
    query = ListingQuery(
        subject=parse_subject(subject) if subject is not None else None,
        cause=_cause(cause) if cause else None,
        source=source,
        active_at=None if expired or old_all else now_option(now),
        limit=limit,
    )
    config = state(ctx).config
    store = open_store(config, read_only=True)
    if fmt is Format.JSON and subject is None and source is None and limit is None:
        # Streamed: one listing at a time, flat memory at any size (the same text as below).
        try:
            write_listing_records(
                sys.stdout,
                store.iter_listings(
                    cause=query.cause.value if query.cause else None, active_at=query.active_at
                ),
                config.ip_zone.codes,
                config.domain_zone.codes,
                (config.ip_zone.name, config.domain_zone.name),
            )
        finally:
            store.close()
        return
    try:
        rows = [listing_json(config, item, match) for item, match in select_listings(store, query)]
    finally:
        store.close()
    columns = (*LISTING_COLUMNS, "match") if subject is not None else LISTING_COLUMNS
    show_records(fmt, rows, columns, summary=f"{len(rows)} listing(s)", hide=("code", "zone"))


@list_app.command("remove")
def list_remove(
    ctx: typer.Context,
    subject: Annotated[str, typer.Argument(help="Exactly as listed: address, CIDR or domain.")],
    cause: Annotated[str | None, typer.Option("--cause", "-c", help="Only this cause.")] = None,
    source: Annotated[str | None, typer.Option("--source", help="Only this source.")] = None,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Remove the listings of SUBJECT (exit 2 when it is not listed as exactly that)."""
    fmt = action_format(as_json, plain)
    parsed = parse_subject(subject)
    check_removable(parsed)
    store = open_store(state(ctx).config)
    try:
        count = store.remove_listings(
            parsed, cause=_cause(cause) if cause else None, source=source, actor="cli"
        )
    finally:
        store.close()
    if not count:
        raise InputError(
            f"{subject} is not listed (as exactly that subject); see `reputable list show {subject}`"
        )
    record = {"subject": format_subject(parsed), "removed": count}
    show_result(fmt, record, f"removed {count} listing(s) of {subject}")


ALLOW_COLUMNS = ("subject", "note", "source", "since", "until")


def allow_json(entry: AllowEntry) -> dict[str, object]:
    """Return the documented JSON shape of one allowlist entry (created_at/expires_at: aliases)."""
    since = format_instant(entry.created_at)
    until = format_instant(entry.expires_at)
    return {
        "subject": entry.subject_text,
        "note": entry.note,
        "source": entry.source,
        "since": since,
        "until": until,
        "created_at": since,
        "expires_at": until,
    }


@allow_app.command("add")
def allow_add(
    ctx: typer.Context,
    subject: Annotated[str, typer.Argument(help="Address, CIDR or domain never to list.")],
    note: Annotated[str, typer.Option("--note", help="Why; shown on the allowlist zone.")] = "",
    ttl: Annotated[str | None, typer.Option("--ttl", help="Expire after e.g. 30d.")] = None,
    now: NowOpt = None,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Allowlist SUBJECT: it is never listed, whatever range around it is."""
    fmt = action_format(as_json, plain)
    parsed = parse_subject(subject)
    at = now_option(now)
    entry = AllowEntry(
        subject=parsed,
        note=note or "allowlisted",
        source="cli",
        created_at=at,
        expires_at=at + parse_duration(ttl) if ttl else None,
    )
    store = open_store(state(ctx).config)
    try:
        store.apply(Batch(allows=(entry,)), actor="cli", action="allow")
    finally:
        store.close()
    show_result(fmt, allow_json(entry), f"allowlisted {entry.subject_text}", ALLOW_COLUMNS)


@allow_app.command("remove")
def allow_remove(
    ctx: typer.Context,
    subject: Annotated[str, typer.Argument(help="Exactly as allowlisted.")],
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Remove SUBJECT from the allowlist (exit 2 when it is not on it)."""
    fmt = action_format(as_json, plain)
    parsed = parse_subject(subject)
    store = open_store(state(ctx).config)
    try:
        count = store.remove_allow(parsed, actor="cli")
    finally:
        store.close()
    if not count:
        raise InputError(f"{subject} is not on the allowlist; see `reputable allow show`")
    record = {"subject": format_subject(parsed), "removed": count}
    show_result(fmt, record, f"removed {subject} from the allowlist")


@allow_app.command("show")
def allow_show(ctx: typer.Context, as_json: JsonOpt = False, plain: PlainOpt = False) -> None:
    """Show the allowlist."""
    fmt = output_format(as_json, plain)
    store = open_store(state(ctx).config, read_only=True)
    try:
        rows = [allow_json(r) for r in store.allows()]
    finally:
        store.close()
    show_records(fmt, rows, ALLOW_COLUMNS, summary=f"{len(rows)} allowlist entries")

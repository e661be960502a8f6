"""`reputable list ...` and `reputable allow ...`: manual listings and the allowlist."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from reputable.app import limits, open_store
from reputable.cli.common import console, now_option, print_json, state
from reputable.config import Config
from reputable.core.address import Domain, parse_subject
from reputable.core.cause import Cause, parse_cause
from reputable.core.clock import format_instant, parse_duration
from reputable.core.errors import InputError
from reputable.listings.model import AllowEntry, Batch, Listing
from reputable.listings.rules import check_removable, new_listing
from reputable.publication.exports.listing_json import write_listing_records

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


def listing_json(config: Config, listing: Listing) -> dict[str, object]:
    """Return the documented JSON shape of one listing."""
    return {
        "subject": listing.subject_text,
        "cause": listing.cause.value,
        "code": code_of(config, listing),
        "reason": listing.reason,
        "source": listing.source,
        "listed_at": format_instant(listing.listed_at),
        "expires_at": format_instant(listing.expires_at),
    }


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
) -> None:
    """List SUBJECT for CAUSE (a listed domain covers its subdomains)."""
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
    console.print(
        f"listed {listing.subject_text} for {listing.cause.value}"
        f" ({code_of(config, listing)}) until {until}"
    )


@list_app.command("show")
def list_show(
    ctx: typer.Context,
    cause: Annotated[str | None, typer.Option("--cause", "-c", help="Only this cause.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
    include_expired: Annotated[
        bool, typer.Option("--all", help="Include expired listings.")
    ] = False,
    now: NowOpt = None,
) -> None:
    """Show listings (active ones unless --all)."""
    config = state(ctx).config
    store = open_store(config, read_only=True)
    if as_json:  # streamed: one listing at a time, flat memory at any size
        try:
            at = None if include_expired else now_option(now)
            wanted = _cause(cause).value if cause else None
            ip, dom = config.ip_zone.codes, config.domain_zone.codes
            write_listing_records(
                sys.stdout, store.iter_listings(cause=wanted, active_at=at), ip, dom
            )
        finally:
            store.close()
        return
    try:
        rows = list(
            store.listings(
                cause=_cause(cause) if cause else None,
                active_at=None if include_expired else now_option(now),
            )
        )
    finally:
        store.close()
    table = Table("subject", "cause", "code", "reason", "source", "listed", "expires")
    for r in rows:
        table.add_row(
            r.subject_text,
            r.cause.value,
            code_of(config, r),
            r.reason,
            r.source,
            format_instant(r.listed_at),
            format_instant(r.expires_at) or "-",
        )
    console.print(table)
    console.print(f"{len(rows)} listing(s)")


@list_app.command("remove")
def list_remove(
    ctx: typer.Context,
    subject: Annotated[str, typer.Argument(help="Exactly as listed: address, CIDR or domain.")],
    cause: Annotated[str | None, typer.Option("--cause", "-c", help="Only this cause.")] = None,
    source: Annotated[str | None, typer.Option("--source", help="Only this source.")] = None,
) -> None:
    """Remove the listings of SUBJECT."""
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
            f"{subject} is not listed (as exactly that subject); see `reputable list show`"
        )
    console.print(f"removed {count} listing(s) of {subject}")


@allow_app.command("add")
def allow_add(
    ctx: typer.Context,
    subject: Annotated[str, typer.Argument(help="Address, CIDR or domain never to list.")],
    note: Annotated[str, typer.Option("--note", help="Why; shown on the allowlist zone.")] = "",
    ttl: Annotated[str | None, typer.Option("--ttl", help="Expire after e.g. 30d.")] = None,
    now: NowOpt = None,
) -> None:
    """Allowlist SUBJECT: it is never listed, whatever range around it is."""
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
    console.print(f"allowlisted {entry.subject_text}")


@allow_app.command("remove")
def allow_remove(ctx: typer.Context, subject: Annotated[str, typer.Argument()]) -> None:
    """Remove SUBJECT from the allowlist."""
    store = open_store(state(ctx).config)
    try:
        count = store.remove_allow(parse_subject(subject), actor="cli")
    finally:
        store.close()
    if not count:
        raise InputError(f"{subject} is not on the allowlist")
    console.print(f"removed {subject} from the allowlist")


@allow_app.command("show")
def allow_show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """Show the allowlist."""
    store = open_store(state(ctx).config, read_only=True)
    try:
        rows = list(store.allows())
    finally:
        store.close()
    data = [
        {
            "subject": r.subject_text,
            "note": r.note,
            "source": r.source,
            "created_at": format_instant(r.created_at),
            "expires_at": format_instant(r.expires_at),
        }
        for r in rows
    ]
    if as_json:
        print_json(data)
        return
    table = Table("subject", "note", "source", "created", "expires")
    for d in data:
        table.add_row(*(str(v or "-") for v in d.values()))
    console.print(table)

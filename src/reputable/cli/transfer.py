"""`reputable import ...` and `reputable export ...`: listings in and out in other formats."""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reputable.cli.common import (
    Format,
    JsonOpt,
    PlainOpt,
    action_format,
    err_console,
    now_option,
    print_json,
    show_result,
    state,
)
from reputable.config import Config, ZoneConfig
from reputable.core.address import Domain, IPNetwork, parse_subject
from reputable.core.cause import Cause, parse_cause
from reputable.core.clock import parse_duration
from reputable.core.errors import DataFileError, InputError, SnapshotError
from reputable.listings.imports import rbldnsd as rbldnsd_import
from reputable.listings.model import Listing
from reputable.listings.rules import Limits
from reputable.store.bulk import load_listings
from reputable.store.dsn import open_store

if TYPE_CHECKING:  # the exports' modules are imported by the export commands only
    from reputable.publication.sinks import Sink
    from reputable.publication.snapshot.view import Snapshot

import_app = typer.Typer(help="Read listings from other blocklist software.", no_args_is_help=True)
export_app = typer.Typer(
    help="Write the listings for other blocklist software.", no_args_is_help=True
)

ZoneOpt = Annotated[str, typer.Option("--zone", "-z", help="Our zone, e.g. bl.reputable.test.")]
NowOpt = Annotated[str | None, typer.Option("--now", help="Evaluate at this ISO-8601 time.")]


def register(app: typer.Typer) -> None:
    """Add the ``import`` and ``export`` command groups to *app*."""
    app.add_typer(import_app, name="import")
    app.add_typer(export_app, name="export")


def _zone(config: Config, name: str) -> tuple[ZoneConfig, bool]:
    """Return (zone, is the domain zone) for *name*; only block zones take listings."""
    wanted = name.strip(".").lower()
    if wanted == config.ip_zone.name:
        return config.ip_zone, False
    if wanted == config.domain_zone.name:
        return config.domain_zone, True
    raise InputError(
        f"--zone {name}: not a block zone of this configuration; use"
        f" {config.ip_zone.name} (IPv4/IPv6) or {config.domain_zone.name} (domains)"
    )


@import_app.command("rbldnsd")
def import_rbldnsd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="An rbldnsd data file.")],
    zone: ZoneOpt,
    kind: Annotated[
        str,
        typer.Option(
            "--type", help="ip4set, ip4trie, ip4tset, ip6trie, ip6tset, dnset; auto by zone."
        ),
    ] = "auto",
    cause: Annotated[
        str | None, typer.Option("--cause", "-c", help="Import every entry as this cause.")
    ] = None,
    ttl: Annotated[str | None, typer.Option("--ttl", help="Expire after e.g. 30d.")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Allow ranges broader than the max.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check the file, change nothing.")
    ] = False,
    now: NowOpt = None,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Import an rbldnsd data file in one transaction: a bad line applies nothing."""
    fmt = action_format(as_json, plain)
    config = state(ctx).config
    zone_config, domain = _zone(config, zone)
    forced: Cause | None = None
    if cause is not None:
        try:
            forced = parse_cause(cause)
        except ValueError as exc:
            raise InputError(str(exc)) from exc
    spec = rbldnsd_import.ImportSpec(
        path=str(file),
        kind=kind,
        zone=zone_config.name,
        domain=domain,
        codes=zone_config.codes,
        lookup_url=zone_config.lookup_url,
        now=now_option(now),
        # As reputable.app.limits; importing the composition root (asyncio, http.server, the
        # DNS worker) cost this command ~0.05 s CPU (session 6 round 2).
        limits=Limits(max_prefix_v4=config.max_prefix_v4, max_prefix_v6=config.max_prefix_v6),
        ttl=parse_duration(ttl) if ttl else None,
        cause=forced,
        force=force,
    )

    def progress(lines: int) -> None:
        err_console.print(f"\r{file}: {lines:,} lines read", end="", highlight=False)

    terminal = err_console.is_terminal
    # Streamed: the file is read twice (its `!` exclusions first, then the rows straight
    # into one store transaction), so memory stays flat however long the file is.
    excluded: list[IPNetwork | Domain] = []
    if _has_byte(file, b"!"):  # no "!" anywhere, no exclusion: the pre-pass is skipped
        with _lines(file) as lines:
            excluded = rbldnsd_import.exclusions(lines, spec)
    with _lines(file) as lines:
        rows = rbldnsd_import.Stream(
            lines, spec, excluded=excluded, progress=progress if terminal else None
        )
        if dry_run:
            for _ in rows:
                pass
        else:
            store = open_store(config)
            try:
                load_listings(
                    store,
                    rows.parts(),  # runs of bare hosts whole: one statement per chunk
                    actor=f"import:{file}",
                    action="import",
                    expected=file.stat().st_size // 16,
                )
            finally:
                store.close()
    if terminal and rows.count >= rbldnsd_import.PROGRESS_EVERY:
        err_console.print(f"\r{file}: {rows.count:,} listings{' ' * 12}", highlight=False)
    if fmt is not Format.JSON:
        for note in rows.notes[:20]:
            err_console.print(f"note: {note}", highlight=False, markup=False)
        if len(rows.notes) > 20:
            err_console.print(f"note: ... and {len(rows.notes) - 20} more", highlight=False)
    counts = f"{rows.count} listing(s)"  # exclusions are cut out of them
    record: dict[str, object] = {
        "path": str(file),
        "zone": zone_config.name,
        "listings": rows.count,
        "imported": not dry_run,
    }
    if fmt is Format.JSON:
        print_json({**record, "notes": list(rows.notes)})
    elif dry_run:
        show_result(fmt, record, f"{file}: {counts} would be imported into {zone_config.name}")
    else:
        show_result(fmt, record, f"imported {counts} from {file} into {zone_config.name}")


def _has_byte(file: Path, byte: bytes) -> bool:
    """True when *byte* occurs in *file* (read 1 MiB at a time: ~10 ms for 14 MB, where a
    pass over its lines costs ~0.6 s; an unreadable file is True, `_lines` words the error)."""
    try:
        with file.open("rb") as handle:
            while block := handle.read(1 << 20):
                if byte in block:
                    return True
    except OSError:
        return True
    return False


@contextmanager
def _lines(file: Path) -> Iterator[Iterator[str]]:
    """Open *file* as UTF-8 lines; unreadable or non-UTF-8 text becomes a clear error.

    The lines are the file object itself (a generator around it cost ~0.15 s per 1M lines):
    a decoding error raised anywhere in the ``with`` body is traced back to its line here.
    """
    try:
        handle = file.open(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {file}: {exc.strerror}") from exc
    try:
        with handle:
            yield handle
    except UnicodeDecodeError as exc:
        lineno = _first_bad_line(file)
        raise DataFileError(str(file), lineno, f"not UTF-8 text: {exc.reason}") from exc
    except OSError as exc:
        raise InputError(f"cannot read {file}: {exc.strerror}") from exc


def _first_bad_line(file: Path) -> int:
    """Return the number of the first line of *file* that is not UTF-8 (0 if none is)."""
    with file.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return lineno
    return 0


def _listing(row: tuple[str, int, str, str, str, float, float | None]) -> Listing:
    """Return a store row as a Listing."""
    subject, _, cause, reason, source, listed_at, expires_at = row
    return Listing(
        subject=parse_subject(subject),
        cause=Cause(cause),
        reason=reason,
        source=source,
        listed_at=datetime.fromtimestamp(listed_at, UTC),
        expires_at=None if expires_at is None else datetime.fromtimestamp(expires_at, UTC),
    )


@export_app.command("rbldnsd")
def export_rbldnsd(
    ctx: typer.Context,
    zone: ZoneOpt,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="FILE: the zone's ip4set (IP zone) or dnset (domain zone);"
            " IPv6 goes to FILE.<cause>.ip6trie.",
        ),
    ],
    now: NowOpt = None,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Write the zone as rbldnsd data files and print the rbldnsd arguments that load them."""
    from reputable.publication.exports import rbldnsd as rbldnsd_export

    fmt = action_format(as_json, plain)
    if str(output) == "-":
        raise InputError(
            "--output -: export rbldnsd writes files (the zone's data file and, for IPv6, one"
            " FILE.<cause>.ip6trie a cause), not standard output; give a file path"
        )
    config = state(ctx).config
    zone_config, domain = _zone(config, zone)
    at = now_option(now).astimezone(UTC)
    base = output.resolve()
    store = open_store(config, read_only=True)
    try:
        header = rbldnsd_export.Header(
            serial=store.serial(),
            nameservers=config.dns.nameservers,
            hostmaster=config.dns.hostmaster,
            negative_ttl=config.dns.negative_ttl,
        )
        if domain:
            export = rbldnsd_export.render(
                store.listings(active_at=at),
                store.allows(active_at=at),
                zone=zone_config,
                domain=domain,
                header=header,
            )
            paths = rbldnsd_export.write(export, base)
        else:  # IPv4 hosts streamed from the store: flat memory at millions of listings
            export = rbldnsd_export.write_ip_streamed(
                base,
                (_listing(row) for row in store.other_listing_rows(active_at=at)),
                store.allows(active_at=at),
                lambda: store.ip4_host_rows(active_at=at),
                zone=zone_config,
                header=header,
            )
            paths = [rbldnsd_export.dataset_path(base, d) for d in export.datasets]
    finally:
        store.close()
    for warning in export.warnings:
        err_console.print(f"warning: {warning}", highlight=False, markup=False)
    entries = sum(d.entries for d in export.datasets)
    holes = sum(d.exclusions for d in export.datasets)
    specs = rbldnsd_export.zone_specs(export, base)
    if fmt is Format.JSON:
        print_json(
            {
                "zone": export.zone,
                "paths": [str(p) for p in paths],
                "entries": entries,
                "exclusions": holes,
                "rbldnsd_zones": list(specs),
                "warnings": list(export.warnings),
            }
        )
        return
    if fmt is Format.PLAIN:
        for path in paths:
            typer.echo(str(path))
        return
    typer.echo(
        f"wrote {len(paths)} rbldnsd datasets for {export.zone}: {entries} entries,"
        f" {holes} exclusions"
    )
    typer.echo("load them with:")
    typer.echo("  rbldnsd -b 127.0.0.1/5300 -u rbldns " + " ".join(specs))


OutputOpt = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write here (atomically); stdout if absent.")
]
CausesOpt = Annotated[
    list[str] | None,
    typer.Option("--cause", "-c", help="Only listings of this cause (repeatable); all if absent."),
]


def _enforcement(
    ctx: typer.Context,
    sink: Sink,
    output: Path | None,
    causes: list[str] | None,
    now: str | None,
    fmt: Format = Format.TABLE,
) -> None:
    """Render *sink* from the store at *now*; write it to *output* or print it."""
    from reputable.publication.sinks import stream as stream_sink
    from reputable.publication.sinks import write_atomic_stream

    _summary_needs_output(fmt, output)
    config = state(ctx).config
    try:
        wanted = frozenset(parse_cause(c) for c in causes) if causes else None
    except ValueError as exc:
        raise InputError(f"--cause: {exc}") from exc
    sink = replace(sink, causes=wanted)
    at = now_option(now).astimezone(UTC)
    store = open_store(config, read_only=True)
    try:  # streamed from the store's cursors: flat memory at millions of listings
        pieces = stream_sink(sink, store, at)
        if output is None:
            for piece in pieces:
                sys.stdout.write(piece)
            sys.stdout.flush()
            return
        size = write_atomic_stream(output, pieces, make_folder=False)
    finally:
        store.close()
    record = {"path": str(output), "kind": sink.kind, "bytes": size}
    if fmt is Format.TABLE:
        err_console.print(f"wrote {output}", highlight=False, markup=False)
    else:
        show_result(fmt, record, "")


def _summary_needs_output(fmt: Format, output: Path | None) -> None:
    """Refuse --json/--plain when the export itself goes to stdout (they describe a file)."""
    if fmt is not Format.TABLE and (output is None or str(output) == "-"):
        raise InputError(
            f"--{fmt.value} describes the file written: use it with --output FILE (without"
            " --output the export itself is printed)"
        )


@export_app.command("nftables")
def export_nftables(
    ctx: typer.Context,
    output: OutputOpt = None,
    cause: CausesOpt = None,
    table: Annotated[str, typer.Option("--table", help="Our nftables table (inet).")] = "reputable",
    hook: Annotated[
        list[str] | None, typer.Option("--hook", help="input and/or forward [input].")
    ] = None,
    now: NowOpt = None,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Write an nft script: table inet TABLE with interval sets bl4/bl6 and drop chains.

    Load it with `nft -f FILE`: the table is replaced in one transaction.
    """
    from reputable.publication.sinks import Sink

    sink = Sink(kind="nftables", path=Path("-"), name=table, hooks=tuple(hook or ["input"]))
    _enforcement(ctx, sink, output, cause, now, action_format(as_json, plain))


@export_app.command("ipset")
def export_ipset(
    ctx: typer.Context,
    output: OutputOpt = None,
    cause: CausesOpt = None,
    name: Annotated[
        str, typer.Option("--name", help="Set name (IPv4; IPv6 is NAME6).")
    ] = "reputable",
    now: NowOpt = None,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Write an `ipset restore` file: hash:net sets NAME and NAME6, filled fresh and swapped.

    Use them with `iptables -I INPUT -m set --match-set NAME src -j DROP`.
    """
    from reputable.publication.sinks import Sink

    sink = Sink(kind="ipset", path=Path("-"), name=name)
    _enforcement(ctx, sink, output, cause, now, action_format(as_json, plain))


@export_app.command("rpz")
def export_rpz(
    ctx: typer.Context,
    output: OutputOpt = None,
    cause: CausesOpt = None,
    origin: Annotated[
        str, typer.Option("--origin", help="The policy zone's name.")
    ] = "rpz.reputable.test",
    now: NowOpt = None,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Write a Response Policy Zone: listed domains and addresses answer NXDOMAIN.

    Load it as an RPZ in Unbound, BIND or Knot Resolver (`reputable integrate unbound`).
    """
    from reputable.publication.sinks import Sink

    sink = Sink(kind="rpz", path=Path("-"), origin=origin.strip("."))
    _enforcement(ctx, sink, output, cause, now, action_format(as_json, plain))


def _current_snapshot(config: Config, serial: int, at: datetime) -> Snapshot | None:
    """Return serve's snapshot with its overlay when it answers for store *serial* at *at*."""
    from reputable.publication.snapshot.overlay import overlay_path
    from reputable.publication.snapshot.publish import FRESH, fingerprint, freshness
    from reputable.publication.snapshot.view import Snapshot

    path = config.snapshot_path
    if freshness(path, serial=serial, digest=fingerprint(config), now=at) != FRESH:
        return None
    try:
        snapshot = Snapshot(path)
    except SnapshotError:  # replaced or removed since: build a private one
        return None
    snapshot.attach_overlay(overlay_path(path))
    return snapshot if snapshot.effective_serial == serial else None


@export_app.command("zone")
def export_zone(
    ctx: typer.Context,
    zone: Annotated[
        str, typer.Option("--zone", "-z", help="One of our zones: IP, domain or allowlist.")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The master file to write ('-': stdout).")
    ],
    now: NowOpt = None,
    as_json: JsonOpt = False,
    plain: PlainOpt = False,
) -> None:
    """Write a zone as an RFC 1035 master file: the records a secondary gets by AXFR.

    Written as the zone is walked, in flat memory. Reads serve's snapshot when it answers for
    the store now (with its overlay); else (or with --now) builds a private one first.
    """
    from reputable.publication.exports import zone as zone_export
    from reputable.publication.sinks import write_atomic_stream
    from reputable.publication.snapshot.publish import publish
    from reputable.publication.snapshot.view import Snapshot

    fmt = action_format(as_json, plain)
    _summary_needs_output(fmt, output)
    config = state(ctx).config
    settings = {z.name: z for z in zone_export.zone_settings(config)}
    wanted = zone.strip(".").lower()
    if wanted not in settings:
        raise InputError(
            f"--zone {zone}: not a zone of this configuration; use {', '.join(settings)}"
        )
    at = now_option(now).astimezone(UTC)
    store = open_store(config, read_only=True)
    count = 0

    def counted(lines: Iterator[str]) -> Iterator[str]:
        nonlocal count
        for line in lines:
            count += 1
            yield line

    try:
        with tempfile.TemporaryDirectory(prefix="reputable-zone-") as folder:
            snapshot = _current_snapshot(config, store.serial(), at) if now is None else None
            if snapshot is None:
                private = dataclasses.replace(config, snapshot_path=Path(folder) / "zone.snapshot")
                publish(store, private, at)
                snapshot = Snapshot(private.snapshot_path)
            lines = counted(
                zone_export.master_file(
                    settings[wanted], zone_export.records(snapshot, settings[wanted])
                )
            )
            if str(output) == "-":
                for line in lines:
                    sys.stdout.write(line)
                sys.stdout.flush()
                return
            try:
                write_atomic_stream(output, lines, make_folder=False)
            except OSError as exc:
                raise InputError(f"cannot write {output}: {exc.strerror}") from exc
    finally:
        store.close()
    serial = snapshot.effective_serial
    record = {"path": str(output), "zone": wanted, "serial": serial, "records": count - 2}
    if fmt is Format.TABLE:
        err_console.print(
            f"wrote {output}: zone {wanted}, serial {serial}, {count - 2} records",
            highlight=False,
            markup=False,
        )
    else:
        show_result(fmt, record, "")

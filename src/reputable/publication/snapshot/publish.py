"""Keep the snapshot in step with the store: rebuild when serial, config or an expiry moves."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from reputable.core.errors import SnapshotError
from reputable.publication.ports import ListingSource
from reputable.publication.settings import PublicationConfig as Config
from reputable.publication.settings import ZoneConfig
from reputable.publication.snapshot.build import build
from reputable.publication.snapshot.layout import MappedFile, write_snapshot


def fingerprint(config: Config) -> str:
    """Return a digest of the configuration that shapes answers (zone codes, TXT URL)."""

    def zone(z: ZoneConfig) -> dict[str, object]:
        return {"codes": {c.value: str(a) for c, a in z.codes.items()}, "url": z.lookup_url}

    raw = json.dumps(
        {
            "ip": zone(config.ip_zone),
            "domain": zone(config.domain_zone),
            "allow": zone(config.allow_zone),
            # Format of the per-listing facts (cause, since, until, subject) beside each
            # answer: a snapshot written without them is stale, so serve rebuilds it.
            "facts": 1,
        },
        sort_keys=True,
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Published:
    """What one rebuild produced."""

    serial: int
    listings: int
    allows: int
    seconds: float
    path: Path


def stale(path: Path, *, serial: int, digest: str, now: datetime) -> bool:
    """True when the snapshot at *path* is missing or behind the store, config or clock."""
    try:
        header = MappedFile(path).header
    except SnapshotError:
        return True
    next_expiry = header.get("next_expiry")
    return (
        header.get("serial") != serial
        or header.get("fingerprint") != digest
        or (next_expiry is not None and next_expiry <= now.timestamp())
    )


def publish(source: ListingSource, config: Config, now: datetime) -> Published:
    """Build the snapshot of *source* at *now* and swap it into place atomically."""
    started = time.perf_counter()
    serial = source.serial()
    built = build(
        source.listing_rows(active_at=now),
        source.allow_rows(active_at=now),
        ip_zone=config.ip_zone,
        domain_zone=config.domain_zone,
        allow_zone=config.allow_zone,
        serial=serial,
        now=now,
    )
    built.header["fingerprint"] = fingerprint(config)
    write_snapshot(config.snapshot_path, built.header, built.sections)
    return Published(
        serial=serial,
        listings=int(str(built.header["listings"])),
        allows=int(str(built.header["allows"])),
        seconds=time.perf_counter() - started,
        path=config.snapshot_path,
    )

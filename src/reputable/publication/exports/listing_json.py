"""Listings as a JSON array, written one element at a time (`list show --json`).

The text is exactly ``json.dumps(list_of_items, indent=2, ensure_ascii=False)``, but no list
exists: each row becomes its object and is written before the next is read, so memory stays
flat for any number of listings (issue 16: 1M listings took 27 s and 2.9 GB as one list).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from ipaddress import IPv4Address
from json.encoder import encode_basestring  # C-backed (c_encode_basestring)
from typing import TextIO, TypeAlias

from reputable.core.cause import Cause
from reputable.core.clock import format_instant

#: (subject, family, cause, reason, source, listed_at, expires_at): the store's
#: ``iter_listings`` rows (store/sqlite_exports.py ListingRecord).
ListingRecord: TypeAlias = tuple[str, int, str, str, str, float, float | None]


def _instant(value: float | None) -> str | None:
    """Return a stored timestamp as ISO-8601 UTC with ``Z``."""
    return None if value is None else format_instant(datetime.fromtimestamp(value, UTC))


def record_json(
    row: ListingRecord,
    ip_codes: Mapping[Cause, IPv4Address],
    domain_codes: Mapping[Cause, IPv4Address],
    zones: tuple[str, str] = ("", ""),
) -> dict[str, object]:
    """Return the documented JSON shape of one listing row (cli/listing.py's listing_json).

    *zones* are the names of the IP and the domain zone. ``listed_at``/``expires_at`` repeat
    ``since``/``until`` (docs/cli.md "Field names").
    """
    subject, family, cause, reason, source, listed_at, expires_at = row
    codes = domain_codes if family == 0 else ip_codes
    since, until = _instant(listed_at), _instant(expires_at)
    return {
        "subject": subject,
        "cause": cause,
        "code": str(codes[Cause(cause)]),
        "zone": zones[1] if family == 0 else zones[0],
        "reason": reason,
        "source": source,
        "since": since,
        "until": until,
        "listed_at": since,
        "expires_at": until,
    }


def write_json_array(out: TextIO, items: Iterable[object]) -> int:
    """Write *items* to *out* as an indented JSON array, one at a time; return how many."""
    count = 0
    for item in items:
        text = json.dumps(item, indent=2, ensure_ascii=False).replace("\n", "\n  ")
        out.write(("[\n  " if count == 0 else ",\n  ") + text)
        count += 1
    out.write("\n]\n" if count else "[]\n")
    return count


def write_listing_records(
    out: TextIO,
    batches: Iterable[Iterable[ListingRecord]],
    ip_codes: Mapping[Cause, IPv4Address],
    domain_codes: Mapping[Cause, IPv4Address],
    zones: tuple[str, str] = ("", ""),
) -> int:
    """Write listing rows as `write_json_array` of `record_json` would, much faster.

    ``json.dumps(..., indent=2)`` runs the pure-Python encoder (the C one takes no indent):
    26 s of CPU for 1M listings here. The shape is fixed, so each object is formatted from
    C-encoded strings instead; tests/publication/exports/test_listing_json.py holds both
    texts equal.
    """
    enc = encode_basestring
    codes = {
        (family, cause.value): enc(str(code))
        for family, table in ((4, ip_codes), (0, domain_codes))
        for cause, code in table.items()
    }
    zone_text = {4: enc(zones[0]), 0: enc(zones[1])}
    count = 0
    for batch in batches:
        parts: list[str] = []
        for subject, family, cause, reason, source, listed_at, expires_at in batch:
            code = codes.get((4 if family else 0, cause))
            if code is None:  # a cause without a code in this configuration: say so plainly
                code = enc(str((domain_codes if family == 0 else ip_codes)[Cause(cause)]))
            since, until = _instant(listed_at), _instant(expires_at)
            since_text = "null" if since is None else enc(since)
            until_text = "null" if until is None else enc(until)
            parts.append(
                ("[\n  " if count == 0 else ",\n  ")
                + '{\n    "subject": '
                + enc(subject)
                + ',\n    "cause": '
                + enc(cause)
                + ',\n    "code": '
                + code
                + ',\n    "zone": '
                + zone_text[4 if family else 0]
                + ',\n    "reason": '
                + enc(reason)
                + ',\n    "source": '
                + enc(source)
                + ',\n    "since": '
                + since_text
                + ',\n    "until": '
                + until_text
                + ',\n    "listed_at": '
                + since_text
                + ',\n    "expires_at": '
                + until_text
                + "\n  }"
            )
            count += 1
        out.write("".join(parts))
    out.write("\n]\n" if count else "[]\n")
    return count

"""fail2ban bans: its SQLite database (``bans`` table) or ``fail2ban-client banned`` output.

The database (``dbfile`` in fail2ban.conf, e.g. /var/lib/fail2ban/fail2ban.sqlite3) keeps
every ban with its jail and time; a sync reads it through ``file://`` without touching
fail2ban. Schema of fail2ban 0.11 and later::

    CREATE TABLE bans(jail TEXT NOT NULL, ip TEXT, timeofban INTEGER NOT NULL,
                      bantime INTEGER NOT NULL, bancount INTEGER NOT NULL default 1, data JSON)

``fail2ban-client banned`` prints the current bans per jail as a Python literal, no times::

    [{'sshd': ['192.0.2.1', '192.0.2.2']}, {'postfix-sasl': []}]

Every ban is brute force or abuse from that address: ``compromised`` evidence with the jail.
"""

from __future__ import annotations

import ast
import sqlite3
from datetime import UTC, datetime
from ipaddress import ip_address
from typing import Any, Final

from reputable.core.cause import Cause
from reputable.evidence.parsers.feed_model import CsvMapping, EventEntry, FeedContent, Tally

NAME: Final = "fail2ban"
SQLITE_MAGIC: Final = b"SQLite format 3\x00"


def parse_bytes(data: bytes, mapping: CsvMapping) -> FeedContent:
    """Return the bans in *data*: a fail2ban SQLite database, or the client's text output."""
    if data.startswith(SQLITE_MAGIC):
        return parse_database(data)
    return parse(data.decode("utf-8", errors="replace"), mapping)


def parse_database(data: bytes) -> FeedContent:
    """Return one event per row of the ``bans`` table of the database image *data*."""
    tally = Tally()
    db = sqlite3.connect(":memory:")
    try:
        db.deserialize(data)
        rows = db.execute(
            "SELECT rowid, jail, ip, timeofban, bantime, bancount FROM bans ORDER BY rowid"
        ).fetchall()
    except sqlite3.Error as exc:
        tally.lines = 1
        tally.bad(1, "fail2ban database", f"{exc}; is it fail2ban's dbfile (0.11 or later)?")
        return tally.content()
    finally:
        db.close()
    events: list[EventEntry] = []
    for rowid, jail, ip, timeofban, bantime, bancount in rows:
        tally.lines += 1
        try:
            address = ip_address(str(ip))
            when = datetime.fromtimestamp(float(timeofban), UTC)
        except (ValueError, TypeError, OverflowError) as exc:
            tally.bad(rowid, f"{jail} {ip} {timeofban}", str(exc))
            continue
        detail = {"tool": "fail2ban", "jail": str(jail), "bantime": bantime, "bancount": bancount}
        events.append(
            EventEntry(address=address, cause=Cause.COMPROMISED, observed_at=when, detail=detail)
        )
    return tally.content(events=events)


def parse(text: str, mapping: CsvMapping) -> FeedContent:
    """Return one event per address in ``fail2ban-client banned`` output (no ban times)."""
    del mapping
    tally = Tally()
    stripped = text.strip()
    if not stripped:
        return tally.content()
    try:
        data: Any = ast.literal_eval(stripped)
    except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError) as exc:
        tally.lines = 1
        tally.bad(1, stripped, f"not `fail2ban-client banned` output: {exc}")
        return tally.content()
    jails: list[tuple[str, Any]] = []
    for item in data if isinstance(data, list) else [data]:
        if isinstance(item, dict):
            jails.extend(item.items())
        else:
            tally.lines += 1
            tally.bad(1, repr(item), "expected {'jail': [addresses]}")
    events: list[EventEntry] = []
    for jail, addresses in jails:
        for text_ip in addresses if isinstance(addresses, list) else [addresses]:
            tally.lines += 1
            try:
                address = ip_address(str(text_ip).strip())
            except ValueError:
                tally.bad(tally.lines, f"{jail}: {text_ip}", "not an IP address")
                continue
            detail = {"tool": "fail2ban", "jail": str(jail)}
            events.append(
                EventEntry(
                    address=address, cause=Cause.COMPROMISED, observed_at=None, detail=detail
                )
            )
    return tally.content(events=events)

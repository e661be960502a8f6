"""Log timestamps: syslog ``Mmm dd HH:MM:SS`` (no year), RFC 3339, and Exim's ``YYYY-MM-DD HH:MM:SS``.

A syslog timestamp has no year: it is placed in the latest year that makes it fall no later
than one day after the reference time (``--now`` when replaying old logs), so a log spanning
December and January read in January puts December in the previous year, and ``Feb 29`` goes
to the nearest leap year not after that. It is read in the configured time zone, each hour with
its own UTC offset (the days a zone changes to or from summer time included); in the hour a
zone repeats when it goes back, the first of the two is taken (syslog does not say which).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final

_MONTHS: Final = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
#: A syslog time may be this far after the reference time (clock skew) before it counts as last year.
SKEW: Final = timedelta(days=1)
_CACHE_LIMIT: Final = 200_000


class TimeParser:
    """Turns timestamp text into epoch seconds relative to a reference time, with a cache."""

    __slots__ = ("_cache", "_hours", "_limit", "_minutes", "now", "tz")

    def __init__(self, now: datetime, tz: tzinfo = UTC) -> None:
        self.now = now
        self.tz = tz
        self._limit = now + SKEW
        self._cache: dict[str, float | None] = {}
        self._hours: dict[str, float | None] = {}
        self._minutes: dict[str, float | None] = {}

    def __call__(self, text: str) -> float | None:
        """Return *text* (a syslog, RFC 3339 or Exim timestamp) as epoch seconds, or None."""
        if len(text) == 15 and text[12] == ":":
            # "Mmm dd HH:MM:SS": each second of a log is new, so cache its minute, not it.
            minute = self._minutes.get(text[:12], -1.0)
            if minute == -1.0:
                minute = self._minute(text[:12])
            if minute is not None and text[13:].isdigit():
                return minute + int(text[13:])
        elif len(text) == 19 and text[16] == ":" and text[10] == " ":
            # Exim's "YYYY-MM-DD HH:MM:SS" in the zone: its minute from a cache, as above
            # (bench/exim_scan.py: a busy log has a new second every few lines).
            head = text[:16]
            minute = self._minutes.get(head, -1.0)
            if minute == -1.0:
                minutes = self._minutes
                if len(minutes) > _CACHE_LIMIT:
                    minutes.clear()
                minute = minutes[head] = self._iso(head + ":00")
            if minute is not None and text[17:].isdigit():
                return minute + int(text[17:])
        cache = self._cache
        value = cache.get(text, -1.0)
        if value != -1.0:
            return value
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        value = cache[text] = self._parse(text)
        return value

    def _minute(self, head: str) -> float | None:
        """Return the start of the minute ``Mmm dd HH:MM`` (None when not of that shape)."""
        minutes = self._minutes
        if len(minutes) > _CACHE_LIMIT:
            minutes.clear()
        value = None
        if head[9] == ":" and head[7:9].isdigit() and head[10:12].isdigit():
            hour = self._hour(head[:9])
            if hour is not None:
                value = hour + int(head[10:12]) * 60
        minutes[head] = value
        return value

    def _hour(self, head: str) -> float | None:
        """Return the start of the hour ``Mmm dd HH`` in the time zone, from a cache.

        An hour, not a day: a day start plus hours is an hour off on the days the zone changes
        its offset (Europe/Berlin on 29 March 2026 from 02:00).
        """
        hours = self._hours
        value = hours.get(head, -1.0)
        if value == -1.0:
            if len(hours) > _CACHE_LIMIT:
                hours.clear()
            value = hours[head] = self._syslog_slow(head + ":00:00")
        return value

    def _parse(self, text: str) -> float | None:
        if text[:1].isdigit():
            return self._iso(text)
        return self._syslog(text)

    def _syslog(self, text: str) -> float | None:
        # Fast path for the common shape "Mmm dd HH:MM:SS": one datetime per hour, not per second.
        if len(text) == 15 and text[9] == ":" and text[12] == ":":
            hour = self._hour(text[:9])
            if hour is not None and text[10:12].isdigit() and text[13:].isdigit():
                return hour + int(text[10:12]) * 60 + int(text[13:])
        return self._syslog_slow(text)

    def _syslog_slow(self, text: str) -> float | None:
        parts = text.split()
        if len(parts) != 3 or parts[0] not in _MONTHS:
            return None
        try:
            day = int(parts[1])
            hh, mm, ss = (int(p) for p in parts[2].split(".")[0].split(":"))
        except ValueError:
            return None
        month = _MONTHS[parts[0]]
        # The latest year in which the date exists and its day begins no later than the limit
        # (the rule of the per-day cache above): this year or the last for most dates; for
        # 29 Feb the nearest leap year (at most 8 years back).
        for year in range(self._limit.year + 1, self._limit.year - 9, -1):
            try:
                at = datetime(year, month, day, hh, mm, ss, tzinfo=self.tz)
            except ValueError:  # 29 Feb in a non-leap year, 30 Feb, 25:00:00, ...
                continue
            if at.replace(hour=0, minute=0, second=0) <= self._limit:
                return at.timestamp()
        return None

    def _iso(self, text: str) -> float | None:
        raw = text.replace(" ", "T", 1) if "T" not in text else text
        raw = raw.replace(" ", "")
        if raw.endswith(("Z", "z")):
            raw = raw[:-1] + "+00:00"
        try:
            at = datetime.fromisoformat(raw)
        except ValueError:
            return None
        if at.tzinfo is None:
            at = at.replace(tzinfo=self.tz)
        return at.timestamp()

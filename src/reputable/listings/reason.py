"""Listing reasons (pure): what was seen, in words an outside admin reads in a bounce.

``spam: 37 spam-trap hits, 2 complaints, 2026-12-01..12-04``. A reason stays under
:data:`MAX_REASON` bytes (ASCII), well inside one TXT character-string (255 bytes, RFC 1035
§3.3) with the zone's lookup URL appended.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

from reputable.core.cause import Cause

MAX_REASON: Final = 160

#: Evidence labels (a detector name, else the source's kind before ":") in words: (one, many).
_WORDS: Final[Mapping[str, tuple[str, str]]] = {
    "spam_trap": ("spam-trap hit", "spam-trap hits"),
    "volume_spike": ("volume spike", "volume spikes"),
    "harvest": ("unknown-recipient burst", "unknown-recipient bursts"),
    "dirty_list": ("bounce burst", "bounce bursts"),
    "brute_force": ("brute-force burst", "brute-force bursts"),
    "arf": ("complaint", "complaints"),
    "fbl": ("complaint", "complaints"),
    "complaint": ("complaint", "complaints"),
    "report": ("abuse report", "abuse reports"),
    "probe:relay": ("open-relay probe finding", "open-relay probe findings"),
    "probe:proxy": ("open-proxy probe finding", "open-proxy probe findings"),
    "probe:rdns": ("reverse-DNS check", "reverse-DNS checks"),
    "feed": ("feed report", "feed reports"),
    "netlog": ("firewall/auth log event", "firewall/auth log events"),
    "maillog": ("mail log event", "mail log events"),
    "traps": ("spam-trap hit", "spam-trap hits"),
    "cli": ("operator report", "operator reports"),
}

_CAUSE_WORDS: Final[Mapping[Cause, str]] = {
    Cause.SPAM: "spam",
    Cause.HARVEST: "address harvesting",
    Cause.COMPROMISED: "compromised host",
    Cause.OPEN_RELAY: "open relay",
    Cause.OPEN_PROXY: "open proxy",
    Cause.MALWARE_HOST: "malware hosting",
    Cause.RDNS: "reverse DNS",
    Cause.MANUAL: "operator decision",
}


@functools.lru_cache(maxsize=4096)
def label_words(label: str) -> str:
    """Return the plural noun for evidence *label* (detector name or source)."""
    if label in _WORDS:
        return _WORDS[label][1]
    kind = label.split(":", 1)[0]
    if kind in _WORDS:
        return _WORDS[kind][1]
    if kind == "probe":
        return "probe findings"
    return f"reports from {kind[:24]}"


#: Plural -> singular of the known labels' words.
_ONE: Final[Mapping[str, str]] = {many: one for one, many in _WORDS.values()}


def _counted(words: str, n: int) -> str:
    if n == 1:
        words = _ONE.get(words) or words.replace("reports from", "report from").replace(
            "probe findings", "probe finding"
        )
    return f"{n} {words}"


def _span(first: float, last: float) -> str:
    return _day_span(int(first // _DAY), int(last // _DAY))


_DAY: Final = 86400


@functools.lru_cache(maxsize=4096)
def _day_span(first: int, last: int) -> str:
    """Return the dates of UTC days *first*..*last* (days since the epoch) as a reason shows them.

    Cached: the thousands of reasons an evaluation writes span a few dozen distinct days.
    """
    a = datetime.fromtimestamp(first * _DAY, UTC)
    b = datetime.fromtimestamp(last * _DAY, UTC)
    if a.date() == b.date():
        return a.strftime("%Y-%m-%d")
    if a.year == b.year:
        return f"{a:%Y-%m-%d}..{b:%m-%d}"
    return f"{a:%Y-%m-%d}..{b:%Y-%m-%d}"


def evidence_reason(cause: Cause, labels: Counter[str], first: float, last: float) -> str:
    """Return the reason of a listing of *cause* made by evidence counted per label."""
    by_words: Counter[str] = Counter()
    for label, n in labels.items():
        by_words[label_words(label)] += n
    # Most first; equal counts in word order, so the text does not depend on row order.
    ranked = sorted(by_words.items(), key=_rank)
    parts = [_counted(words, n) for words, n in ranked]
    shown = parts[:3]
    if len(parts) > 3:
        shown.append(f"{sum(n for _, n in ranked[3:])} more")
    head = f"{_CAUSE_WORDS.get(cause, cause.value)}: "
    text = head + ", ".join(shown) + ", " + _span(first, last)
    if not text.isascii():
        text = text.encode("ascii", "replace").decode("ascii")
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def _rank(item: tuple[str, int]) -> tuple[int, str]:
    return -item[1], item[0]


def reason_count(reason: str) -> int | None:
    """Return how many pieces of evidence a reason made by :func:`evidence_reason` counts."""
    _, _, body = reason.partition(": ")
    parts = body.split(", ")[:-1]  # the last part is the dates
    try:
        return sum(int(part.split(" ", 1)[0]) for part in parts) if parts else None
    except ValueError:
        return None

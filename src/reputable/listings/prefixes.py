"""Opt-in escalation of whole announced prefixes (``[policy] escalate_prefix`` with ``pfx2as``).

When at least ``escalate_prefix`` addresses (or IPv6 /64s) inside one announced prefix are
listed for an escalating cause, the prefix is listed with cause ``network`` and source
``policy:prefix:<prefix>``; its reason names the origin ASN(s). It lasts until fewer remain.
The allowlist still wins in DNS: an allowlisted address inside is cut out by the snapshot.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Collection
from datetime import datetime

from reputable.core.cause import Cause
from reputable.listings.allowlist import Allowlist
from reputable.listings.escalation import is_ip
from reputable.listings.policy import Decision, Escalation, ListingRow, PolicyParams, escalate
from reputable.listings.ports import PolicyStore
from reputable.reputation.aggregate import PrefixTable

PREFIX_SOURCE = "policy:prefix"


def _announced(table: PrefixTable, text: str) -> tuple[str, tuple[int, ...]] | None:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    found = table.lookup(net)
    return None if found is None else (str(found.prefix), found.asns)


def prefix_escalations(
    store: PolicyStore,
    table: PrefixTable,
    policy: PolicyParams,
    allow: Allowlist,
    decided: dict[tuple[str, Cause], Decision],
    chosen: Collection[str],
    now_dt: datetime,
    *,
    full: bool,
    own_source: str,
) -> tuple[dict[str, Escalation | None], list[tuple[str, str, float, float | None, str]]]:
    """Return the re-decided prefixes and their stored listings (subject, reason, listed_at, until, source)."""
    now = now_dt.timestamp()
    touched: dict[str, tuple[int, ...]] = {}
    for target in chosen:
        if is_ip(target) and (found := _announced(table, target)) is not None:
            touched[found[0]] = found[1]
    stored = list(store.source_rows(PREFIX_SOURCE, active_at=now_dt))
    if full:
        for _, source, _, _, _ in stored:
            prefix = source.split(":", 2)[2]
            found = _announced(table, prefix)
            touched.setdefault(prefix, found[1] if found else ())
    if not touched:
        return {}, []
    members: dict[str, dict[str, float]] = {p: {} for p in touched}
    causes = sorted(c.value for c in policy.escalate_causes)
    for text, family, source, expires_at in store.escalation_rows(causes, active_at=now_dt):
        if (
            family == 0
            or (family == 4 and "/" in text)
            or (family == 6 and not text.endswith("/64"))
        ):
            continue
        if source == own_source and text in chosen:
            continue  # re-decided this round
        found = _announced(table, text)
        if found is not None and found[0] in members:
            until = expires_at if expires_at is not None else float("inf")
            members[found[0]][text] = max(members[found[0]].get(text, 0.0), until)
    for (target, cause), decision in decided.items():
        if cause in policy.escalate_causes and is_ip(target):
            found = _announced(table, target)
            if found is not None and found[0] in members:
                mine = members[found[0]]
                mine[target] = max(mine.get(target, 0.0), decision.expires_at)
    results: dict[str, Escalation | None] = {}
    for prefix, asns in touched.items():
        result = None
        if not allow.covers(prefix):
            result = escalate(
                prefix, members[prefix], (), threshold=policy.escalate_prefix, now=now
            )
        if result is not None:
            origin = ", ".join(f"AS{a}" for a in asns) or "unknown origin"
            result = Escalation(
                result.network,
                result.cidrs,
                result.members,
                result.carved,
                result.expires_at,
                f"announced prefix of {origin}: {result.reason}",
            )
        results[prefix] = result
    return results, [(s, why, listed, until, src) for s, src, why, listed, until in stored]


def prefix_changes(
    results: dict[str, Escalation | None],
    stored: list[tuple[str, str, float, float | None, str]],
    now: float,
    make: Callable[[str, Cause, str, str, float, float], ListingRow],
) -> tuple[list[ListingRow], list[tuple[str | None, str]]]:
    """Return the listings to write and the sources to drop for *results* (unchanged ones stay)."""
    by_source: dict[str, list[tuple[str, str, float, float | None, str]]] = {}
    for row in stored:
        by_source.setdefault(row[4], []).append(row)
    upserts: list[ListingRow] = []
    drops: list[tuple[str | None, str]] = []
    for prefix, result in results.items():
        source = f"{PREFIX_SOURCE}:{prefix}"
        old = by_source.get(source, [])
        if result is None:
            if old:
                drops.append((None, source))
            continue
        if (
            len(old) == 1
            and old[0][1] == result.reason
            and old[0][3] is not None
            and abs(old[0][3] - result.expires_at) < 1
        ):
            continue
        since = min((row[2] for row in old), default=now)
        drops.append((None, source))
        upserts.append(make(prefix, Cause.NETWORK, result.reason, source, since, result.expires_at))
    return upserts, drops

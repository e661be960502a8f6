"""IPs and the domains on them: shared-hosting IPs listed for their sites, sending domains
listed for their IPs (the I/O around policy.hosting_decision and senders.decide_senders)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from reputable.core.cause import Cause
from reputable.listings.allowlist import Allowlist
from reputable.listings.escalation import is_ip
from reputable.listings.model import Listing
from reputable.listings.policy import Decision, ListingRow, PolicyParams, hosting_decision
from reputable.listings.ports import PolicyStore
from reputable.listings.rows import differs, listing_row, listings_of, moved
from reputable.listings.senders import SOURCE as SENDERS
from reputable.listings.senders import decide_senders, spam_listings

SOURCE = "policy"
HOSTING_SOURCE = "policy:hosting"

Decided = dict[tuple[str, Cause], Decision]


def decide_hosting(
    store: PolicyStore,
    policy: PolicyParams,
    allow: Allowlist,
    decided: Decided,
    chosen: Collection[str],
    now_dt: datetime,
    full: bool,
    results: dict[str, Decision | None],
    upserts: list[ListingRow],
    drops: list[tuple[str | None, str]],
) -> None:
    """Re-decide the shared-hosting IPs whose domains are among *chosen* (all of them if *full*)."""
    now = now_dt.timestamp()
    domains = {t for t in chosen if not is_ip(t)}
    hosting_ips = store.ips_of(domains) if domains else set()
    if full:
        hosting_ips |= {
            item.subject_text for item in store.listings_where(source_prefix=HOSTING_SOURCE)
        }
    if not hosting_ips:
        return
    on = store.domains_on(hosting_ips)
    all_domains = {d for ds in on.values() for d in ds}
    listed, starts = _listed_domains(store, all_domains, decided, chosen, now_dt)
    olds: dict[str, list[Listing]] = {}
    for item in listings_of(store, hosting_ips, source_prefix=HOSTING_SOURCE, active_at=now_dt):
        olds.setdefault(item.subject_text, []).append(item)
    for ip in sorted(hosting_ips):
        mine = {d: listed[d] for d in on.get(ip, ()) if d in listed}
        decision = (
            None
            if allow.covers(ip)
            else hosting_decision(
                ip, mine, threshold=policy.hosting_domains, now=now, starts=starts
            )
        )
        results[ip] = decision
        # The order one query per IP returned them in: its (subject, cause, source) index.
        old = sorted(olds.get(ip, ()), key=lambda item: (item.cause.value, item.source))
        if decision is None:
            if old:
                drops.append((ip, HOSTING_SOURCE))
        elif not old or old[0].cause is not decision.cause or differs(old[0], decision):
            drops.append((ip, HOSTING_SOURCE))
            upserts.append(
                listing_row(
                    ip,
                    decision.cause,
                    decision.reason,
                    HOSTING_SOURCE,
                    decision.listed_at,
                    decision.expires_at,
                )
            )


def decide_sending_domains(
    store: PolicyStore,
    policy: PolicyParams,
    allow: Allowlist,
    decided: Decided,
    spammers: Collection[str] | None,
    chosen: Collection[str],
    now: float,
    upserts: list[ListingRow],
    drops: list[tuple[str | None, str]],
) -> None:
    """Re-decide the domains named in the spam of *spammers* (None: all of them, a full run)."""
    full = spammers is None
    if spammers is not None and not spammers:
        return
    senders = store.spam_senders(spammers)
    domains = set(senders)
    if full:
        domains |= {item.subject_text for item in store.listings_where(source_prefix=SENDERS)}
    if not domains:
        return
    ips = {ip for found in senders.values() for ip in found}
    listed = spam_listings(decided, list(store.own_rows(ips, source=SOURCE, active_at=now)), chosen)
    olds = {
        subject: (reason, listed_at, until)
        for subject, _, reason, listed_at, until in store.own_rows(
            domains, source=SENDERS, active_at=now
        )
    }
    for domain in sorted(domains):
        found = senders.get(domain, set())
        result = (
            None
            if allow.covers(domain)
            else decide_senders(domain, found, listed, threshold=policy.domain_senders, now=now)
        )
        old = olds.get(domain)
        if result is None:
            if old is not None:
                drops.append((domain, SENDERS))
            continue
        as_decision = Decision(
            domain, Cause.SPAM, result.since, result.since, result.until, result.reason
        )
        if old is None or moved(old, as_decision):
            upserts.append(
                listing_row(domain, Cause.SPAM, result.reason, SENDERS, result.since, result.until)
            )


def _listed_domains(
    store: PolicyStore,
    domains: set[str],
    decided: Decided,
    chosen: Collection[str],
    now_dt: datetime,
) -> tuple[dict[str, tuple[Cause, float]], dict[str, float]]:
    """Return listed domains -> (cause, expiry) and -> since, this round's decisions first."""
    out: dict[str, tuple[Cause, float]] = {}
    starts: dict[str, float] = {}
    causes = {c.value: c for c in Cause}
    # Plain rows, not Listing objects; times through datetime as a Listing carries them.
    for subject, cause, source, listed_at, expires_at in store.active_rows_of(
        domains, active_at=now_dt.timestamp()
    ):
        if source == SOURCE and subject in chosen:
            continue  # re-decided this round
        until = _instant(expires_at) if expires_at is not None else float("inf")
        out[subject] = (causes[cause], until)
        starts[subject] = _instant(listed_at)
    # The decisions about these domains only (not all of this round's), latest-ending last.
    mine = [(key, d) for key, d in decided.items() if key[0] in domains]
    for (target, cause), decision in sorted(mine, key=lambda kv: kv[1].expires_at):
        out[target] = (cause, decision.expires_at)  # the latest-ending listing counts
        starts[target] = min(starts.get(target, decision.listed_at), decision.listed_at)
    return out, starts


def _instant(at: float) -> float:
    """Return *at* as a stored Listing gives it back (to the microsecond).

    The policy stores whole seconds, which come back as they are: no datetime for them.
    """
    if type(at) is float and at.is_integer() and abs(at) < 1e11:
        return at
    return datetime.fromtimestamp(at, UTC).timestamp()

"""Every store contract, run on SQLite and on PostgreSQL: one scenario through every table mixin.

The scenario records what each read returns; the test checks the answers that matter here and
then that both back-ends gave exactly the same answers (same values, same Python types), so a
dialect slip (a truncation, a collation, a NULL type, a lost row count) shows on one side.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest

from reputable.core.address import Domain, parse_subject
from reputable.core.cause import Cause
from reputable.core.errors import InputError
from reputable.evidence.model import Evidence
from reputable.evidence.parsers.feed_model import FeedDefinition, FeedState
from reputable.evidence.sources.follow import Position
from reputable.listings.model import AllowEntry, Batch, Listing
from reputable.listings.policy import ListingRow, Period, PolicyChanges
from reputable.store.dsn import open_dsn
from reputable.store.sqlite import SQLStore
from reputable.store.sqlite_evidence import evidence_table_rows
from tests.conftest import pg_schema_dsn

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
T = NOW.timestamp()


def _listing(subject: str, cause: Cause = Cause.SPAM, source: str = "cli", **kw: Any) -> Listing:
    fields: dict[str, Any] = {"reason": f"r {subject}", "listed_at": NOW, **kw}
    return Listing(subject=parse_subject(subject), cause=cause, source=source, **fields)


def _evidence(subject: str, cause: Cause, at: float, **kw: Any) -> Evidence:
    return Evidence(
        subject=ip_address(subject),
        cause=cause,
        source=kw.pop("source", "t"),
        observed_at=datetime.fromtimestamp(at, UTC),
        **kw,
    )


def _typed(value: Any) -> Any:
    """*value* with the type of every leaf, so 1 and 1.0 or '1' differ."""
    if isinstance(value, dict):
        return {repr(k): _typed(v) for k, v in sorted(value.items(), key=repr)}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_typed(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    return (type(value).__name__, value)


def scenario(store: SQLStore, log: Path) -> dict[str, Any]:
    """Drive every mixin; return what the reads said, by name."""
    out: dict[str, Any] = {"serial0": store.serial()}
    # listings and allowlist
    store.apply(
        Batch(
            listings=(
                _listing("192.0.2.7"),
                _listing("192.0.2.0/24", Cause.NETWORK, "policy:network:192.0.2.0/24"),
                _listing("2001:db8::/48", Cause.MANUAL, expires_at=NOW + timedelta(hours=1)),
                _listing("evil.example", Cause.MALWARE_HOST, "feed:Mixed:sub"),
                _listing("198.51.100.9", Cause.OPEN_PROXY, "policy:probe"),
            ),
            allows=(AllowEntry(subject=parse_subject("192.0.2.8"), note="ok", source="op",
                               created_at=NOW),),
        ),
        actor="t",
        action="list",
    )  # fmt: skip
    later = NOW + timedelta(hours=2)
    out["listings"] = [(x.subject_text, x.cause, x.expires_at) for x in store.listings()]
    out["active_later"] = [x.subject_text for x in store.listings(active_at=later)]
    out["where_subjects"] = sorted(
        x.subject_text for x in store.listings_where(subjects=["192.0.2.7", "evil.example"])
    )
    out["where_prefix"] = sorted(x.subject_text for x in store.listings_where(like="192.0.2.%"))
    out["where_ranges4"] = [x.subject_text for x in store.listings_where(like="%/%", family=4)]
    out["where_source"] = [x.subject_text for x in store.listings_where(source_prefix="policy")]
    out["where_source_case"] = [  # SQLite's LIKE ignores ASCII case: so must PostgreSQL's
        x.subject_text for x in store.listings_where(source_prefix="feed:mixed")
    ]
    out["source_rows"] = sorted(store.source_rows("policy", active_at=NOW))
    out["escalation_rows"] = sorted(store.escalation_rows(["network", "spam"], active_at=NOW))
    out["listing_rows"] = sorted(store.listing_rows(active_at=later))
    out["allow_rows"] = list(store.allow_rows(active_at=NOW))
    out["allows"] = [(a.subject_text, a.note, a.created_at) for a in store.allows()]
    out["ip_subjects"] = [row for chunk in store.ip_subjects(active_at=NOW) for row in chunk]
    out["removed"] = store.remove_listings(
        parse_subject("2001:db8::/48"), cause=None, source=None, actor="t"
    )
    out["unallowed"] = store.remove_allow(parse_subject("192.0.2.8"), actor="t")
    # evidence, hosting, policy periods and cursors
    items = [
        _evidence("192.0.2.7", Cause.SPAM, T - 86400 * 3 - 1, related_domain=Domain("spam.example")),
        _evidence("192.0.2.7", Cause.SPAM, T - 10, detail={"detector": "burst", "n": 3}),
        _evidence("192.0.2.9", Cause.CLEAN, T - 5, source="probe:relay"),
        _evidence("203.0.113.5", Cause.MALWARE_HOST, T, related_domain=Domain("shop.example")),
    ]  # fmt: skip
    out["added"] = store.add_evidence(items)
    out["added_again"] = store.add_evidence(items)
    out["added_rows"] = store.add_evidence_rows(
        evidence_table_rows([_evidence("192.0.2.10", Cause.HARVEST, T + 3600)])
    )
    out["evidence_rows"] = sorted(store.evidence_rows())
    out["evidence_rows_t"] = sorted(store.evidence_rows(["192.0.2.7"]))
    # Ids are compared by what they lead to: PostgreSQL's sequence also spends ids on
    # repeated keys (INSERT ... ON CONFLICT DO NOTHING), so its ids may have gaps.
    targets, cursor = store.evidence_targets_since(0, observed_by=T)
    out["since"] = (targets, store.evidence_targets_since(cursor)[0])
    out["all_targets"] = store.all_targets()
    out["records"] = [
        (r.subject, r.target, r.cause, r.observed_at, r.weight, r.domain, r.detail)
        for r in store.evidence_records(["192.0.2.7", "shop.example"])
    ]
    out["clean"] = store.clean_targets()
    out["hosting"] = store.add_hosting([("203.0.113.5", "a.example"), ("203.0.113.5", "a.example")])
    out["domains_on"] = store.domains_on(["203.0.113.5", "192.0.2.7"])
    out["ips_of"] = store.ips_of(["a.example", "shop.example"])
    out["last_evidence"] = store.last_evidence_at(["192.0.2.7"])
    period = Period(T - 100, T + 100, T + 1000)
    store.apply_policy(
        PolicyChanges(
            upserts=(ListingRow("192.0.2.50", Cause.SPAM, "r 192.0.2.50", "policy", T, None),),
            new_periods=(("192.0.2.50", Cause.SPAM, period),),
            ends=(("192.0.2.7", Cause.SPAM, "cli", T + 50, "decayed"),),
            drops=((None, "policy:network:192.0.2.0/24"),),
        ),
        actor="policy",
        now=T,
    )
    store.apply_policy(
        PolicyChanges(period_updates=(("192.0.2.50", Cause.SPAM, T - 100, T + 500, None),)),
        actor="policy",
        now=T,
    )
    out["periods"] = store.periods(["192.0.2.50", "192.0.2.7"])
    store.set_cursor("policy", 41)
    store.set_cursor("policy", 42)
    out["cursor"] = (store.cursor("policy"), store.cursor("never"))
    # removal requests
    first = store.add_delist_request("192.0.2.50", "a@example.org", "please", T + 1)
    second = store.add_delist_request(
        "192.0.2.51", "b@example.org", "carve", T + 2, kind="carve_out"
    )
    out["request_ids"] = (first, second > first)
    store.decide_delist(first, status="granted", by="op", why="fixed", now=T + 10)
    store.decide_delist(second, status="granted", by="op", why="fine", now=T + 11)
    out["ended"] = store.end_listings("192.0.2.50", now=T + 10, actor="op", why="granted")
    out["requests"] = [
        (r.subject, r.status, r.decided_at, r.decided_by, r.kind) for r in store.delist_requests()
    ]
    out["requests_pending"] = store.delist_requests(status="pending")
    out["granted"] = store.granted_removals()
    out["stops"] = store.removal_stops()
    out["carve_outs"] = store.carve_out_grants()
    out["decided_since"] = store.requests_decided_since(T)
    out["history"] = [
        (h.actor, h.action, h.subject, h.cause) for h in store.history(["192.0.2.50"])
    ]
    # policy reads
    out["spam_senders"] = store.spam_senders()
    out["spam_senders_t"] = store.spam_senders(["192.0.2.7"])
    out["probe_closures"] = store.probe_closures()
    out["labels"] = sorted(store.evidence_labels(["192.0.2.7", "192.0.2.9"]))
    out["own_rows"] = sorted(store.own_rows(["192.0.2.50"], source="policy", active_at=T))
    out["starts"] = sorted(store.listing_starts(["spam", "open_proxy"], active_at=T))
    out["expired_between"] = store.expired_between(T, T + 60)
    out["policy_source_rows"] = sorted(store.policy_source_rows("policy", active_at=T))
    out["source_rows_policy"] = sorted(store.source_rows("policy", active_at=NOW))
    out["escalation_members"] = sorted(
        store.escalation_members(["spam", "open_proxy"], active_at=T)
    )
    _, _, before_clean = store.policy_targets_since(0, observed_by=T)
    store.add_evidence(
        [
            _evidence(ip, Cause.CLEAN, T - 7, source="heads")
            for ip in ("192.0.2.200", "192.0.20.1", "192.0.3.1", "2001:db8:5::1", "2001:db8::1")
        ]
        + [_evidence("192.0.3.1", Cause.CLEAN, T - 6, source="probe:proxy")]
    )
    out["policy_since"] = store.policy_targets_since(0, observed_by=T)[:2]
    out["policy_since_clean"] = store.policy_targets_since(before_clean, observed_by=T)[:2]
    out["clean_in"] = store.clean_targets_in(["192.0.2.", "2001:db8:5:"])
    out["clean_in_v6"] = store.clean_targets_in(["192.0.20."], ipv6=True)
    # feeds
    feed = FeedDefinition(name="drop", url="file:///d", kind="drop", refresh=timedelta(hours=1))
    store.add_feed(feed, now=NOW)
    with pytest.raises(InputError, match="exists"):
        store.add_feed(feed, now=NOW)
    store.record_feed_state("drop", FeedState(etag='"e"', last_success=NOW, entries=2))
    out["feed"] = store.feed("drop")
    out["feeds"] = [f.definition.name for f in store.feeds()]
    out["feed_swap"] = store.replace_feed_listings(
        "feed:drop", [_listing("203.0.113.0/24", Cause.MANUAL), _listing("203.0.113.9", Cause.MANUAL)],
        actor="feed",
    )  # fmt: skip
    out["feed_swap2"] = store.replace_feed_listings(
        "feed:drop", [_listing("203.0.113.9", Cause.MANUAL)], actor="feed"
    )
    out["feed_removed"] = store.remove_feed("drop", actor="op")
    # followed sources
    position = Position("maillog:" + str(log), 2**40 + 1, 2**33 + 7, "64:ab", 4096, 12, '{"w":1}')
    out["committed"] = store.commit_source(position, [_evidence("192.0.2.60", Cause.SPAM, T + 20)])
    out["position"] = store.source_position(position.name)
    out["positions"] = [(n, o, type(u)) for n, o, u in store.follower_positions()]  # u: now
    # tokens
    store.add_token("ci", "d" * 64, frozenset({"evidence:write", "admin"}), now=T)
    with pytest.raises(InputError, match="exists"):
        store.add_token("ci", "e" * 64, frozenset({"admin"}), now=T)
    out["revoked"] = (store.revoke_token("ci", now=T + 1), store.revoke_token("ci", now=T + 2))
    out["tokens"] = store.tokens()
    # webhooks
    out["baselined0"] = store.webhook_baselined()
    out["audit_cursor0"] = store.webhook_audit_cursor() > 0
    out["queued"] = store.webhook_commit(
        added=[("192.0.2.99", "spam")],
        removed=[],
        deliveries=[("ops", "listed", '{"id":1}'), ("ops", "delisted", '{"id":2}')],
        audit_cursor=5,
        now=T,
        baseline=True,
    )
    out["known"] = store.webhook_known()
    out["active"] = store.webhook_active(T)
    out["reasons"] = store.webhook_reasons(
        [("192.0.2.50", "spam"), ("evil.example", "malware_host")], T
    )
    out["audit_cursor"] = store.webhook_audit_cursor()
    out["removal_audit"] = [(a, s, d) for _, _, a, s, d in store.removal_audit(0)]
    due = store.webhook_due(T)
    store.webhook_delivered(due[0][0], T + 1)
    store.webhook_failed(due[1][0], error="HTTP 500", next_at=T + 60, now=T + 1)
    out["due_later"] = [(e, k, b, n) for _, e, k, b, n, _ in store.webhook_due(T + 60)]
    store.webhook_failed(due[1][0], error="HTTP 500", next_at=None, now=T + 61)
    out["webhook_rows"] = [row[1:] for row in store.webhook_rows()]
    # dashboard reads
    top, counts = store.evidence_counts_after(0)
    out["evidence_counts"] = sorted(counts)
    out["evidence_counts_next"] = store.evidence_counts_after(top)[1]
    out["listing_counts"] = sorted(store.listing_counts_after(0)[1])
    out["by_prefix"] = store.evidence_by_prefix("192.0.2.")
    # maintenance
    gauges = store.gauges(NOW)
    out["gauges"] = (gauges.listings, gauges.evidence, gauges.feeds)
    out["pruned"] = store.prune_batch(NOW - timedelta(days=1), 0)
    out["after_prune"] = sorted(store.all_targets())
    out["serial_moved"] = store.serial() > out["serial0"]
    return out


@pytest.fixture
def both(tmp_path: Path, pg_database: str | None) -> Iterator[tuple[SQLStore, SQLStore]]:
    """A fresh SQLite store and a fresh PostgreSQL store."""
    lite = open_dsn(f"sqlite:///{tmp_path / 'c.db'}")
    for dsn in pg_schema_dsn(pg_database):
        pg = open_dsn(dsn)
        try:
            yield lite, pg
        finally:
            pg.close()
            lite.close()


def test_every_contract_answers_the_same_on_both_back_ends(
    both: tuple[SQLStore, SQLStore], tmp_path: Path
) -> None:
    """The scenario's answers are the expected ones, and identical (values and types) on both."""
    lite, pg = both
    log = tmp_path / "mail.log"
    log.write_text("x\n" * 10)
    a, b = scenario(lite, log), scenario(pg, log)
    # A few answers checked outright (the rest are held to SQLite's, the reference).
    assert a["where_source_case"] == ["evil.example"]
    assert a["where_prefix"] == ["192.0.2.0/24", "192.0.2.7"]
    assert a["added"] == 4 and a["added_again"] == 0 and a["added_rows"] == 1
    assert a["since"] == ({"192.0.2.7", "192.0.2.9", "shop.example", "192.0.2.10"}, {"192.0.2.10"})
    assert a["hosting"] == 1 and a["ended"] == 1 and a["feed_swap"] == (2, 0)
    assert a["feed_swap2"] == (0, 1) and a["feed_removed"] == 1
    assert a["position"].device == 2**40 + 1 and a["revoked"] == (True, False)
    assert a["labels"][0][3] == "t" and ("192.0.2.7", "spam", T - 10, "burst") in a["labels"]
    assert a["queued"] == 2 and a["audit_cursor"] == 5
    # Head ranges stop at the head's end: 192.0.20.1 is not in "192.0.2.", nor 2001:db8::/64
    # (its third group is zero) in "2001:db8:5:".
    assert a["policy_source_rows"] == a["source_rows_policy"] != []
    assert a["clean_in"] == {"192.0.2.9", "192.0.2.200", "2001:db8:5::/64"}
    # Clean evidence alone (no re-probe) re-decides the target's networks only; 192.0.2.10,
    # observed after T, comes round again.
    assert a["policy_since_clean"] == (
        {"192.0.3.1", "192.0.2.10"},
        {"192.0.2.200", "192.0.20.1", "2001:db8:5::/64", "2001:db8::/64"},
    )
    assert a["policy_since"][0] >= {"192.0.2.7", "192.0.2.9", "192.0.3.1", "shop.example"}
    assert "192.0.2.200" in a["policy_since"][1] and "192.0.2.9" not in a["policy_since"][1]
    assert a["clean_in_v6"] == {"192.0.20.1", "2001:db8:5::/64", "2001:db8::/64"}
    assert [row[0] for row in a["escalation_members"]] == [s for s, _, _ in a["starts"]] and all(
        len(row) == 5 for row in a["escalation_members"]
    )
    assert a["pruned"][0] == 1 and "192.0.2.7" in a["after_prune"]
    day = int(T // 86400)
    assert (day - 3, "t", "spam", 1) in a["evidence_counts"]
    assert (day, "t", "harvest", 1) in a["evidence_counts"]  # 13:00 truncates to its day
    assert a["evidence_counts_next"] == []
    for key in a:
        assert _typed(b[key]) == _typed(a[key]), key

"""Evidence rows in SQLite: what insert_evidence stores, and the indexes the policy engine reads."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from ipaddress import ip_address
from pathlib import Path

from reputable.core.address import Domain
from reputable.core.cause import Cause
from reputable.evidence.model import Evidence
from reputable.store.sqlite import SQLiteStore

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def test_rows_hold_subject_target_and_sorted_detail(tmp_path: Path) -> None:
    """Each row keeps the subject text, its scored target and the detail as sorted JSON."""
    store = SQLiteStore(tmp_path / "r.db")
    items = [
        Evidence(
            subject=ip_address("2001:db8::1"),
            cause=Cause.SPAM,
            source="t",
            observed_at=NOW,
            detail={"z": 1, "a": [1, "é"], "when": NOW},
        ),
        Evidence(subject=ip_address("2001:db8::2"), cause=Cause.SPAM, source="t", observed_at=NOW),
        Evidence(
            subject=ip_address("203.0.113.5"),
            cause=Cause.MALWARE_HOST,
            source="t",
            observed_at=NOW,
            weight=2.5,
            related_domain=Domain("shop.example"),
        ),
    ]
    assert store.add_evidence(items) == 3
    assert store.add_evidence(items) == 0
    rows = (
        sqlite3.connect(tmp_path / "r.db")
        .execute(
            "SELECT key, subject, target, cause, source, observed_at, weight, domain, detail"
            " FROM evidence ORDER BY id"
        )
        .fetchall()
    )
    assert rows == [
        (
            e.key,
            str(e.subject),
            e.target,
            e.cause.value,
            e.source,
            NOW.timestamp(),
            e.weight,
            e.related_domain.name if e.related_domain else None,
            json.dumps(e.detail, sort_keys=True, default=str),
        )
        for e in items
    ]
    assert sorted(store.evidence_rows()) == sorted(
        (e.target, e.cause.value, NOW.timestamp(), e.weight) for e in items
    )
    store.close()


def test_policy_reads_use_indexes(tmp_path: Path) -> None:
    """Clean targets and network escalations by source are found through an index, not a scan."""
    SQLiteStore(tmp_path / "r.db").close()
    db = sqlite3.connect(tmp_path / "r.db")
    clean = db.execute(
        "EXPLAIN QUERY PLAN SELECT DISTINCT target FROM evidence WHERE cause = 'clean'"
    ).fetchall()
    assert any("evidence_clean" in str(step) for step in clean)
    drop = db.execute("EXPLAIN QUERY PLAN DELETE FROM listings WHERE source = ?", ("x",)).fetchall()
    assert any("listings_source" in str(step) for step in drop)

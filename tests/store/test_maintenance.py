"""Store maintenance: gauges read without writing, online backup, and their metrics."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reputable.core.errors import ConfigError, StoreError
from reputable.publication.metrics import render_server
from reputable.store.maintenance import (
    backup,
    evidence_retention,
    prune_evidence,
    store_gauges,
)
from reputable.store.sqlite import SQLiteStore

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    """A migrated store with one feed that failed, one that works, evidence and a follower."""
    path = tmp_path / "reputable.db"
    SQLiteStore(path).close()
    log = tmp_path / "mail.log"
    log.write_text("x" * 1000)
    t = NOW.timestamp()
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO feeds (name, url, kind, refresh, options, created_at, last_success,"
            " last_error) VALUES ('good', 'file:///g', 'plain', 60, '{}', ?, ?, NULL),"
            " ('bad', 'file:///b', 'plain', 60, '{}', ?, NULL, 'HTTP 500')",
            (t - 600, t - 120, t - 600),
        )
        db.execute(
            "INSERT INTO evidence (key, subject, target, cause, source, observed_at, weight,"
            " detail) VALUES ('k1', '198.51.100.7', '198.51.100.7', 'spam', 'maillog', ?, 1, '{}'),"
            " ('k2', '198.51.100.8', '198.51.100.8', 'spam', 'maillog', ?, 1, '{}')",
            (t, t),
        )
        db.execute(
            "INSERT INTO source_positions (name, device, inode, head, offset, lines, updated_at)"
            " VALUES (?, 1, 1, '0:', 400, 4, 0)",
            (f"maillog:{log}",),
        )
    return path


def test_gauges_report_feeds_evidence_and_follower_lag(store_file: Path) -> None:
    """Feed health, evidence per source and unread log bytes come out of the store file."""
    gauges = store_gauges(store_file, NOW)
    assert gauges.evidence == {"maillog": 2}
    assert gauges.feeds["bad"] == (None, "HTTP 500")
    (name, (behind, _)) = next(iter(gauges.followers.items()))
    assert name.startswith("maillog:") and behind == 600
    text = render_server(
        version="9.9",
        python="3.11",
        started=0.0,
        now=NOW.timestamp(),
        snapshot_mtime=None,
        listings={},
        evidence=gauges.evidence,
        feeds=gauges.feeds,
        followers=gauges.followers,
    )
    assert 'reputable_feed_up{feed="bad"} 0' in text
    assert 'reputable_feed_up{feed="good"} 1' in text
    assert 'reputable_feed_age_seconds{feed="good"} 120.000' in text
    assert 'reputable_evidence{source="maillog"} 2' in text
    assert "reputable_follower_lag_bytes{source=" in text and "} 600" in text


def test_gauges_of_a_missing_store_create_nothing(tmp_path: Path) -> None:
    """Reading the gauges of a store that does not exist yet returns nothing, writes nothing."""
    assert store_gauges(tmp_path / "absent.db", NOW).listings == {}
    assert list(tmp_path.iterdir()) == []


def test_backup_refuses_to_overwrite_or_invent_folders(store_file: Path, tmp_path: Path) -> None:
    """An existing target or a missing folder is an error naming the path and the fix."""
    with pytest.raises(StoreError, match="exists; choose a new file name"):
        backup(store_file, store_file)
    with pytest.raises(StoreError, match=r"folder .* does not exist; create it first"):
        backup(store_file, tmp_path / "typo" / "copy.db")
    with pytest.raises(StoreError, match=r"does not exist: check store\.dsn"):
        backup(tmp_path / "absent.db", tmp_path / "copy.db")
    assert not (tmp_path / "absent.db").exists()


def _evidence(db: sqlite3.Connection, n: int, observed_at: float, prefix: str) -> None:
    db.executemany(
        "INSERT INTO evidence (key, subject, target, cause, source, observed_at, weight, detail)"
        " VALUES (?, '198.51.100.9', '198.51.100.9', 'spam', 'test', ?, 1, '{}')",
        [(f"{prefix}:{i}", observed_at) for i in range(n)],
    )


def test_prune_walks_old_evidence_in_batches_and_keeps_the_rest(tmp_path: Path) -> None:
    """Old rows go in batches of the given size; rows newer than the cut-off all stay."""
    path = tmp_path / "reputable.db"
    SQLiteStore(path).close()
    db = sqlite3.connect(path, isolation_level=None)
    old, new = NOW - timedelta(days=500), NOW - timedelta(days=10)
    _evidence(db, 25, old.timestamp(), "old")
    _evidence(db, 7, new.timestamp(), "new")
    _evidence(db, 5, old.timestamp(), "old2")
    cut = NOW - timedelta(days=400)
    rounds, after, total = [], 0, 0
    while True:
        deleted, after = prune_evidence(db, cut, after_id=after, batch=10)
        if not deleted:
            break
        rounds.append(deleted)
        total += deleted
    assert rounds == [10, 10, 10]
    assert total == 30
    left = db.execute("SELECT COUNT(*), MIN(observed_at) FROM evidence").fetchone()
    assert left == (7, new.timestamp())
    db.close()


def test_retention_default_and_limits() -> None:
    """Unset keeps 400 days (or what the policy needs); too short or garbage names the fix."""
    need = timedelta(days=270)
    assert evidence_retention(None, need) == timedelta(days=400)
    assert evidence_retention({}, timedelta(days=500)) == timedelta(days=500)
    assert evidence_retention({"evidence": "forever"}, need) is None
    assert evidence_retention({"evidence": "365d"}, need) == timedelta(days=365)
    with pytest.raises(ConfigError, match=r"shorter than the 270 days .* raise it"):
        evidence_retention({"evidence": "30d"}, need)
    with pytest.raises(ConfigError, match=r"retention\.evidence = 'soon'"):
        evidence_retention({"evidence": "soon"}, need)

"""On a simulated world the policy lists every abuser and spares every innocent neighbour."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from reputable.config import DEFAULT_TOML, parse_config
from reputable.listings.engine import evaluate
from reputable.simulation import build_world, score
from reputable.store.dsn import open_dsn


def test_every_abuser_listed_no_innocent(tmp_path: Path, store_dsn: str) -> None:
    """Shared hosting, recycled IPs, botnet /24s, stray complaints and list servers: no collateral."""
    now = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    world = build_world(now)
    config = parse_config(DEFAULT_TOML, tmp_path / "reputable.toml")
    store = open_dsn(store_dsn)
    store.add_evidence(world.evidence)
    store.add_hosting(world.hosting)
    evaluate(store, config.policy, config.reputation, now)
    listed: dict[str, set[str]] = {}
    for item in store.listings(active_at=now):
        listed.setdefault(item.subject_text, set()).add(item.cause.value)
    rows = list(score(world, listed))
    for kind, total, abusers_hit, innocents_hit in rows:
        abusers = sum(1 for s, k in world.kinds.items() if k == kind and s in world.abusers)
        assert abusers_hit == abusers, f"{kind}: {abusers_hit}/{abusers} abusers listed"
        assert innocents_hit == 0, f"{kind}: {innocents_hit}/{total} innocents listed"
    assert any("network" in causes for causes in listed.values())  # the botnet /24 escalated

"""Collateral damage on a simulated world: abusers listed vs innocents hurt, per situation.

    python bench/collateral.py [--scale 20]

Builds reputable.simulation.build_world (shared hosting, recycled addresses, botnet /24s with
clean servers, lone spammers beside neighbours with one complaint, list servers with a few
unknown recipients), stores it in a fresh SQLite database, runs one full policy evaluation
and prints, per kind of subject, how many abusers were listed and how many innocents.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from reputable.config import DEFAULT_TOML, parse_config
from reputable.listings.engine import evaluate
from reputable.simulation import build_world, score
from reputable.store.sqlite import SQLiteStore


def main() -> None:
    """Run the simulation and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=20, help="copies of each situation")
    args = parser.parse_args()
    now = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    world = build_world(now, scale=args.scale)
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config(DEFAULT_TOML, Path(tmp) / "reputable.toml")
        store = SQLiteStore(Path(tmp) / "r.db")
        store.add_evidence(world.evidence)
        store.add_hosting(world.hosting)
        started = time.perf_counter()
        evaluate(store, config.policy, config.reputation, now)
        seconds = time.perf_counter() - started
        listed: dict[str, set[str]] = {}
        for item in store.listings(active_at=now):
            listed.setdefault(item.subject_text, set()).add(item.cause.value)
        store.close()
    print(
        f"{len(world.evidence)} evidence, {len(world.kinds)} labelled subjects, evaluated in {seconds:.2f} s"
    )
    print(f"{'situation':45} {'subjects':>8} {'abusers listed':>15} {'innocents listed':>17}")
    total_abusers = total_hit = total_innocent = 0
    for kind, count, abusers_hit, innocents_hit in score(world, listed):
        abusers = sum(1 for s, k in world.kinds.items() if k == kind and s in world.abusers)
        total_abusers += abusers
        total_hit += abusers_hit
        total_innocent += innocents_hit
        print(
            f"{kind:45} {count:8} {abusers_hit:>7}/{abusers:<7} {innocents_hit:>8}/{count - abusers:<8}"
        )
    innocents = len(world.innocents)
    print(
        f"recall {total_hit / max(total_abusers, 1):.3f}; innocents listed {total_innocent}/{innocents}"
    )
    # Shared hosting's unavoidable cost: good sites on an IP that is itself listed.
    hurt = {d for ip, d in world.hosting if ip in listed and d in world.innocents}
    good_sites = sum(1 for d in {d for _, d in world.hosting} if d in world.innocents)
    print(
        f"good sites whose shared IP is listed (reported as collateral by explain): {len(hurt)}/{good_sites}"
    )


if __name__ == "__main__":
    main()

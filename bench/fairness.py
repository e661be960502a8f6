"""Fairness over a simulated month: abusers listed while active, innocents never, quick delisting.

    python bench/fairness.py [--seed 18] [--clean 1000] [--every 6]

Builds reputable.simulation.build_month (spammers, recidivists, recycled addresses with a bad
previous owner, ~1,000 clean senders with the odd stray complaint, a botnet /24 with clean
mail servers in it, shared-hosting IPs with 40 sites each where one site hosts malware or the
IP itself spams, one-shot open relays re-probed daily, IPv6 spammers beside clean /64s). The
evidence arrives in time order into a fresh SQLite store; every --every hours the incremental
evaluation runs as ``serve`` runs it, and the listings in force are checked against the ground
truth. After the month a full evaluation 15 days later yields every listing period, from
which each spammer's delisting time after its last evidence is read. Default settings
throughout: nothing here was tuned on this world.

Figures (issue 18 targets):
- listed while active: (checkpoint, abuser) pairs where the abuser was inside an abuse window
  and had already shown the evidence a list acts on (3 pieces for spam/compromised, 1 probe
  finding or malware report), listed / all such pairs -- target >= 99 %;
- innocents listed: distinct innocent subjects (IPs, sites, /64 neighbours) listed at any
  checkpoint -- target 0;
- delisting: for every spammer, end of the listing period minus its last evidence -- target
  <= 9.5 days for all.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reputable.config import DEFAULT_TOML, parse_config
from reputable.core.cause import Cause
from reputable.evidence.model import scoring_target
from reputable.listings.engine import evaluate, evaluate_new
from reputable.listings.explain import explain
from reputable.simulation import build_month
from reputable.store.sqlite import SQLiteStore

START = datetime(2026, 11, 1, tzinfo=UTC)
#: Evidence a list acts on before an abuser counts as "active" (see the module docstring).
SHOWN = {"one-shot open relay": 1, "site hosting malware": 1}


def listed_set(store: SQLiteStore, at: datetime) -> tuple[list[ipaddress._BaseNetwork], set[str]]:
    """Return the active listings at *at*: IP networks, and domain names."""
    nets: list[ipaddress._BaseNetwork] = []
    names: set[str] = set()
    for item in store.listings(active_at=at):
        text = item.subject_text
        if text[0].isdigit() or ":" in text:
            nets.append(ipaddress.ip_network(text, strict=False))
        else:
            names.add(text)
    return nets, names


def is_listed(subject: str, nets: list[ipaddress._BaseNetwork], names: set[str]) -> bool:
    """True when DNS would answer for *subject* (no allowlist in this world)."""
    if subject[0].isdigit() or ":" in subject:
        address = ipaddress.ip_address(subject)
        return any(address.version == n.version and address in n for n in nets)
    labels = subject.split(".")
    return any(".".join(labels[i:]) in names for i in range(len(labels)))


def main() -> None:
    """Run the month and print the three fairness figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--clean", type=int, default=1000, help="clean senders")
    parser.add_argument("--every", type=float, default=6.0, help="hours between evaluations")
    args = parser.parse_args()
    print(f"load average before: {Path('/proc/loadavg').read_text().strip()}")
    started = time.perf_counter()
    month = build_month(START, seed=args.seed, clean=args.clean)
    # Times at which each abuser's evidence was seen (subject as labelled: IP or site).
    seen_at: dict[str, list[datetime]] = {}
    for e in month.evidence:
        key = (
            e.related_domain.name
            if e.cause is Cause.MALWARE_HOST and e.related_domain
            else str(e.subject)
        )
        if key in month.active:
            seen_at.setdefault(key, []).append(e.observed_at)
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config(DEFAULT_TOML, Path(tmp) / "reputable.toml")
        store = SQLiteStore(Path(tmp) / "r.db")
        store.add_hosting(month.hosting)
        pending = list(month.evidence)
        active_pairs = listed_pairs = 0
        missed: Counter[str] = Counter()
        pairs: Counter[str] = Counter()
        escalated = 0
        innocents_hit: dict[str, str] = {}
        evaluations = 0.0
        step = timedelta(hours=args.every)
        at = START + step
        end = START + timedelta(days=month.days)
        while at <= end:
            due = [e for e in pending if e.observed_at <= at]
            pending = pending[len(due) :]
            store.add_evidence(due)
            t = time.perf_counter()
            evaluate_new(store, config.policy, config.reputation, at)
            evaluations += time.perf_counter() - t
            nets, names = listed_set(store, at)
            escalated += any(n.prefixlen < 32 and n.version == 4 for n in nets)
            for subject, windows in month.active.items():
                need = SHOWN.get(month.kinds[subject], 3)
                times = seen_at.get(subject, [])
                for begin, finish in windows:
                    inside = [x for x in times if begin <= x <= at]
                    if begin <= at <= finish and len(inside) >= need:
                        active_pairs += 1
                        pairs[month.kinds[subject]] += 1
                        if is_listed(subject, nets, names):
                            listed_pairs += 1
                        else:
                            missed[month.kinds[subject]] += 1
            for subject in month.innocents:
                if subject not in innocents_hit and is_listed(subject, nets, names):
                    innocents_hit[subject] = f"{month.kinds[subject]} at {at:%m-%d %H:%M}"
            at += step
        # Collateral: a spamming shared IP's explanation names every site on it.
        collateral_ok = 0
        for ip, sites in month.collateral.items():
            last = max(seen_at[ip])
            why = explain(store, config, ip, last + timedelta(minutes=1))
            collateral_ok += why.listed and sites <= set(why.collateral)
        # Delisting: a full evaluation long after the month yields every listing period.
        final = end + timedelta(days=15)
        evaluate(store, config.policy, config.reputation, final)
        lags: list[tuple[float, str]] = []
        for ip in month.spammers:
            target = scoring_target(ipaddress.ip_address(ip), None)
            last = max(seen_at[ip]).timestamp()
            periods = store.periods([target]).get((target, Cause.SPAM), [])
            covering = [p for p in periods if p.listed_at <= last <= p.ends_at]
            if covering:
                lags.append(((covering[-1].ends_at - last) / 86400, ip))
        store.close()
    total = time.perf_counter() - started
    recall = listed_pairs / max(active_pairs, 1)
    worst = max(lags, default=(0.0, "-"))
    within = sum(1 for lag, _ in lags if lag <= 9.5)
    print(
        f"world: {len(month.evidence)} evidence, {len(month.kinds)} labelled subjects"
        f" ({len(month.active)} abusers, {len(month.innocents)} innocents), seed {args.seed}"
    )
    print(f"evaluations every {args.every:g} h: {evaluations:.2f} s in all; run {total:.1f} s")
    print(
        f"listed while active: {listed_pairs}/{active_pairs} = {100 * recall:.2f} %  (target >= 99 %)"
    )
    for kind, n in sorted(pairs.items()):
        print(f"  {kind}: {n - missed[kind]}/{n}")
    print(f"checkpoints with the botnet /24 escalated (clean servers carved out): {escalated}")
    print(f"innocents listed: {len(innocents_hit)}  (target 0)")
    for subject, where in sorted(innocents_hit.items())[:10]:
        print(f"  {subject}: {where}")
    print(
        f"spammers delisted within 9.5 d of their last evidence: {within}/{len(month.spammers)};"
        f" longest {worst[0]:.2f} d ({worst[1]})  (target: all)"
    )
    print(
        f"spamming shared IPs whose explanation names all their sites: {collateral_ok}/{len(month.collateral)}"
    )
    print(f"load average after: {Path('/proc/loadavg').read_text().strip()}")
    ok = recall >= 0.99 and not innocents_hit and within == len(month.spammers)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()

"""A simulated world for measuring collateral damage (used by tests and bench/collateral.py).

It holds the situations from the field that make blocklists hurt innocents: shared hosting
(one bad site among many on an IP), recycled addresses (a spammer's old IP now used by a
clean sender), botnet segments with clean servers beside infected hosts, lone spammers next
to neighbours with one stray complaint, and list servers with a few unknown recipients.
Every subject is labelled abuser or innocent, so a policy run can be scored.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from ipaddress import IPv4Address

from reputable.core.address import Domain
from reputable.core.cause import Cause
from reputable.evidence.model import Evidence


@dataclass(slots=True)
class World:
    """Evidence plus ground truth: which subjects are abusers and which are innocent."""

    now: datetime
    evidence: list[Evidence] = field(default_factory=list)
    hosting: list[tuple[str, str]] = field(default_factory=list)
    abusers: set[str] = field(default_factory=set)
    innocents: set[str] = field(default_factory=set)
    kinds: dict[str, str] = field(default_factory=dict)

    def add(
        self,
        subject: str,
        cause: Cause,
        n: int,
        *,
        at: datetime,
        source: str,
        domain: str | None = None,
        weight: float = 1.0,
        spread: timedelta = timedelta(hours=6),
    ) -> None:
        """Add *n* pieces of evidence about *subject* spread over *spread* before *at*."""
        for i in range(n):
            self.evidence.append(
                Evidence(
                    subject=IPv4Address(subject) if subject[0].isdigit() else Domain(subject),
                    cause=cause,
                    source=source,
                    observed_at=at - spread * (i / max(n, 1)),
                    weight=weight,
                    related_domain=Domain(domain) if domain else None,
                    detail={"n": i, "kind": source},
                )
            )

    def label(self, subject: str, *, abuser: bool, kind: str) -> None:
        """Record the ground truth of *subject*."""
        (self.abusers if abuser else self.innocents).add(subject)
        self.kinds[subject] = kind


def build_world(now: datetime, *, scale: int = 1, seed: int = 7) -> World:
    """Return a world with every collateral-damage situation, *scale* times over."""
    rng = random.Random(seed)
    world = World(now=now)
    recent = now - timedelta(hours=1)
    for s in range(scale):
        # Shared hosting: 10 IPs x 50 sites; one bad site on most, three bad sites on two.
        for h in range(10):
            ip = f"203.0.{113 + s % 100}.{10 + h}"
            sites = [f"site{h}-{k}.s{s}.example" for k in range(50)]
            world.hosting += [(ip, d) for d in sites]
            bad = sites[:3] if h < 2 else sites[:1]
            for domain in bad:
                world.add(ip, Cause.MALWARE_HOST, 2, at=recent, source="urlfeed", domain=domain)
                world.label(domain, abuser=True, kind="bad site on shared IP")
            for domain in sites[len(bad) :]:
                world.label(domain, abuser=False, kind="good site on shared IP")
            world.label(
                ip,
                abuser=h < 2,
                kind="shared IP with several bad sites" if h < 2 else "shared IP, one bad site",
            )
        # Recycled addresses: heavy spam four months ago, clean mail now.
        for r in range(10):
            ip = f"192.0.{2 + s % 50}.{100 + r}"
            world.add(ip, Cause.SPAM, 30, at=now - timedelta(days=120), source="traps")
            world.add(ip, Cause.CLEAN, 20, at=recent, source="accepted-mail")
            world.label(ip, abuser=False, kind="recycled address, clean now")
        # Botnet segment: 20 infected hosts and 2 clean mail servers in one /24.
        base = f"198.51.{100 + s % 100}"
        for b in range(20):
            ip = f"{base}.{10 + b}"
            world.add(ip, Cause.COMPROMISED, 4 + rng.randrange(4), at=recent, source="ssh")
            world.label(ip, abuser=True, kind="botnet host")
        for c in range(2):
            ip = f"{base}.{200 + c}"
            world.add(
                ip, Cause.CLEAN, 40, at=recent, source="accepted-mail", spread=timedelta(days=5)
            )
            world.label(ip, abuser=False, kind="clean server in botnet /24")
        # Lone spammers and neighbours with one stray complaint each.
        for p in range(10):
            spammer = f"100.{64 + s % 60}.{p}.10"
            neighbour = f"100.{64 + s % 60}.{p}.11"
            world.add(spammer, Cause.SPAM, 6, at=recent, source="traps")
            world.add(neighbour, Cause.SPAM, 1, at=recent, source="fbl")
            world.label(spammer, abuser=True, kind="spammer")
            world.label(neighbour, abuser=False, kind="neighbour with one complaint")
        # List servers: some unknown recipients (weak harvest evidence) but wanted mail.
        for m in range(5):
            ip = f"100.{124 + s % 3}.{m}.{25 + s // 3}"
            world.add(ip, Cause.HARVEST, 2, at=recent, source="maillog", weight=0.4)
            world.add(ip, Cause.CLEAN, 10, at=recent, source="accepted-mail")
            world.label(ip, abuser=False, kind="list server, 20% unknown recipients")
    return world


def covered(subject: str, listed: dict[str, set[str]]) -> bool:
    """True when *subject* is answered as listed given subject -> causes of active listings."""
    import ipaddress

    if not subject[0].isdigit():
        labels = subject.split(".")
        return any(".".join(labels[i:]) in listed for i in range(len(labels)))
    address = ipaddress.ip_address(subject)
    for text in listed:
        if text[0].isdigit() and address in ipaddress.ip_network(text, strict=False):
            return True
    return False


def score(world: World, listed: dict[str, set[str]]) -> Iterator[tuple[str, int, int, int]]:
    """Yield (kind, subjects, abusers listed, innocents listed) per kind of subject."""
    kinds = sorted(set(world.kinds.values()))
    for kind in kinds:
        members = [s for s, k in world.kinds.items() if k == kind]
        hit_abusers = sum(1 for s in members if s in world.abusers and covered(s, listed))
        hit_innocents = sum(1 for s in members if s in world.innocents and covered(s, listed))
        yield kind, len(members), hit_abusers, hit_innocents

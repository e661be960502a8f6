"""A simulated world for measuring collateral damage (used by tests and bench/collateral.py).

It holds the situations from the field that make blocklists hurt innocents: shared hosting
(one bad site among many on an IP), recycled addresses (a spammer's old IP now used by a
clean sender), botnet segments with clean servers beside infected hosts, lone spammers next
to neighbours with one stray complaint, and list servers with a few unknown recipients.
Every subject is labelled abuser or innocent, so a policy run can be scored.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from ipaddress import IPv4Address, ip_address

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


# -- a month of evidence with ground truth over time (bench/fairness.py) -------------------------
Window = tuple[datetime, datetime]


@dataclass(slots=True)
class Month:
    """Thirty days of evidence in arrival order, with when each abuser was abusing."""

    start: datetime
    days: int
    evidence: list[Evidence] = field(default_factory=list)
    hosting: list[tuple[str, str]] = field(default_factory=list)
    active: dict[str, list[Window]] = field(default_factory=dict)  # abuser -> abuse windows
    innocents: set[str] = field(default_factory=set)
    kinds: dict[str, str] = field(default_factory=dict)
    spammers: set[str] = field(default_factory=set)  # judged on delisting time
    collateral: dict[str, set[str]] = field(default_factory=dict)  # spamming IP -> its sites

    def fact(
        self,
        subject: str,
        cause: Cause,
        at: datetime,
        source: str,
        *,
        weight: float = 1.0,
        domain: str | None = None,
        detail: Mapping[str, object] | None = None,
    ) -> None:
        """Add one piece of evidence."""
        self.evidence.append(
            Evidence(
                subject=ip_address(subject) if subject[0].isdigit() else Domain(subject),
                cause=cause,
                source=source,
                observed_at=at,
                weight=weight,
                related_domain=Domain(domain) if domain else None,
                detail=dict(detail or {}),
            )
        )

    def abuse(
        self, rng: random.Random, subject: str, window: Window, per_day: float, emit: _Emit
    ) -> None:
        """Emit evidence at random times (about *per_day*) inside *window*; record the window."""
        start, end = window
        at = start
        while True:
            emit(at)
            at += timedelta(days=rng.expovariate(per_day))
            if at > end:
                break
        self.active.setdefault(subject, []).append((start, at if at <= end else end))

    def label(self, subject: str, kind: str, *, innocent: bool = False) -> None:
        """Record what *subject* is."""
        self.kinds[subject] = kind
        if innocent:
            self.innocents.add(subject)


_Emit = Callable[[datetime], None]


def _window(rng: random.Random, start: datetime, days: int, lo: float, hi: float) -> Window:
    begin = start + timedelta(days=rng.uniform(0.5, days - 1))
    return begin, min(begin + timedelta(days=rng.uniform(lo, hi)), start + timedelta(days=days))


def build_month(start: datetime, *, days: int = 30, seed: int = 18, clean: int = 1000) -> Month:
    """Return a month of the situations that make lists unfair, labelled over time."""
    rng = random.Random(seed)
    m = Month(start=start, days=days)

    def trap(ip: str, domain: str | None = None) -> _Emit:
        def emit(at: datetime) -> None:
            kind = "traps" if rng.random() < 0.9 else "arf:fbl.example"
            detector = {"detector": "spam_trap"} if kind == "traps" else {}
            m.fact(ip, Cause.SPAM, at, kind, domain=domain, detail=detector)

        return emit

    # Spammers: one run of 1-6 days at 6-40 trap hits a day.
    for i in range(60):
        ip = f"100.64.{i // 200}.{i % 200 + 1}"
        m.abuse(rng, ip, _window(rng, start, days, 1, 6), rng.uniform(6, 40), trap(ip))
        m.label(ip, "spammer")
        m.spammers.add(ip)
    # Recidivists: two or three runs separated by quiet weeks.
    for i in range(20):
        ip = f"100.65.0.{i + 1}"
        at = start + timedelta(days=rng.uniform(0.5, 4))
        while at < start + timedelta(days=days - 1):
            end = min(at + timedelta(days=rng.uniform(1, 3)), start + timedelta(days=days))
            m.abuse(rng, ip, (at, end), rng.uniform(8, 30), trap(ip))
            at = end + timedelta(days=rng.uniform(5, 12))
        m.label(ip, "recidivist spammer")
        m.spammers.add(ip)
    # Recycled addresses: a spammer two months ago, a clean sender now.
    for i in range(20):
        ip = f"100.66.0.{i + 1}"
        old = start - timedelta(days=60)
        for k in range(40):
            m.fact(
                ip, Cause.SPAM, old + timedelta(hours=k), "traps", detail={"detector": "spam_trap"}
            )
        for d in range(days):
            m.fact(
                ip,
                Cause.CLEAN,
                start + timedelta(days=d, hours=rng.uniform(0, 24)),
                "maillog:accepted",
                weight=0.5,
            )
        m.label(ip, "recycled address, clean owner now", innocent=True)
    # Clean senders: wanted mail every day; one in twenty gets one stray complaint.
    for i in range(clean):
        ip = f"100.80.{i // 250}.{i % 250 + 1}"
        for d in range(days):
            m.fact(
                ip,
                Cause.CLEAN,
                start + timedelta(days=d, hours=rng.uniform(0, 24)),
                "maillog:accepted",
                weight=0.3,
            )
        if rng.random() < 0.05:
            m.fact(ip, Cause.SPAM, start + timedelta(days=rng.uniform(0, days)), "arf:fbl.example")
        m.label(ip, "clean sender", innocent=True)
    # A botnet /24: 30 infected hosts brute-forcing in overlapping runs, 3 clean mail servers.
    for b in range(30):
        ip = f"198.18.5.{10 + b}"

        def brute(at: datetime, ip: str = ip) -> None:
            m.fact(
                ip,
                Cause.COMPROMISED,
                at,
                "netlog:sshd:/var/log/auth.log",
                detail={"detector": "brute_force"},
            )

        m.abuse(rng, ip, _window(rng, start, days, 3, 10), rng.uniform(6, 24), brute)
        m.label(ip, "botnet host")
    for c in range(3):
        ip = f"198.18.5.{200 + c}"
        for d in range(days):
            for _ in range(3):
                m.fact(
                    ip,
                    Cause.CLEAN,
                    start + timedelta(days=d, hours=rng.uniform(0, 24)),
                    "maillog:accepted",
                    weight=0.5,
                )
        m.label(ip, "clean mail server in the botnet /24", innocent=True)
    # Shared hosting: 40 sites per IP; one site hosts malware, or the IP itself spams.
    for h in range(10):
        ip = f"203.0.113.{10 + h}"
        sites = [f"site{k}.host{h}.example" for k in range(40)]
        m.hosting += [(ip, s) for s in sites]
        if h < 5:
            bad = sites[0]

            def report(at: datetime, ip: str = ip, bad: str = bad) -> None:
                m.fact(ip, Cause.MALWARE_HOST, at, "feed:urlhaus", domain=bad)

            m.abuse(rng, bad, _window(rng, start, days, 2, 6), rng.uniform(3, 10), report)
            m.label(bad, "site hosting malware")
            m.label(ip, "shared IP with one malware site", innocent=True)
            for s in sites[1:]:
                m.label(s, "neighbour site of a malware site", innocent=True)
        else:
            m.abuse(
                rng, ip, _window(rng, start, days, 1, 5), rng.uniform(8, 30), trap(ip, sites[3])
            )
            m.label(ip, "shared IP that spams itself")
            m.spammers.add(ip)
            m.collateral[ip] = set(sites)
            for s in sites:
                m.label(s, "site on a spamming shared IP", innocent=True)
    # One-shot open relays: found by a probe, re-probed daily until the fix holds.
    for r in range(20):
        ip = f"100.67.0.{r + 1}"
        found, fixed = _window(rng, start, days, 1, 8)
        at = found
        while at < fixed:
            m.fact(
                ip, Cause.OPEN_RELAY, at, "probe:relay", detail={"probe": "relay", "result": "open"}
            )
            at += timedelta(days=1)
        if at <= start + timedelta(days=days):
            m.fact(
                ip,
                Cause.CLEAN,
                at,
                "probe:relay",
                weight=0.5,
                detail={"probe": "relay", "result": "closed"},
            )
        m.active.setdefault(ip, []).append((found, min(at, fixed)))
        m.label(ip, "one-shot open relay")
    # IPv6 spammers and clean /64 neighbours in the same /48.
    for v in range(20):
        ip = f"2001:db8:{0x100 + v:x}::5"
        m.abuse(rng, ip, _window(rng, start, days, 1, 5), rng.uniform(6, 30), trap(ip))
        m.label(ip, "IPv6 spammer")
        m.spammers.add(ip)
        for n in range(1, 4):
            good = f"2001:db8:{0x100 + v:x}:{n}::25"
            for d in range(days):
                m.fact(
                    good,
                    Cause.CLEAN,
                    start + timedelta(days=d, hours=rng.uniform(0, 24)),
                    "maillog:accepted",
                    weight=0.3,
                )
            m.label(good, "clean IPv6 /64 neighbour", innocent=True)
    m.evidence.sort(key=lambda e: e.observed_at)
    return m

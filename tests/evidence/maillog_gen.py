"""A generated Postfix log with known bad IPs and legitimate look-alikes (tests and bench/)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv6Address
from typing import TextIO

MX = "mx.ours.example"
OUR_DOMAIN = "ours.example"


@dataclass
class Truth:
    """Which addresses are bad (must be found) and which only look bad (must not be listed)."""

    harvest: set[str] = field(default_factory=set)
    compromised: set[str] = field(default_factory=set)
    list_servers: set[str] = field(default_factory=set)
    cgnat: set[str] = field(default_factory=set)
    typo_users: set[str] = field(default_factory=set)
    normal: set[str] = field(default_factory=set)

    def bad(self) -> set[str]:
        """Return every address that must be flagged."""
        return self.harvest | self.compromised

    def to_json(self) -> dict[str, list[str]]:
        """Return the truth as sorted lists."""
        return {k: sorted(getattr(self, k)) for k in self.__dataclass_fields__}


class _Ids:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.n = 0

    def qid(self) -> str:
        self.n += 1
        return f"{self.n:010X}"[-10:]

    def pid(self) -> int:
        return self.rng.randint(1000, 60000)


def _ts(at: datetime) -> str:
    return f"{at:%b} {at.day:2d} {at:%H:%M:%S}"


def _pool(prefix: str, count: int, start: int = 1) -> list[str]:
    base = int(IPv4Address(prefix))
    return [str(IPv4Address(base + start + i)) for i in range(count)]


class _Session:
    """Writes the lines of one SMTP session."""

    def __init__(self, ids: _Ids, rng: random.Random) -> None:
        self.ids = ids
        self.rng = rng

    def inbound(
        self, at: datetime, ip: str, host: str, known: int, unknown: int, sender: str
    ) -> list[str]:
        """Return the lines of a delivery attempt with *known* good and *unknown* bad recipients."""
        t = _ts(at)
        p = self.ids.pid()
        name = f"{host}[{ip}]"
        out = [
            f"{t} {MX} postfix/postscreen[{p - 1}]: CONNECT from [{ip}]:{self.rng.randint(1024, 65000)} to [192.0.2.25]:25",
            f"{t} {MX} postfix/postscreen[{p - 1}]: PASS OLD [{ip}]:{self.rng.randint(1024, 65000)}",
            f"{t} {MX} postfix/smtpd[{p}]: connect from {name}",
            f"{t} {MX} postfix/smtpd[{p}]: Anonymous TLS connection established from {name}: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)",
        ]
        helo = host if host != "unknown" else f"[{ip}]"
        order = [True] * known + [False] * unknown
        self.rng.shuffle(order)
        for good in order:
            if not good:
                rcpt = f"u{self.rng.randint(0, 10**7)}@{OUR_DOMAIN}"
                out.append(
                    f"{t} {MX} postfix/smtpd[{p}]: NOQUEUE: reject: RCPT from {name}: 550 5.1.1 <{rcpt}>:"
                    f" Recipient address rejected: User unknown in virtual mailbox table;"
                    f" from=<{sender}> to=<{rcpt}> proto=ESMTP helo=<{helo}>"
                )
        if known:
            q = self.ids.qid()
            out += [
                f"{t} {MX} postfix/smtpd[{p}]: {q}: client={name}",
                f"{t} {MX} postfix/cleanup[{p + 1}]: {q}: message-id=<{q}.{self.rng.randint(0, 10**9)}@{host}>",
                f"{t} {MX} postfix/qmgr[900]: {q}: from=<{sender}>, size={self.rng.randint(900, 90000)}, nrcpt={known} (queue active)",
            ]
            for i in range(known):
                out.append(
                    f"{t} {MX} postfix/lmtp[{p + 2}]: {q}: to=<user{i}@{OUR_DOMAIN}>, relay={MX}[private/dovecot-lmtp],"
                    f" delay=0.1, delays=0.05/0.01/0.01/0.03, dsn=2.0.0, status=sent (250 2.0.0 <user{i}@{OUR_DOMAIN}> Saved)"
                )
            out.append(f"{t} {MX} postfix/qmgr[900]: {q}: removed")
        total = known + unknown
        data = "data=1 " if known else ""
        out.append(
            f"{t} {MX} postfix/smtpd[{p}]: disconnect from {name} ehlo=1 mail=1 rcpt={known}/{total} {data}quit=1 commands={3 + known + (1 if known else 0)}/{3 + total + (1 if known else 0)}"
        )
        return out

    def submission(
        self, at: datetime, ip: str, failures: int, success: bool, users: list[str]
    ) -> list[str]:
        """Return a submission session: *failures* failed AUTHs, then a sent message if *success*."""
        t = _ts(at)
        p = self.ids.pid()
        name = f"unknown[{ip}]"
        out = [f"{t} {MX} postfix/submission/smtpd[{p}]: connect from {name}"]
        for i in range(failures):
            user = users[i % len(users)]
            tail = f", sasl_username={user}" if self.rng.random() < 0.5 else ""
            out.append(
                f"{t} {MX} postfix/submission/smtpd[{p}]: warning: {name}: SASL LOGIN authentication failed: UGFzc3dvcmQ6{tail}"
            )
        if success:
            q = self.ids.qid()
            out += [
                f"{t} {MX} postfix/submission/smtpd[{p}]: {q}: client={name}, sasl_method=PLAIN, sasl_username={users[0]}",
                f"{t} {MX} postfix/cleanup[{p + 1}]: {q}: message-id=<{q}@{OUR_DOMAIN}>",
                f"{t} {MX} postfix/qmgr[900]: {q}: from=<{users[0]}>, size=2345, nrcpt=1 (queue active)",
                f"{t} {MX} postfix/smtp[{p + 2}]: {q}: to=<friend@elsewhere.example>, relay=mx.elsewhere.example[198.51.100.250]:25,"
                f" delay=0.4, delays=0.1/0/0.1/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as ABC)",
                f"{t} {MX} postfix/qmgr[900]: {q}: removed",
                f"{t} {MX} postfix/submission/smtpd[{p}]: disconnect from {name} ehlo=1 auth={1}/{failures + 1} mail=1 rcpt=1 data=1 quit=1 commands=5/{5 + failures}",
            ]
        else:
            out += [
                f"{t} {MX} postfix/submission/smtpd[{p}]: lost connection after AUTH from {name}",
                f"{t} {MX} postfix/submission/smtpd[{p}]: disconnect from {name} ehlo=1 auth=0/{failures} commands=1/{1 + failures}",
            ]
        return out


def generate(out: TextIO, lines: int, *, seed: int = 1, start: datetime | None = None) -> Truth:
    """Write about *lines* lines of Postfix log to *out*; return the ground truth."""
    rng = random.Random(seed)
    ids = _Ids(rng)
    session = _Session(ids, rng)
    begin = start or datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    day = 86400.0
    scale = max(lines / 2_000_000, 0.002)
    truth = Truth()
    plan: list[tuple[float, int, str, tuple[object, ...]]] = []
    n = 0

    def add(offset: float, kind: str, *args: object) -> None:
        nonlocal n
        n += 1
        plan.append((offset, n, kind, args))

    count = max(int(40 * min(scale, 1)), 4)
    harvesters = _pool("192.0.2.0", count) + [
        str(IPv6Address(f"2001:db8:bad:{i:x}::25")) for i in range(1, max(count // 4, 2))
    ]
    for ip in harvesters:
        truth.harvest.add(ip)
        t0 = rng.uniform(0, day - 7200)
        for _ in range(rng.randint(3, 8)):
            add(t0 + rng.uniform(0, 3600), "harvest", ip, rng.randint(10, 30))
    for ip in _pool("198.51.100.0", count):
        truth.compromised.add(ip)
        t0 = rng.uniform(0, day - 7200)
        spread = rng.random() < 0.5
        users = [f"{w}@{OUR_DOMAIN}" for w in ("admin", "info", "sales", "test", "office", "mail")]
        for _ in range(rng.randint(12, 60)):
            add(t0 + rng.uniform(0, 2400), "brute", ip, users if spread else users[:1])
    for ip in _pool("203.0.113.0", max(int(30 * min(scale, 1)), 3)):
        truth.list_servers.add(ip)
        share = rng.uniform(0.05, 0.30)
        for _ in range(rng.randint(20, 60)):
            add(rng.uniform(0, day), "list", ip, share)
    for ip in _pool("100.64.0.0", max(int(20 * min(scale, 1)), 2)):
        truth.cgnat.add(ip)
        for _ in range(int(rng.randint(150, 400) * min(scale, 1) + 20)):
            add(rng.uniform(0, day), "cgnat", ip)
    for ip in _pool("198.19.0.0", max(int(300 * min(scale, 1)), 10)):
        truth.typo_users.add(ip)
        add(rng.uniform(0, day), "typo", ip, rng.randint(1, 3))
    special = sum(_estimate(kind, args) for _, _, kind, args in plan)
    normal_ips = _pool("198.18.0.0", max(int(30000 * min(scale, 1)), 50))
    normal_sessions = max((lines - special) // 10, 1)
    for _ in range(normal_sessions):
        ip = rng.choice(normal_ips)
        truth.normal.add(ip)
        add(rng.uniform(0, day), "normal", ip)
    plan.sort()
    written = 0
    for offset, _, kind, args in plan:
        at = begin + timedelta(seconds=offset)
        for line in _emit(session, rng, at, kind, args):
            out.write(line + "\n")
            written += 1
            if written % 997 == 0:
                out.write(
                    f"{_ts(at)} {MX} postfix/anvil[77]: statistics: max cache size 12 at {_ts(at)}\n"
                )
                written += 1
    return truth


def _estimate(kind: str, args: tuple[object, ...]) -> int:
    sizes = {"harvest": 8 + int(str(args[1])) if kind == "harvest" else 0, "list": 40, "cgnat": 8}
    return sizes.get(kind) or 6


def _emit(
    session: _Session, rng: random.Random, at: datetime, kind: str, args: tuple[object, ...]
) -> Iterator[str]:
    ip = str(args[0])
    if kind == "normal":
        unknown = 1 if rng.random() < 0.03 else 0
        host = f"mail{ip.replace('.', '-')}.sender.example"
        yield from session.inbound(at, ip, host, rng.randint(1, 2), unknown, f"news@{host}")
    elif kind == "list":
        share = float(args[1])  # type: ignore[arg-type]
        total = rng.randint(20, 40)
        unknown = round(total * share)
        yield from session.inbound(
            at, ip, "lists.bulk.example", total - unknown, unknown, "bounce@lists.bulk.example"
        )
    elif kind == "harvest":
        total = int(args[1])  # type: ignore[call-overload]
        unknown = max(total - rng.randint(0, 2), 1)
        yield from session.inbound(at, ip, "unknown", total - unknown, unknown, "a@b.example")
    elif kind == "brute":
        yield from session.submission(at, ip, rng.randint(2, 3), False, list(args[1]))  # type: ignore[call-overload]
    elif kind == "cgnat":
        users = [f"user{rng.randint(0, 5000)}@{OUR_DOMAIN}"]
        yield from session.submission(at, ip, 1 if rng.random() < 0.05 else 0, True, users)
    elif kind == "typo":
        yield from session.submission(at, ip, int(args[1]), True, [f"typo{ip}@{OUR_DOMAIN}"])  # type: ignore[call-overload]

"""Mail detectors (pure, stateful): harvest share, spam traps, pregreet/pipelining/RBL, volume
spikes, SASL brute force, lost-connection-after-AUTH storms — all over per-IP windows.

Time comes only from the events; nothing here reads a clock or a file. The state is plain
data (``state()``/``restore()``) so a follower can store it with its file offset and resume
after a crash with the same windows it had.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from ipaddress import ip_address
from operator import itemgetter
from typing import Any, Final

from reputable.core.cause import Cause
from reputable.evidence.detectors.mail_config import Burst, MailParams
from reputable.evidence.model import Evidence
from reputable.evidence.parsers.mailevent import Event, MailEvent, domain_of

NAME: Final = "mail"
SAMPLES: Final = 3
_SWEEP_EVERY: Final = 20_000
_MAX_TRACKED: Final = 200_000
_ALPHA: Final = 0.1  # weight of the newest hour in the volume baseline (EWMA)
_KEEP: Final = 1 - _ALPHA
_DAY: Final = 86400
_BURSTS: Final = {
    Event.PREGREET: ("pregreet", Cause.SPAM),
    Event.PIPELINING: ("pipelining", Cause.SPAM),
    Event.RBL_REJECT: ("rbl_reject", Cause.SPAM),
    Event.LOST_CONNECTION: ("lost_auth", Cause.COMPROMISED),
}
_REJECTS: Final = frozenset({Event.UNKNOWN_RECIPIENT, Event.REJECTED, Event.RELAY_DENIED, Event.RBL_REJECT})  # fmt: skip


# Enum members bound once: attribute access on an Enum class costs a descriptor call (measured).
_QUEUED: Final = Event.QUEUED
_DISCONNECT: Final = Event.DISCONNECT
_UNKNOWN: Final = Event.UNKNOWN_RECIPIENT
_AUTH_FAILURE: Final = Event.AUTH_FAILURE
_DELIVERED: Final = Event.DELIVERED
_LOST: Final = Event.LOST_CONNECTION
_MESSAGE: Final = Event.MESSAGE


class _Episode:
    """Recipient attempts of one IP from *start* for one harvest window."""

    __slots__ = ("context", "last", "messages", "samples", "start", "stats", "unknown")

    def __init__(self, start: float) -> None:
        self.start = start
        # The evidence an episode gives is stamped with its own last event and context, never
        # with the moment a sweep happened to close it: the same log gives the same evidence.
        self.last = start
        self.context: tuple[str, str] | None = None
        self.unknown = 0
        self.stats = 0  # recipient attempts from Postfix disconnect statistics (rcpt=a/b)
        self.messages = 0  # accepted messages (lower bound of accepted recipients)
        self.samples: list[str] | None = None  # made at the first unknown recipient (most never)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class MailDetector:
    """Turns a time-ordered stream of mail events into evidence."""

    def __init__(self, params: MailParams, source: str) -> None:
        self.params = params
        self.source = source
        self.now = 0.0
        self._episodes: dict[str, _Episode] = {}
        # When each episode's window ends and whose it is, in the order they were opened.
        # Log time only moves forward, so this is soonest first and a sweep pops the ended
        # ones instead of looking at every open episode (measured: ordinary senders' open
        # episodes outnumber the ended ones many times over). When time went back, the next
        # sweep sorts it first. Two deques of atoms, not one of tuples: nothing for the cyclic
        # garbage collector to track (measured).
        self._ends: deque[float] = deque()
        self._end_ips: deque[str] = deque()
        self._ends_sorted = True
        self._auth: dict[str, tuple[deque[tuple[float, str, str]], deque[float]]] = {}
        self._bursts: dict[str, dict[str, deque[tuple[float, str]]]] = {k: {} for k, _ in _BURSTS.values()}  # fmt: skip
        self._quiet: dict[str, dict[str, float]] = {k: {} for k, _ in _BURSTS.values()}
        self._volume: dict[str, list[float]] = {}  # ip -> [hour, count, baseline, hours, fired]
        self._queue: dict[str, str] = {}  # queue id -> client IP (for trap hits on accepted mail)
        self._senders: dict[str, str] = {}  # queue id -> envelope sender domain (the same)
        self._context: dict[str, tuple[str, str]] = {}  # ip -> (helo, sender domain)
        self._dirty: dict[str, float] = {}  # ip -> day of its last dirty-list evidence
        self._seen = 0
        self.out: list[Evidence] = []

    # -- the stream -----------------------------------------------------------------------
    def feed(self, events: Iterable[MailEvent]) -> list[Evidence]:
        """Consume *events* (in time order); return the evidence they completed."""
        # The hot loop of `ingest maillog`: one pass per understood line, so the common events
        # (accepted messages and disconnects of ordinary senders) are handled inline with
        # local names; the rare ones call the detectors below (docs/benchmarks.md, Mail logs).
        p = self.params
        harvest_window = p.harvest.window.total_seconds()
        spike = p.spike
        min_history, min_messages = spike.min_history_hours, spike.min_messages
        factor = spike.factor
        traps = p.traps.addresses or p.traps.domains
        episodes = self._episodes
        ends = self._ends
        end_ips = self._end_ips
        volume = self._volume
        now = self.now
        seen = self._seen
        for ev in events:
            _, t, kind, ip, text, _, helo, sender, _, user, queue_id, _, detail = ev
            if t > now:
                now = self.now = t
            if ip is None:
                if traps:
                    if kind is _DELIVERED:
                        self._trap(self._queue.get(queue_id), ev, self._senders.get(queue_id))
                    elif kind is _MESSAGE and queue_id in self._queue:  # qmgr: from=<sender>
                        self._sender(queue_id, sender)
                continue
            if kind is _QUEUED or kind is _DISCONNECT or kind is _UNKNOWN:
                ep = episodes.get(ip)
                if ep is not None and t >= ep.start + harvest_window:
                    self._close(ip, ep)
                    ep = None
                if ep is None:
                    ep = episodes[ip] = _Episode(t)
                    end = t + harvest_window
                    if ends and end < ends[-1]:
                        self._ends_sorted = False
                    ends.append(end)
                    end_ips.append(ip)
                ep.last = t
                if kind is _QUEUED:
                    ep.messages += 1
                    hour = t // 3600
                    v = volume.get(ip)
                    if v is None:
                        v = self._baseline(ip, hour)
                    elif hour > v[0]:  # a new hour: fold the last one into the baseline
                        gap = min(hour - v[0], 48.0)
                        v[2] = (v[2] * _KEEP + v[1] * _ALPHA) * _KEEP ** (gap - 1)
                        v[3] += gap
                        v[0], v[1], v[4] = hour, 0.0, 0.0
                    v[1] += 1
                    if not (
                        v[4] or v[3] < min_history or v[1] < min_messages or v[1] < factor * v[2]
                    ):
                        self._spike(ip, hour, v, ev)
                    if user:
                        self._login(ip, t, None, ev)
                    if traps:
                        self._queue[queue_id] = ip
                        if len(self._queue) > _MAX_TRACKED:
                            self._trim(self._queue)
                        if sender:  # Exim's <= line names sender and HELO
                            self._sender(queue_id, sender)
                        if helo:
                            self._context[ip] = (helo, self._context.get(ip, ("", ""))[1])
                elif kind is _DISCONNECT:
                    i = detail.find("rcpt=")
                    if i >= 0:  # "rcpt=1/3 ...": the 3 attempted
                        j = detail.find(" ", i)
                        counts = detail[i + 5 : j] if j >= 0 else detail[i + 5 :]
                        ep.stats += int(counts[counts.rfind("/") + 1 :] or 0)
                else:
                    ep.unknown += 1
                    if ep.samples is None:
                        ep.samples = [text]
                    elif len(ep.samples) < SAMPLES:
                        ep.samples.append(text)
                    if helo or sender:
                        self._context[ip] = (helo, domain_of(sender))
                    ep.context = self._context.get(ip)
            elif kind is _AUTH_FAILURE:
                self._login(ip, t, user or "?", ev)
            elif kind in _BURSTS and (kind is not _LOST or detail == "AUTH"):
                self._burst(kind, ip, t, text)
            if traps and kind in _REJECTS:
                if helo or sender:
                    self._context[ip] = (helo, domain_of(sender))
                self._trap(ip, ev)
            seen += 1
            if seen % _SWEEP_EVERY == 0:
                self._seen = seen
                self._sweep()
        self._seen = seen
        out, self.out = self.out, []
        return out

    def flush(self, until: float | None = None) -> list[Evidence]:
        """Close the harvest windows that ended by *until* (all of them when None); return evidence."""
        self._close_until(until)
        out, self.out = self.out, []
        return out

    def _close_until(self, until: float | None) -> None:
        episodes = self._episodes
        if until is None:
            for ip, open_ep in episodes.items():
                if open_ep.unknown:  # an episode without unknown recipients is never evidence
                    self._close(ip, open_ep)
            episodes.clear()
            self._ends.clear()
            self._end_ips.clear()
            return
        ends, end_ips = self._ends, self._end_ips
        if not self._ends_sorted:
            in_order = sorted(zip(ends, end_ips, strict=True), key=itemgetter(0))
            ends.clear()
            end_ips.clear()
            ends.extend(end for end, _ in in_order)
            end_ips.extend(ip for _, ip in in_order)
            self._ends_sorted = True
        window = self.params.harvest.window.total_seconds()
        while ends and ends[0] <= until:
            ends.popleft()
            ip = end_ips.popleft()
            ep = episodes.get(ip)
            # The IP's episode may be a later one (its entry is further on) or gone already.
            if ep is not None and ep.start + window <= until:
                if ep.unknown:
                    self._close(ip, ep)
                del episodes[ip]

    # -- detectors ------------------------------------------------------------------------
    def _close(self, ip: str, ep: _Episode) -> None:
        p = self.params.harvest
        attempts = max(ep.stats, ep.unknown + ep.messages)
        if attempts < p.min_attempts or not ep.unknown:
            return
        share = ep.unknown / attempts
        detail: dict[str, Any] = {
            "detector": "harvest",
            "window_start": _iso(ep.start),
            "attempts": attempts,
            "unknown": ep.unknown,
            "share": round(share, 3),
        }
        if share >= p.share:
            weight = min(p.max_weight, ep.unknown / p.unit)
            key = f"{self.source}:harvest:{ip}:{ep.start:.0f}"
        elif share >= p.dirty_share and self._dirty.get(ip) != ep.start // _DAY:
            # A dirty list, not a harvester: weak evidence, one per IP per day, so its decayed
            # sum stays under the listing threshold (docs/evidence-mail.md shows the arithmetic).
            weight = min(p.dirty_max_weight, share)
            detail["detector"] = "dirty_list"
            self._dirty[ip] = ep.start // _DAY
            key = f"{self.source}:dirty_list:{ip}:{int(ep.start // _DAY)}"
        else:
            return
        self._emit(
            ip, Cause.HARVEST, weight, ep.start, detail, ep.samples or [], key,
            ep.context or ("", ""), at=ep.last,
        )  # fmt: skip

    def _login(self, ip: str, t: float, user: str | None, ev: MailEvent) -> None:
        p = self.params.brute_force
        window = p.window.total_seconds()
        entry = self._auth.get(ip)
        if entry is None:
            entry = self._auth[ip] = (deque(), deque())
        fails, wins = entry
        if user is None:
            wins.append(t)
            while wins and wins[0] < t - window:
                wins.popleft()
            return
        fails.append((t, user, ev.text))
        while fails and fails[0][0] < t - window:
            fails.popleft()
        while wins and wins[0] < t - window:
            wins.popleft()
        n = len(fails)
        if n < p.min_failures or n < p.fail_share * (n + len(wins)):
            return
        users = {u for _, u, _ in fails if u != "?"}
        spread = len(users) >= p.spread_users
        detail = {
            "detector": "brute_force",
            "failures": n,
            "logins": len(wins),
            "users": sorted(users)[:10],
            "spread": spread,
            "service": ev.detail,
        }
        start = fails[0][0]
        samples = [text for _, _, text in list(fails)[:SAMPLES]]
        fails.clear()
        self._emit(
            ip, Cause.COMPROMISED, p.spread_weight if spread else p.weight, start, detail, samples,
            f"{self.source}:brute_force:{ip}:{start:.0f}",
        )  # fmt: skip

    def _burst(self, kind: Event, ip: str, t: float, text: str) -> None:
        name, cause = _BURSTS[kind]
        rule: Burst = getattr(self.params, name)
        window = rule.window.total_seconds()
        table = self._bursts[name]
        dq = table.get(ip)
        if dq is None:
            dq = table[ip] = deque()
        dq.append((t, text))
        while dq[0][0] < t - window:
            dq.popleft()
        if len(dq) < rule.min or t < self._quiet[name].get(ip, 0.0):
            return
        start = dq[0][0]
        detail = {"detector": name, "events": len(dq), "window": str(rule.window)}
        samples = [s for _, s in list(dq)[:SAMPLES]]
        dq.clear()
        self._quiet[name][ip] = t + window
        self._emit(ip, cause, rule.weight, start, detail, samples, f"{self.source}:{name}:{ip}:{start:.0f}")  # fmt: skip

    def _baseline(self, ip: str, hour: float) -> list[float]:
        """Start the hourly volume of *ip*: [hour, count, baseline, hours seen, fired]."""
        v = self._volume[ip] = [hour, 0.0, 0.0, 0.0, 0.0]
        if len(self._volume) > _MAX_TRACKED:
            self._trim(self._volume)
        return v

    def _spike(self, ip: str, hour: float, v: list[float], ev: MailEvent) -> None:
        """Emit a volume spike: *v* (see :meth:`_baseline`) is far above its baseline this hour.

        :meth:`feed` keeps the counts (an exponentially weighted hourly baseline per IP).
        """
        v[4] = 1.0
        detail = {"detector": "volume_spike", "messages_this_hour": int(v[1]), "baseline_per_hour": round(v[2], 1)}  # fmt: skip
        self._emit(ip, Cause.SPAM, self.params.spike.weight, hour * 3600, detail, [ev.text], f"{self.source}:spike:{ip}:{hour:.0f}")  # fmt: skip

    def _sender(self, queue_id: str, sender: str) -> None:
        self._senders[queue_id] = domain_of(sender)
        if len(self._senders) > _MAX_TRACKED:
            self._trim(self._senders)

    def _trap(self, ip: str | None, ev: MailEvent, sender_domain: str | None = None) -> None:
        """Emit a trap hit of *ip*; *sender_domain* is the message's (accepted mail: by queue ID)."""
        if ip is None or not self.params.traps.hit(ev.recipient):
            return
        detail = {"detector": "spam_trap", "trap": ev.recipient.lower(), "event": ev.event.value}
        helo, domain = self._context.get(ip, ("", ""))
        context = (ev.helo or helo, domain_of(ev.sender) if ev.sender else sender_domain or domain)
        self._emit(
            ip, Cause.SPAM, self.params.traps.weight, ev.at, detail, [ev.text],
            # One key per log line: the same line ingested twice counts once, while several
            # hits on one trap within a second (different lines) each count.
            f"{self.source}:trap:{ip}:{ev.recipient.lower()}:{ev.at:.0f}:{_line_id(ev.text)}",
            context,
        )  # fmt: skip

    # -- plumbing -------------------------------------------------------------------------
    def _emit(
        self, ip: str, cause: Cause, weight: float, start: float, detail: dict[str, Any],
        samples: list[str], key: str, context: tuple[str, str] | None = None,
        at: float | None = None,
    ) -> None:  # fmt: skip
        """Add one evidence; *context* (HELO, sender domain) defaults to the IP's last known,
        *at* (when it was observed) to the latest log time seen."""
        helo, sender_domain = context or self._context.get(ip, ("", ""))
        if helo:
            detail["helo"] = helo
        if sender_domain:
            detail["sender_domain"] = sender_domain
        detail["window_start"] = detail.get("window_start", _iso(start))
        detail["samples"] = samples
        self.out.append(
            Evidence(
                subject=ip_address(ip),
                cause=cause,
                source=self.source,
                observed_at=datetime.fromtimestamp(max(self.now, start) if at is None else at, UTC),
                weight=round(weight, 3),
                detail=detail,
                key=key,
            )
        )

    @staticmethod
    def _trim(table: dict[str, Any]) -> None:
        for key in list(table)[: len(table) // 2]:
            del table[key]

    def _sweep(self) -> None:
        """Close harvest windows and forget idle IPs so memory stays flat."""
        now = self.now
        self._close_until(now)
        for ip in [ip for ip, day in self._dirty.items() if day < now // _DAY - 1]:
            del self._dirty[ip]
        auth_window = self.params.brute_force.window.total_seconds()
        for ip in [ip for ip, (f, w) in self._auth.items() if (f[-1][0] if f else w[-1] if w else 0) < now - auth_window]:  # fmt: skip
            del self._auth[ip]
        for name, table in self._bursts.items():
            window = getattr(self.params, name).window.total_seconds()
            for ip in [ip for ip, dq in table.items() if not dq or dq[-1][0] < now - window]:
                del table[ip]
            quiet = self._quiet[name]
            for ip in [ip for ip, until in quiet.items() if until < now]:
                del quiet[ip]
        if len(self._context) > _MAX_TRACKED:
            self._trim(self._context)

    # -- persistence ----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Return the detector's windows as JSON-ready data (stored with the file offset)."""
        return {
            "now": self.now,
            "episodes": {ip: [e.start, e.unknown, e.stats, e.messages, e.samples or [], e.last, e.context] for ip, e in self._episodes.items()},
            "auth": {ip: [list(f), list(w)] for ip, (f, w) in self._auth.items()},
            "bursts": {n: {ip: list(dq) for ip, dq in t.items()} for n, t in self._bursts.items()},
            "quiet": self._quiet,
            "volume": self._volume,
            "queue": self._queue,
            "senders": self._senders,
            "context": self._context,
            "dirty": self._dirty,
        }  # fmt: skip

    def restore(self, data: dict[str, Any]) -> None:
        """Load windows saved by :meth:`state`."""
        self.now = float(data.get("now", 0.0))
        for ip, (start, unknown, stats, messages, samples, *more) in data.get(
            "episodes", {}
        ).items():
            ep = self._episodes[ip] = _Episode(start)
            ep.unknown, ep.stats, ep.messages, ep.samples = unknown, stats, messages, samples
            if more:  # states written before last/context were kept have five fields
                ep.last = float(more[0])
                ep.context = (str(more[1][0]), str(more[1][1])) if more[1] else None
            self._ends.append(start + self.params.harvest.window.total_seconds())
            self._end_ips.append(ip)
        self._ends_sorted = False
        for ip, (fails, wins) in data.get("auth", {}).items():
            self._auth[ip] = (deque(tuple(f) for f in fails), deque(wins))
        for name, table in data.get("bursts", {}).items():
            self._bursts[name] = {ip: deque(tuple(x) for x in dq) for ip, dq in table.items()}
        self._quiet.update(data.get("quiet", {}))
        self._volume.update(data.get("volume", {}))
        self._queue.update(data.get("queue", {}))
        self._senders.update(data.get("senders", {}))
        self._dirty.update(data.get("dirty", {}))
        self._context.update({ip: (h, d) for ip, (h, d) in data.get("context", {}).items()})


def _line_id(text: str) -> str:
    """Return a short digest of one log line (part of an idempotency key)."""
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=6).hexdigest()

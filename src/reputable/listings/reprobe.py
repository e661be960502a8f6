"""Verified fixes: re-probe the relays and proxies the policy listed from probe findings.

``serve`` calls :func:`reprobe_round` every :data:`ROUND_SECONDS`: a listing made from an
open-relay/open-proxy probe finding is probed again once ``policy.reprobe_every`` (default
daily) has passed since its last probe, and at once when a removal request for it waits. The
probe is the ordinary one (evidence/sources/probes/runner.py): allow-list and rate limits
enforced, never DATA. A probe that finds the relay or proxy closed stores ``clean`` evidence
from ``probe:relay``/``probe:proxy``; the replay (listings/timeline.py) ends the listing at
that moment, and a waiting request is granted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from reputable.core.cause import Cause
from reputable.evidence.model import Evidence, EvidenceRecord
from reputable.evidence.sources.probes.guard import RateLimiter
from reputable.evidence.sources.probes.model import CLOSED, OPEN, ProbeResult
from reputable.evidence.sources.probes.runner import run_probe
from reputable.evidence.sources.settings import SourceSettings
from reputable.listings.model import DelistRequest

#: How often serve looks for due re-probes (a waiting removal request is probed within this).
ROUND_SECONDS: Final = 30.0
#: The probe that re-checks each probe-made cause.
KIND: Final = {Cause.OPEN_RELAY: "relay", Cause.OPEN_PROXY: "proxy"}


class ReprobeStore(Protocol):
    """What re-probing reads and writes."""

    def escalation_rows(
        self, causes: Sequence[str], *, active_at: datetime
    ) -> Iterable[tuple[str, int, str, float | None]]:
        """Yield (subject, family, source, expires_at) of active listings of *causes*."""
        ...

    def evidence_records(self, subjects: Sequence[str], limit: int = 200) -> list[EvidenceRecord]:
        """Return the newest evidence about *subjects*."""
        ...

    def add_evidence(self, items: Iterable[Evidence]) -> int:
        """Store evidence; return how many were new."""
        ...

    def delist_requests(
        self, *, subject: str | None = None, status: str | None = None
    ) -> list[DelistRequest]:
        """Return removal requests."""
        ...

    def decide_delist(self, request_id: int, *, status: str, by: str, why: str, now: float) -> None:
        """Decide a request."""
        ...


@dataclass(frozen=True, slots=True)
class Due:
    """One re-probe to run: which probe, of what IP:port, and the requests waiting on it."""

    kind: str
    subject: str
    target: str
    requests: tuple[int, ...]


def due_reprobes(
    store: ReprobeStore,
    every: float,
    now: datetime,
    *,
    subjects: Sequence[str] | None = None,
) -> list[Due]:
    """Return the re-probes due at *now* (only of *subjects* when given)."""
    ts = now.timestamp()
    pending: dict[str, list[DelistRequest]] = {}
    for request in store.delist_requests(status="pending"):
        pending.setdefault(request.subject, []).append(request)
    causes = {c.value: c for c in KIND}
    out: list[Due] = []
    seen: set[tuple[str, str]] = set()
    for subject, _, source, _ in store.escalation_rows(sorted(causes), active_at=now):
        if source != "policy" or (subjects is not None and subject not in subjects):
            continue
        for cause in KIND.values():
            if (subject, cause) in seen:
                continue
            found = _last_probe(store.evidence_records([subject], limit=200), subject, cause)
            if found is None:
                continue  # listed from reports, not from a probe: nothing to re-check
            seen.add((subject, cause))
            last_at, target, was_open = found
            waiting = tuple(
                r.id for r in pending.get(subject, ()) if r.created_at.timestamp() >= last_at
            )
            if was_open and (waiting or ts - last_at >= every):
                out.append(Due(cause, subject, target, waiting))
    return out


def _last_probe(
    records: Sequence[EvidenceRecord], subject: str, kind: str
) -> tuple[float, str, bool] | None:
    """Return (when, IP:port, found open) of the newest *kind* probe of *subject*, if any."""
    for record in records:  # newest first
        if record.source == f"probe:{kind}" and record.subject == subject:
            target = str(record.detail.get("target", subject))
            return record.observed_at.timestamp(), target, record.detail.get("result") == OPEN
    return None


async def reprobe_round(
    store: ReprobeStore,
    settings: SourceSettings,
    every: float,
    now: datetime,
    *,
    limiter: RateLimiter | None = None,
    subjects: Sequence[str] | None = None,
) -> list[ProbeResult]:
    """Run the due re-probes; grant the requests waiting on a probe that found a fix."""
    results: list[ProbeResult] = []
    for due in due_reprobes(store, every, now, subjects=subjects):
        result = await run_probe(
            due.kind, due.target, settings=settings, store=store, now=now, limiter=limiter
        )
        results.append(result)
        if result.result == CLOSED:
            for request_id in due.requests:
                store.decide_delist(
                    request_id,
                    status="granted",
                    by="re-probe",
                    why=f"a re-probe found the {due.kind} closed; the listing ended",
                    now=now.timestamp(),
                )
    return results

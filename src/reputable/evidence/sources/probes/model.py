"""What a probe found, as a value, and the evidence it becomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from reputable.core.address import IPAddress
from reputable.core.cause import Cause
from reputable.evidence.model import Evidence

OPEN: Final = "open"
CLOSED: Final = "closed"
PASS: Final = "pass"  # rdns: PTR present, forward-confirmed, not generic
FAIL: Final = "fail"  # rdns: one of those is missing
ERROR: Final = "error"
REFUSED: Final = "refused"  # outside the allow-list or over a rate limit: nothing was sent

#: Weight of the evidence a result gives; ``clean`` raises the reputation of a passed target.
_EVIDENCE: Final[dict[tuple[str, str], tuple[Cause, float]]] = {
    ("relay", OPEN): (Cause.OPEN_RELAY, 1.0),
    ("relay", CLOSED): (Cause.CLEAN, 0.5),
    ("proxy", OPEN): (Cause.OPEN_PROXY, 1.0),
    ("proxy", CLOSED): (Cause.CLEAN, 0.5),
    ("rdns", PASS): (Cause.CLEAN, 0.25),
}


class Transcript:
    """The lines a probe sent (``C:``) and received (``S:``), kept as evidence detail."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def sent(self, text: str) -> None:
        """Record a line the probe sent."""
        self.lines.append(f"C: {text}")

    def received(self, text: str) -> None:
        """Record a line the target sent."""
        self.lines.append(f"S: {text}")

    def note(self, text: str) -> None:
        """Record what the probe concluded or why it stopped."""
        self.lines.append(f"-- {text}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeResult:
    """The outcome of one probe of one target."""

    kind: str  # relay, proxy, rdns
    address: IPAddress
    port: int | None
    result: str
    transcript: tuple[str, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    reason: str = ""
    rdns_weight: float = 0.0

    @property
    def target(self) -> str:
        """The probed address, with the port when there is one."""
        if self.port is None:
            return str(self.address)
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{host}:{self.port}"

    def as_json(self) -> dict[str, Any]:
        """Return the documented JSON shape of the result."""
        return {
            "target": self.target,
            "probe": self.kind,
            "result": self.result,
            "reason": self.reason,
            "facts": self.facts,
            "transcript": list(self.transcript),
        }


def evidence_of(result: ProbeResult, now: datetime) -> Evidence | None:
    """Return the evidence *result* gives about its address, or None (errors, refusals)."""
    if result.kind == "rdns" and result.result == FAIL:
        cause, weight = Cause.RDNS, result.rdns_weight
    elif (result.kind, result.result) in _EVIDENCE and result.facts.get("connected", True):
        # A port where nothing listens proves nothing good: only a real refusal is clean.
        cause, weight = _EVIDENCE[(result.kind, result.result)]
    else:
        return None
    return Evidence(
        subject=result.address,
        cause=cause,
        source=f"probe:{result.kind}",
        observed_at=now,
        weight=weight,
        detail={
            "probe": result.kind,
            "target": result.target,
            "result": result.result,
            "reason": result.reason,
            **result.facts,
            "transcript": list(result.transcript),
        },
    )

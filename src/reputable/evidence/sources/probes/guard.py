"""Who may be probed and how often: the allow-list and the rate limits (pure, time passed in)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from reputable.core.address import IPAddress, IPNetwork


def in_networks(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    """True when *address* lies in one of *networks*."""
    return any(address.version == n.version and address in n for n in networks)


def refusal(address: IPAddress, networks: Sequence[IPNetwork], *, seen: bool) -> str | None:
    """Return why *address* may not be probed, or None when it may."""
    if seen or in_networks(address, networks):
        return None
    return (
        f"refusing to probe {address}: it is outside the allow-list (probes.allow) and has"
        " not connected to your servers according to your ingested logs; add"
        " `--allow CIDR` to widen the allow-list for this run"
    )


@dataclass(slots=True)
class RateLimiter:
    """Per-target minimum interval and an overall probes-per-minute budget (one per process)."""

    per_target: float
    per_minute: int
    _last: dict[str, float] = field(default_factory=dict)
    _recent: deque[float] = field(default_factory=deque)

    def refusal(self, target: str, now: float, *, last_probe: float | None = None) -> str | None:
        """Return why *target* may not be probed at *now*, or None (and count the probe)."""
        last = max(filter(None, (self._last.get(target), last_probe)), default=None)
        if last is not None and now - last < self.per_target:
            wait = self.per_target - (now - last)
            return (
                f"refusing to probe {target}: probed {now - last:.0f}s ago;"
                f" probes.per_target allows one every {self.per_target:g}s (wait {wait:.0f}s)"
            )
        while self._recent and now - self._recent[0] >= 60:
            self._recent.popleft()
        if len(self._recent) >= self.per_minute:
            return f"refusing to probe {target}: probes.per_minute = {self.per_minute} reached"
        self._recent.append(now)
        self._last[target] = now
        return None

"""HTTP counters and latency histograms per route, in Prometheus text (format 0.0.4)."""

from __future__ import annotations

import threading
from bisect import bisect_left
from typing import Final

BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class HttpMetrics:
    """Requests by (route, method, status) and a latency histogram by (route, method)."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = {}
        self.buckets: dict[tuple[str, str], list[int]] = {}
        self.sums: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()  # render() runs in the metrics thread

    def record(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one request."""
        key = (route, method)
        with self._lock:
            self.requests[(route, method, status)] = (
                self.requests.get((route, method, status), 0) + 1
            )
            counts = self.buckets.get(key)
            if counts is None:
                counts = self.buckets[key] = [0] * (len(BUCKETS) + 1)
            counts[bisect_left(BUCKETS, seconds)] += 1
            self.sums[key] = self.sums.get(key, 0.0) + seconds

    def render(self) -> str:
        """Return the Prometheus text of the HTTP metrics."""
        with self._lock:
            requests = sorted(self.requests.items())
            buckets = sorted((k, list(v)) for k, v in self.buckets.items())
            sums = dict(self.sums)
        lines = [
            "# HELP reputable_http_requests_total HTTP requests answered, by route, method and status.",
            "# TYPE reputable_http_requests_total counter",
        ]
        for (route, method, status), value in requests:
            lines.append(
                f'reputable_http_requests_total{{route="{route}",method="{method}",status="{status}"}} {value}'
            )
        lines += [
            "# HELP reputable_http_request_seconds HTTP request latency, by route and method.",
            "# TYPE reputable_http_request_seconds histogram",
        ]
        for (route, method), counts in buckets:
            labels = f'route="{route}",method="{method}"'
            running = 0
            for bound, count in zip((*BUCKETS, float("inf")), counts, strict=True):
                running += count
                le = "+Inf" if bound == float("inf") else f"{bound:g}"
                lines.append(
                    f'reputable_http_request_seconds_bucket{{{labels},le="{le}"}} {running}'
                )
            lines.append(
                f"reputable_http_request_seconds_sum{{{labels}}} {sums[(route, method)]:.6f}"
            )
            lines.append(f"reputable_http_request_seconds_count{{{labels}}} {running}")
        return "\n".join(lines) + "\n"

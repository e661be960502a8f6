"""Request limits: a sliding-window rate limiter and the body-size/time-limit ASGI middleware."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reputable.web.metrics import HttpMetrics


class RateLimiter:
    """At most *n* events per key in a sliding window; tells how long to wait when full."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._events: dict[str, deque[float]] = {}
        self._max_keys = max_keys

    def retry_after(self, key: str, limit: int, window: float, now: float | None = None) -> int:
        """Return 0 and record an event when *key* is under *limit*, else seconds to wait."""
        at = time.monotonic() if now is None else now
        events = self._events.get(key)
        if events is None:
            if len(self._events) >= self._max_keys:  # bounded memory: forget the oldest keys
                for old in list(self._events)[: self._max_keys // 10]:
                    del self._events[old]
            events = self._events[key] = deque()
        while events and events[0] <= at - window:
            events.popleft()
        if len(events) >= limit:
            return max(1, math.ceil(events[0] + window - at))
        events.append(at)
        return 0

    def undo(self, key: str) -> None:
        """Forget the last event of *key* (the request it counted was not accepted)."""
        events = self._events.get(key)
        if events:
            events.pop()


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


class BodyTooLarge(Exception):
    """Raised inside receive() when a body passes the configured size."""


class LimitMiddleware:
    """413 for bodies over *max_body* bytes (declared or streamed); 503 after *timeout* seconds;
    every request timed into *metrics* under its route template (one layer for both: each
    ASGI layer costs on every request).
    """

    def __init__(
        self, app: ASGIApp, *, max_body: int, timeout: float, metrics: HttpMetrics
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.timeout = timeout
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = [500]
        try:
            await self._limited(scope, receive, send, status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.record(path, scope["method"], status[0], time.perf_counter() - began)

    async def _limited(self, scope: Scope, receive: Receive, send: Send, status: list[int]) -> None:
        limit = self.max_body
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                status[0] = 413
                await self._reject(send, 413, "body_too_large", self._too_large())
                return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                status[0] = int(message["status"])
            await send(message)

        try:
            async with asyncio.timeout(self.timeout):
                await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                status[0] = 413
                await self._reject(send, 413, "body_too_large", self._too_large())
        except TimeoutError:
            if not started:
                status[0] = 503
                await self._reject(
                    send, 503, "timeout", f"request took over {self.timeout:g} s; try a smaller one"
                )

    def _too_large(self) -> str:
        return (
            f"request body over {self.max_body} bytes (http.max_body); split it into"
            " smaller batches"
        )

    @staticmethod
    async def _reject(send: Send, status: int, code: str, message: str) -> None:
        body = _error_body(code, message)
        headers: list[Any] = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

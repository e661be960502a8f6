"""A webhook receiver on 127.0.0.1:0 for tests: checks signatures, records every POST."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from reputable.publication.webhooks.events import DELIVERY_HEADER, SIGNATURE_HEADER, verify


@dataclass
class Receiver:
    """What arrived: (delivery id, parsed body, signature valid) per POST, in order."""

    secret: str
    port: int = 0
    posts: list[tuple[str, dict[str, object], bool]] = field(default_factory=list)
    fail_first: int = 0  # answer 503 to this many POSTs first
    hold_first: bool = False  # keep the first POST open until `release` is set
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        """The endpoint URL."""
        return f"http://127.0.0.1:{self.port}/hook"

    def ids(self) -> list[str]:
        """Return the delivery ids in arrival order."""
        with self.lock:
            return [p[0] for p in self.posts]

    def wait_for(self, count: int, seconds: float) -> None:
        """Wait until *count* POSTs arrived."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if len(self.ids()) >= count:
                return
            time.sleep(0.05)
        raise AssertionError(f"{len(self.ids())} of {count} webhook POSTs within {seconds} s")


@contextmanager
def receiving(receiver: Receiver) -> Iterator[Receiver]:
    """Serve *receiver* on a free loopback port for the block."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the stdlib's name
            payload = self.rfile.read(int(self.headers["Content-Length"])).decode()
            valid = verify(
                receiver.secret, self.headers[SIGNATURE_HEADER] or "", payload, datetime.now(UTC)
            )
            with receiver.lock:
                receiver.posts.append((self.headers[DELIVERY_HEADER], json.loads(payload), valid))
                number = len(receiver.posts)
            if number == 1 and receiver.hold_first:
                receiver.release.wait(60)
            status = 503 if number <= receiver.fail_first else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # stdlib name
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()

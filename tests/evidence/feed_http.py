"""A feed server on 127.0.0.1 for tests: fixed bodies, ETag/Last-Modified with 304, and breakage."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    """What one path serves: a body, its validators, and how to misbehave."""

    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    status: int = 200
    break_after: int | None = None  # send this many bytes of the body, then drop the connection


@dataclass
class FeedServer:
    """Serves *routes* on 127.0.0.1:PORT in a thread and records each request's headers."""

    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        """Return the http URL of *path* on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> FeedServer:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                """Stay quiet."""

            def do_GET(self) -> None:
                """Answer from the route table."""
                owner.requests.append((self.path, dict(self.headers.items())))
                route = owner.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                fresh = route.etag is not None and self.headers.get("If-None-Match") == route.etag
                unchanged = (
                    route.last_modified is not None
                    and self.headers.get("If-Modified-Since") == route.last_modified
                )
                if fresh or (unchanged and route.etag is None):
                    self.send_response(304)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(route.status)
                if route.etag:
                    self.send_header("ETag", route.etag)
                if route.last_modified:
                    self.send_header("Last-Modified", route.last_modified)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                if route.break_after is None:
                    self.wfile.write(route.body)
                    return
                self.wfile.write(route.body[: route.break_after])
                self.wfile.flush()
                self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

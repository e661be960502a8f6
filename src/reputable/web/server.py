"""Run the app with uvicorn inside the `serve` supervisor's TaskGroup."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator

import uvicorn

from reputable.core import log
from reputable.web.app import create_app
from reputable.web.context import Context


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the supervisor owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    """Return a listening TCP socket on *host*:*port* (port 0: any free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def run_http(
    ctx: Context, stopping: asyncio.Event, on_ready: Callable[[str], None] | None = None
) -> None:
    """Serve the API on ``http.listen`` until *stopping* is set."""
    listen = ctx.settings.listen
    if listen is None:
        return
    sock = bind(*listen)
    host, port = sock.getsockname()[:2]
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    config = uvicorn.Config(
        create_app(ctx),
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    server = _Server(config)

    async def stopper() -> None:
        await stopping.wait()
        server.should_exit = True

    watcher = asyncio.create_task(stopper())
    try:
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        if server.started:
            log.info("http_ready", listen=address)
            if on_ready is not None:
                on_ready(address)
        await serving
    finally:
        watcher.cancel()
        sock.close()
        await asyncio.to_thread(ctx.stores.close)

"""DNS over TCP for one worker (RFC 1035 4.2.2, RFC 7766), built so clients cannot starve it.

A TCP client holds a slot for as long as it likes unless the server says otherwise, and a
client that asks for large answers and never reads them makes the server's writes wait. So:

- every wait has a deadline: ``tcp_idle_timeout`` for the next query (and the rest of a
  started one), ``tcp_write_timeout`` for the client to take an answer (the drain included,
  with no write buffer in user space, so a full socket means a waiting write);
- one client address holds at most ``tcp_max_per_client`` connections;
- at ``tcp_max_clients`` a new connection takes the slot of the connection that has waited
  longest, for a query or for its answer to be read (RFC 7766 §6.2.3: the server may close
  idle connections when it needs the resources); only when every slot is busy answering is
  the newcomer closed;
- queries pipelined on one connection are answered in order, one at a time.

Shutdown aborts every connection and waits for the handlers, which end quietly.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

Waiting = Literal["read", "write"] | None


@dataclass(frozen=True, slots=True)
class TcpLimits:
    """The TCP limits of ``[dns]`` (docs/dns.md)."""

    idle_timeout: float = 10.0
    write_timeout: float = 5.0
    max_clients: int = 256
    max_per_client: int = 16


class _Connection:
    __slots__ = ("host", "open", "since", "task", "transport", "waiting")

    def __init__(self, host: str, transport: asyncio.WriteTransport, task: asyncio.Task[None]):
        self.host = host
        self.transport = transport
        self.task = task
        self.waiting: Waiting = "read"
        self.since = time.monotonic()
        self.open = True

    def wait(self, what: Waiting) -> None:
        self.waiting = what
        self.since = time.monotonic()


class TcpService:
    """Accepts and serves DNS over TCP on listening sockets until :meth:`close`."""

    def __init__(
        self,
        answer: Callable[[bytes, str], bytes | Iterator[bytes | None] | None],
        limits: TcpLimits,
    ) -> None:
        """*answer(packet, client host)* returns the reply, an iterator of several messages
        (a zone transfer: each is built in a thread, and sent before the next is built; a
        None in it closes the connection), or None to close the connection."""
        self._answer = answer
        self.limits = limits
        self._open: dict[int, _Connection] = {}
        self._per_host: Counter[str] = Counter()
        self._servers: list[asyncio.Server] = []
        #: Connections closed at once (per-client limit, or every slot busy answering).
        self.refused = 0
        #: Connections closed to make room for a new one.
        self.evicted = 0

    @property
    def connections(self) -> int:
        """Return the number of open connections."""
        return len(self._open)

    async def start(self, sockets: Sequence[socket.socket]) -> None:
        """Serve every listening socket in *sockets*."""
        for sock in sockets:
            self._servers.append(await asyncio.start_server(self._client, sock=sock))

    async def close(self) -> None:
        """Stop accepting, abort every connection and wait for the handlers to end."""
        for server in self._servers:
            server.close()
        tasks = []
        for conn in list(self._open.values()):
            self._forget(conn)
            conn.transport.abort()
            conn.task.cancel()
            tasks.append(conn.task)
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- admission ------------------------------------------------------------------------
    def _admit(self, host: str) -> bool:
        if self._per_host[host] >= self.limits.max_per_client:
            return False
        if len(self._open) < self.limits.max_clients:
            return True
        victim: _Connection | None = None
        for conn in self._open.values():
            if conn.waiting is not None and (victim is None or conn.since < victim.since):
                victim = conn
        if victim is None:
            return False
        self._forget(victim)
        victim.transport.abort()
        self.evicted += 1
        return True

    def _forget(self, conn: _Connection) -> None:
        if conn.open:
            conn.open = False
            del self._open[id(conn)]
            self._per_host[conn.host] -= 1
            if not self._per_host[conn.host]:
                del self._per_host[conn.host]

    # -- one connection ---------------------------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        transport = writer.transport
        peer = writer.get_extra_info("peername")
        host = str(peer[0]) if peer else ""
        task = asyncio.current_task()
        if task is None or not self._admit(host):
            self.refused += 1
            transport.abort()
            return
        # No buffer in user space: drain() waits until the kernel took the answer.
        transport.set_write_buffer_limits(high=0)
        conn = _Connection(host, transport, task)
        self._open[id(conn)] = conn
        self._per_host[host] += 1
        limits = self.limits
        try:
            while conn.open:
                conn.wait("read")
                async with asyncio.timeout(limits.idle_timeout):
                    head = await reader.readexactly(2)
                    conn.wait(None)
                    packet = await reader.readexactly(int.from_bytes(head, "big"))
                answered = self._answer(packet, host)
                if answered is None:
                    break
                if isinstance(answered, bytes):
                    await self._send(conn, writer, answered)
                    continue
                # A zone transfer: each message is built in a thread (seconds of CPU in all
                # for a big zone, which must not stop the loop) and sent before the next is
                # built, so the first leaves at once and one message is held at a time. Each
                # must be taken within the write timeout, so a stalled secondary frees its
                # slot like any other client.
                while (message := await asyncio.to_thread(next, answered, b"")) != b"":
                    if message is None:
                        break
                    await self._send(conn, writer, message)
                else:
                    continue
                break  # the answer failed midway: close, so the client knows at once
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, OSError):
            pass  # the client went away, stalled or idled: close
        except asyncio.CancelledError:
            pass  # shutdown (close()): a quiet end is the point
        finally:
            self._forget(conn)
            transport.abort()

    async def _send(self, conn: _Connection, writer: asyncio.StreamWriter, message: bytes) -> None:
        """Write one message with its length and wait (within the write timeout) until the
        kernel took it."""
        writer.write(len(message).to_bytes(2, "big") + message)
        conn.wait("write")
        async with asyncio.timeout(self.limits.write_timeout):
            await writer.drain()

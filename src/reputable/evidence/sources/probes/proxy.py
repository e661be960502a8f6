"""The open-proxy probe: HTTP CONNECT, SOCKS4 and SOCKS5 requests to the operator's canary.

Each method gets its own connection. The target is an open proxy when any method agrees to
connect to the canary (HTTP 200, SOCKS4 reply 0x5A, SOCKS5 reply 0x00); the probe then
closes the tunnel without sending anything through it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from ipaddress import IPv4Address
from typing import Final, TypeAlias

from reputable.core.address import IPAddress
from reputable.evidence.sources.probes.model import (
    CLOSED,
    ERROR,
    OPEN,
    ProbeResult,
    Transcript,
)

KIND: Final = "proxy"

Method: TypeAlias = Callable[
    [asyncio.StreamReader, asyncio.StreamWriter, IPAddress, int, Transcript], Awaitable[bool]
]


def _hex(data: bytes) -> str:
    return data.hex(" ")


async def _http_connect(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    host: IPAddress,
    port: int,
    log: Transcript,
) -> bool:
    where = f"[{host}]:{port}" if host.version == 6 else f"{host}:{port}"
    request = f"CONNECT {where} HTTP/1.1\r\nHost: {where}\r\n\r\n"
    log.sent(f"CONNECT {where} HTTP/1.1")
    writer.write(request.encode("ascii"))
    await writer.drain()
    status = (await reader.readline()).decode("latin-1").rstrip("\r\n")
    log.received(status or "(connection closed)")
    parts = status.split()
    return len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1] == "200"


async def _socks4(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    host: IPAddress,
    port: int,
    log: Transcript,
) -> bool:
    if not isinstance(host, IPv4Address):
        log.note("socks4 skipped: the canary is not an IPv4 address")
        return False
    request = b"\x04\x01" + port.to_bytes(2, "big") + host.packed + b"\x00"
    log.sent(f"socks4 CONNECT {host}:{port} [{_hex(request)}]")
    writer.write(request)
    await writer.drain()
    reply = await reader.read(8)
    log.received(f"[{_hex(reply)}]" if reply else "(connection closed)")
    return len(reply) >= 2 and reply[1] == 0x5A


async def _socks5(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    host: IPAddress,
    port: int,
    log: Transcript,
) -> bool:
    hello = b"\x05\x01\x00"  # version 5, one method: no authentication (RFC 1928 §3)
    log.sent(f"socks5 hello, no auth [{_hex(hello)}]")
    writer.write(hello)
    await writer.drain()
    choice = await reader.read(2)
    log.received(f"[{_hex(choice)}]" if choice else "(connection closed)")
    if choice != b"\x05\x00":
        return False
    atyp = b"\x01" if host.version == 4 else b"\x04"
    request = b"\x05\x01\x00" + atyp + host.packed + port.to_bytes(2, "big")
    log.sent(f"socks5 CONNECT {host}:{port} [{_hex(request)}]")
    writer.write(request)
    await writer.drain()
    reply = await reader.read(4)
    log.received(f"[{_hex(reply)}]" if reply else "(connection closed)")
    return len(reply) >= 2 and reply[0] == 0x05 and reply[1] == 0x00


METHODS: Final[dict[str, Method]] = {
    "http-connect": _http_connect,
    "socks4": _socks4,
    "socks5": _socks5,
}


async def _one(
    name: str,
    method: Method,
    address: IPAddress,
    port: int,
    canary: tuple[IPAddress, int],
    timeout: float,
    log: Transcript,
) -> tuple[str, bool]:
    """Return this method's outcome and whether anything answered on the port."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(str(address), port)
            try:
                agreed = await method(reader, writer, canary[0], canary[1], log)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except TimeoutError:
        log.note(f"{name}: no answer within {timeout:g}s")
        return ERROR, True
    except ConnectionRefusedError:
        log.note(f"{name}: nothing listens on port {port}")
        return CLOSED, False
    except (OSError, UnicodeError) as exc:
        # A reset after our request is a refusal, not a fault of the probe.
        log.note(f"{name}: {type(exc).__name__}: {exc}")
        return CLOSED, True
    log.note(f"{name}: {OPEN if agreed else CLOSED}")
    return (OPEN if agreed else CLOSED), True


async def probe_proxy(
    address: IPAddress, port: int, *, canary: tuple[IPAddress, int], timeout: float
) -> ProbeResult:
    """Ask *address*:*port* to connect to *canary* by each method, *timeout* seconds each."""
    log = Transcript()
    answers = {
        name: await _one(name, method, address, port, canary, timeout, log)
        for name, method in METHODS.items()
    }
    outcomes = {name: outcome for name, (outcome, _) in answers.items()}
    opened = [n for n, r in outcomes.items() if r == OPEN]
    connected = any(answered for _, answered in answers.values())
    if opened:
        result, reason = (
            OPEN,
            f"agreed to connect to canary {canary[0]}:{canary[1]} via {', '.join(opened)}",
        )
    elif CLOSED in outcomes.values():
        result, reason = CLOSED, "refused to connect to the canary by every method"
    else:
        result, reason = ERROR, "no method got an answer"
    log.note(f"{result}: {reason}")
    return ProbeResult(
        kind=KIND,
        address=address,
        port=port,
        result=result,
        transcript=tuple(log.lines),
        facts={
            "methods": outcomes,
            "canary": f"{canary[0]}:{canary[1]}",
            "connected": connected,
        },
        reason=reason,
    )

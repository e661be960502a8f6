#!/usr/bin/env python3
"""Why the policy service receives into a buffer: CPU per read, ``recv(256 KiB)`` vs ``recv_into``.

asyncio's plain ``Protocol`` transport reads with ``sock.recv(262144)`` (a fresh 256 KiB
bytes object per read, shrunk to what arrived); a ``BufferedProtocol`` has it ``recv_into``
a buffer the protocol owns (policyd/server.py). This sends a 600-byte request (a Postfix
policy request's size) over a TCP loopback pair and receives it each way, with a heap as
populated as a server's, and prints the CPU time (user+sys of this process) per round.

    python bench/policy_recv.py [--rounds 50000]
"""

from __future__ import annotations

import argparse
import socket
import time
from collections.abc import Callable
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    listener = socket.create_server(("127.0.0.1", 0))
    sender = socket.create_connection(listener.getsockname())
    receiver, _ = listener.accept()
    message = b"x" * 600
    buffer = bytearray(65536)
    view = memoryview(buffer)
    heap = [bytes(1000) for _ in range(100_000)]  # a populated heap, like a server's

    def per_round(receive: Callable[[], object]) -> float:
        start = time.process_time()
        for _ in range(args.rounds):
            sender.send(message)
            receive()
        return (time.process_time() - start) / args.rounds * 1e6

    ways: dict[str, Callable[[], object]] = {
        "recv(262144)": lambda: receiver.recv(262144),
        "recv_into + copy": lambda: bytes(view[: receiver.recv_into(buffer)]),
        "recv(65536)": lambda: receiver.recv(65536),
    }
    print(f"loadavg: {Path('/proc/loadavg').read_text().strip()}")
    for _ in range(args.repeat):
        print(", ".join(f"{name} {per_round(way):.2f} us" for name, way in ways.items()))
    del heap
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

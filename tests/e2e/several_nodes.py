"""Two `reputable serve` nodes on one store, for the several-nodes tests (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import dns.message
import dns.query

from reputable.testing import RunningServer, cli, free_port, write_config
from tests.e2e.processes import live_processes

NAME = "7.100.51.198.bl.reputable.test"


def a_codes(port: int, name: str = NAME) -> set[str]:
    """Return the A codes the node on *port* answers for *name*."""
    reply = dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=3)
    return {r.address for rrset in reply.answer for r in rrset}


def node_config(directory: Path, dsn: str) -> tuple[Path, int]:
    """Write a node's config in *directory* (its own snapshot and ports) on the store *dsn*."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = write_config(directory, dns_port=port)
    text = config.read_text()
    text = text.replace('dsn = "sqlite:///reputable.db"', f'dsn = "{dsn}"')
    text = text.replace('interval = "5s"', 'interval = "1s"')
    config.write_text(text)
    return config, port


def children(pid: int) -> list[int]:
    """Return the pids of *pid*'s live children (DNS workers, build/policy runs)."""
    return [p.pid for p in live_processes() if p.ppid == pid]


def sigkill(server: RunningServer) -> None:
    """SIGKILL serve as a crash would, then its orphans too (they would hold their ports)."""
    assert server.proc is not None
    orphans = children(server.proc.pid)
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    for pid in orphans:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue


@contextmanager
def two_nodes(base: Path, dsn: str) -> Iterator[list[tuple[RunningServer, Path, int]]]:
    """Start two serve nodes on *dsn*; yield [(server, config, dns port)] for each."""
    nodes = [node_config(base / name, dsn) for name in ("a", "b")]
    cli(nodes[0][0], "list", "add", "192.0.2.1", "--cause", "manual", "--reason", "seed")
    with ExitStack() as stack:
        running = []
        for config, port in nodes:
            server = stack.enter_context(RunningServer(config))
            running.append((server, config, port))
        yield running


def leaders(nodes: list[tuple[RunningServer, Path, int]]) -> list[int]:
    """Return the indexes of the nodes whose log says they lead the policy now."""
    out = []
    for i, (server, _, _) in enumerate(nodes):
        events = [
            line
            for line in server.log().splitlines()
            if "policy_leader" in line or "policy_follower" in line
        ]
        if events and "policy_leader" in events[-1]:
            out.append(i)
    return out


def post_spam(config: Path, ip: str = "198.51.100.7") -> None:
    """Add three spam-trap hits on *ip* with the CLI (enough for the policy to list it)."""
    for i in range(3):
        cli(
            config,
            "evidence",
            "add",
            ip,
            "--cause",
            "spam",
            "--source",
            "traps",
            "--detail",
            f'{{"trap": "t{i}@example.net"}}',
        )

"""A real `reputable serve` with HTTP on a free loopback port, and token helpers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.query
import httpx
import pytest

from reputable.store.dsn import is_postgres
from reputable.testing import RunningServer, cli, free_port, wait_for, write_config


@dataclass
class Api:
    """One running server: its config, DNS port and an HTTP client on its API."""

    config: Path
    dns_port: int
    base: str
    server: RunningServer
    client: httpx.Client

    def token(self, name: str, *scopes: str) -> str:
        """Create a token with *scopes* and return its secret."""
        args = [a for s in scopes for a in ("--scope", s)]
        return cli(self.config, "token", "add", name, *args).stdout.strip()

    def dns_codes(self, name: str) -> set[str]:
        """Return the A records DNS answers for *name*."""
        query = dns.message.make_query(name, "A")
        reply = dns.query.udp(query, "127.0.0.1", port=self.dns_port, timeout=3)
        return {r.address for rrset in reply.answer for r in rrset if rrset.rdtype == 1}


def start_api(
    directory: Path, extra: str = "", http: str = "", store_dsn: str | None = None, **dns: str
) -> Iterator[Api]:
    """Run `reputable serve` in *directory* (*http*: lines for [http]); yield its Api."""
    dns_port = free_port()
    # The policy runs every second (default 5 s), so listings follow evidence quickly.
    config = write_config(directory, dns_port=dns_port, extra=extra, interval='"1s"', **dns)
    if store_dsn is not None:
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace('dsn = "sqlite:///reputable.db"', f'dsn = "{store_dsn}"', 1))
    if http:
        text = config.read_text(encoding="utf-8").replace("[http]\n", f"[http]\n{http}\n", 1)
        config.write_text(text, encoding="utf-8")
    with RunningServer(config) as server:
        found: list[str] = []

        def ready() -> bool:
            found[:] = re.findall(r"http_ready listen=(\S+)", server.log())
            return bool(found)

        wait_for(ready, 90, "http_ready in serve's log")  # at once unless the machine is loaded
        base = f"http://{found[0]}"
        with httpx.Client(base_url=base, timeout=10) as client:
            yield Api(config, dns_port, base, server, client)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A server shared by a module's read-only tests."""
    yield from start_api(tmp_path_factory.mktemp("api"))


@pytest.fixture
def fresh_api(tmp_path: Path, store_dsn: str) -> Iterator[Api]:
    """A server of this test's own (for tests that write), on each store back-end."""
    yield from start_api(tmp_path, store_dsn=store_dsn if is_postgres(store_dsn) else None)

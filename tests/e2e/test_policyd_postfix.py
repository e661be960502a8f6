"""The real Postfix asks our policy service and our DNS, inside a test network namespace.

Postfix (its own config and queue), `reputable serve` (DNS on port 53 and the policy service
on the namespace's loopback) and swaks as the client all run in one namespace. The
namespace's resolv.conf (``/etc/netns/NAME/resolv.conf``, bind-mounted by ``ip netns exec``
in its private mount namespace) points at our DNS, so ``reject_rbl_client`` asks us too.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from reputable.testing import cli, write_config
from tests.conftest import use_store
from tests.e2e.postfix_peer import (
    need_postfix,
    postfix,
    rcpt_reply,
    resolv_conf,
    running_in,
    swaks,
)
from tests.publication.exports.netns import namespace, run_in

POLICY_PORT = 6640  # inside the namespace only
#: Where the local PostgreSQL server's Unix socket lives (Debian's default).
PG_SOCKETS = Path("/var/run/postgresql")
EXTRA = f"""
[policy_service]
listen = "127.0.0.1:{POLICY_PORT}"

[traps]
addresses = ["trap@example.net"]
weight = 3.0
"""


@contextmanager
def serve_in(ns: str, config: Path) -> Iterator[Path]:
    """Run `reputable serve` inside *ns*; yield its log file once the policy service is up."""
    log = config.parent / "serve.log"
    argv = [sys.executable, "-m", "reputable", "--config", str(config), "serve", "--metrics", ""]
    with running_in(ns, argv, log, lambda: "policy_service_ready" in log.read_text()):
        yield log


def dig_a(ns: str, name: str) -> str:
    """Return dig's short A answer for *name* from our DNS inside *ns*."""
    return run_in(
        ns, ["dig", "+short", "+tries=1", "+time=2", "@127.0.0.1", "-p", "53", name]
    ).stdout


def reachable_in_namespace(dsn: str) -> str:
    """Return *dsn* as serve inside the namespace can reach it: its own loopback is empty, so
    a PostgreSQL store on this machine's 127.0.0.1 is reached through the server's Unix socket."""
    parts = urlsplit(dsn)
    if not dsn.startswith("postgresql://"):
        return dsn
    if parts.hostname not in ("127.0.0.1", "localhost") or not any(PG_SOCKETS.glob(".s.PGSQL.*")):
        pytest.skip(f"no Unix socket of the local PostgreSQL server in {PG_SOCKETS}")
    query = f"host={PG_SOCKETS}&port={parts.port or 5432}" + (
        f"&{parts.query}" if parts.query else ""
    )
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=user, query=query))


@pytest.mark.serial  # a wall-clock limit: no other worker's test runs meanwhile
@pytest.mark.slow
@pytest.mark.netns
def test_postfix_rejects_listed_clients_and_traps_list_within_5s(
    tmp_path: Path, store_dsn: str
) -> None:
    """554 for a listed client (policy service and reject_rbl_client), 250 otherwise; a trap lists."""
    need_postfix()
    if shutil.which("dig") is None:
        pytest.skip("needs dig (Debian package bind9-dnsutils)")
    # reload_interval 0.5 s (default 1 s): how often the publisher and the DNS worker look
    # for changes, twice on the path from trap evidence to a DNS answer
    config = write_config(tmp_path, dns_port=53, extra=EXTRA, reload_interval='"0.5s"')
    use_store(config, reachable_in_namespace(store_dsn))
    cli(config, "list", "add", "127.0.0.66", "--cause", "spam", "--reason", "trap hits")
    restrictions = cli(config, "integrate", "postfix").stdout
    assert f"inet:127.0.0.1:{POLICY_PORT}" in restrictions
    with namespace() as ns, resolv_conf(ns), serve_in(ns, config) as log:
        with postfix(ns, restrictions, "bl.reputable.test") as base:
            listed = rcpt_reply(swaks(ns, "127.0.0.66"))
            clean_transcript = swaks(ns, "127.0.0.77")
            rbl_listed = rcpt_reply(swaks(ns, "127.0.0.66", port=2525))
            rbl_clean = rcpt_reply(swaks(ns, "127.0.0.77", port=2525))
            assert dig_a(ns, "99.0.0.127.bl.reputable.test") == ""
            sent = time.monotonic()
            trap = rcpt_reply(swaks(ns, "127.0.0.99", to="trap@example.net"))
            while time.monotonic() - sent < 10 and not dig_a(ns, "99.0.0.127.bl.reputable.test"):
                time.sleep(0.1)
            listed_after = time.monotonic() - sent
            after_trap = rcpt_reply(swaks(ns, "127.0.0.99"))
            maillog = (base / "maillog").read_text()
        serve_log = log.read_text()
    assert listed.startswith("554 5.7.1"), listed
    assert "Client host 127.0.0.66 is listed in bl.reputable.test (spam)" in listed
    assert "http://127.0.0.1:8080/lookup/127.0.0.66" in listed
    assert rcpt_reply(clean_transcript).startswith("250"), clean_transcript
    assert "250 2.0.0 Ok: queued" in clean_transcript
    assert rbl_listed.startswith("554 5.7.1") and "blocked using bl.reputable.test" in rbl_listed
    assert rbl_clean.startswith("250"), rbl_clean
    assert trap.startswith("250")  # the trap itself accepts: the evidence is what counts
    assert listed_after < 5, f"trap sender listed after {listed_after:.2f} s\n{serve_log}"
    assert after_trap.startswith("554 5.7.1"), after_trap
    assert "policy_trap_evidence" in serve_log
    assert "reject: RCPT from unknown[127.0.0.66]" in maillog

"""`reputable serve` follows a mail log: spam-trap hits written to it end up listed in DNS."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import dns.message
import dns.query

from reputable.testing import RunningServer, free_port, write_config
from tests.conftest import use_store


def a_codes(port: int, name: str) -> set[str]:
    """Return the A codes answered for *name*."""
    reply = dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=3)
    return {r.address for rrset in reply.answer for r in rrset}


def test_followed_maillog_lists_trap_hitter(tmp_path: Path, store_dsn: str) -> None:
    """Three trap hits appended to a followed Postfix log list the client within seconds."""
    port = free_port()
    log = tmp_path / "mail.log"
    log.write_text("")
    extra = '[sources.maillog]\npaths = ["mail.log"]\npoll = 0.2\n[traps]\naddresses = ["trap@example.org"]\n'
    config = use_store(write_config(tmp_path, dns_port=port, extra=extra), store_dsn)
    config.write_text(config.read_text().replace('interval = "5s"', 'interval = "1s"'))
    name = "66.2.0.192.bl.reputable.test"
    with RunningServer(config) as running:
        assert a_codes(port, name) == set()
        with log.open("a") as fh:
            for i in range(3):
                stamp = datetime.now(UTC).isoformat(timespec="microseconds")
                fh.write(
                    f"{stamp} mx postfix/smtpd[9{i}]: NOQUEUE: reject: RCPT from unknown[192.0.2.66]:"
                    " 550 5.1.1 <trap@example.org>: Recipient address rejected: User unknown in local"
                    f" recipient table; from=<x{i}@spam.example> to=<trap@example.org> proto=ESMTP"
                    " helo=<spam.example>\n"
                )
        deadline = time.monotonic() + 60  # the follower polls 5 times a second; the policy 1 s
        while "127.0.0.2" not in a_codes(port, name):
            assert time.monotonic() < deadline, running.log()[-3000:]
            time.sleep(0.3)

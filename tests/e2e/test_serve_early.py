"""`reputable serve` answers from the last snapshot before its imports, and only when it may."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import dns.message
import dns.query
import pytest

from reputable.publication.dnsbl import fastpath
from reputable.testing import RunningServer, cli, free_port, write_config

pytestmark = pytest.mark.skipif(
    fastpath.extension() is None, reason="the compiled packet loop (_fastdns) is not built"
)

IP_NAME = "7.100.51.198.bl.reputable.test"
DOMAIN_NAME = "www.evil.example.dbl.reputable.test"


def _listed(tmp_path: Path, **dns: str) -> tuple[Path, int]:
    port = free_port()
    config = write_config(tmp_path, dns_port=port, **dns)
    cli(config, "list", "add", "198.51.100.7", "--cause", "spam", "--reason", "trap hits")
    cli(config, "list", "add", "evil.example", "--cause", "malware_host")
    cli(config, "snapshot", "build")
    return config, port


def _plan(config: Path) -> Path:
    return fastpath.plan_path(config.parent / "reputable.snapshot")


class _Asker(threading.Thread):
    """Asks one question over and over from the moment serve starts until told to stop."""

    def __init__(self, port: int, name: str) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.name = name
        self.replies: list[dns.message.Message] = []
        self.unanswered = 0
        self.done = threading.Event()

    def run(self) -> None:
        # A connected socket, so a query sent before serve binds fails at once (ICMP port
        # unreachable) instead of waiting out a timeout.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("127.0.0.1", self.port))
            sock.settimeout(3)
            while not self.done.is_set():
                query = dns.message.make_query(self.name, "A")
                try:
                    sock.send(query.to_wire())
                    self.replies.append(dns.message.from_wire(sock.recv(4096)))
                except ConnectionRefusedError:  # not bound yet
                    time.sleep(0.001)
                except TimeoutError:
                    self.unanswered += 1


def _log_event(log: str, event: str) -> dict[str, str]:
    line = next(line for line in log.splitlines() if event in line)
    return dict(part.split("=", 1) for part in line.split() if "=" in part)


def test_second_start_answers_before_the_imports(tmp_path: Path) -> None:
    """`snapshot build` records a plan; serve answers from it, then the worker takes over.

    A domain query asked during the early phase is left for Python by the C loop; it must be
    answered once the worker takes over, not dropped.
    """
    config, port = _listed(tmp_path)
    plan = json.loads(_plan(config).read_text())
    assert plan["config"] == config.read_text()
    assert plan["listen"] == [["127.0.0.1", port]]

    ip_asker, domain_asker = _Asker(port, IP_NAME), _Asker(port, DOMAIN_NAME)
    ip_asker.start()
    domain_asker.start()
    with RunningServer(config) as running:
        time.sleep(0.2)
        for asker in (ip_asker, domain_asker):  # stop asking while the server still answers
            asker.done.set()
            asker.join()
    adopted = _log_event(running.log(), "early_start_adopted")
    assert int(adopted["left_for_python"]) >= 1
    assert ip_asker.unanswered == domain_asker.unanswered == 0
    assert ip_asker.replies and domain_asker.replies
    for reply in ip_asker.replies:
        assert [r.address for rrset in reply.answer for r in rrset] == ["127.0.0.2"]
    for reply in domain_asker.replies:
        assert [r.address for rrset in reply.answer for r in rrset] == ["127.0.1.7"]


def test_a_plan_that_disagrees_with_the_config_is_discarded(tmp_path: Path) -> None:
    """Same config text, different engine arguments (a tampered plan): the config wins."""
    config, port = _listed(tmp_path)
    plan = json.loads(_plan(config).read_text())
    plan["engine"]["ttl"] = 7
    _plan(config).write_text(json.dumps(plan))
    with RunningServer(config) as running:
        reply = dns.query.udp(dns.message.make_query(IP_NAME, "A"), "127.0.0.1", port=port)
        assert reply.answer[0].ttl == 900
        assert "early_start_discarded" in running.log()
    assert json.loads(_plan(config).read_text())["engine"]["ttl"] == 900


def test_an_edited_config_is_not_started_early(tmp_path: Path) -> None:
    """Any change to the config text makes the plan unusable: the normal start serves it."""
    config, port = _listed(tmp_path)
    config.write_text(config.read_text().replace("ttl = 900", "ttl = 60", 1))
    with RunningServer(config) as running:
        reply = dns.query.udp(dns.message.make_query(IP_NAME, "A"), "127.0.0.1", port=port)
        assert reply.answer[0].ttl == 60
        assert "early_start" not in running.log()


def test_no_plan_when_access_rules_restrict_clients(tmp_path: Path) -> None:
    """The early loop answers everyone, so restricted servers never leave a plan."""
    config, _ = _listed(tmp_path)
    assert _plan(config).exists()
    text = config.read_text()
    start = text.index("access = [")
    end = text.index("]\n", start) + 2
    rules = (
        '[{ network = "127.0.0.0/8", action = "answer" }, { network = "::/0", action = "refuse" }]'
    )
    config.write_text(text[:start] + f"access = {rules}\n" + text[end:])
    with RunningServer(config) as running:
        assert "early_start" not in running.log()
    assert not _plan(config).exists()

"""`reputable serve` answers from the last snapshot before its imports, and only when it may."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

from reputable.publication.dnsbl import fastpath
from reputable.testing import RunningServer, cli, free_port, wait_for, write_config

pytestmark = pytest.mark.skipif(
    fastpath.extension() is None, reason="the compiled packet loop (_fastdns) is not built"
)

IP_NAME = "7.100.51.198.bl.reputable.test"
DOMAIN_NAME = "www.evil.example.dbl.reputable.test"
#: An IPv6 name (2001:db8::1): left for Python by the C loop, like every domain-zone name.
IPV6_NAME = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.reputable.test"
#: How long a client waits before it counts a query lost (overlay_change.py's stream; a
#: resolver retries sooner: Unbound after 376 ms for a server it does not know).
CLIENT_TIMEOUT = 1.0


def _listed(tmp_path: Path) -> tuple[Path, int]:
    port = free_port()
    config = write_config(tmp_path, dns_port=port)
    cli(config, "list", "add", "198.51.100.7", "--cause", "spam", "--reason", "trap hits")
    cli(config, "list", "add", "evil.example", "--cause", "malware_host")
    cli(config, "snapshot", "build")
    return config, port


def _plan(config: Path) -> Path:
    return fastpath.plan_path(config.parent / "reputable.snapshot")


class _Asker(threading.Thread):
    """Asks one question over and over from the moment serve starts until told to stop."""

    def __init__(self, port: int, name: str, timeout: float = 3) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.name = name
        self.timeout = timeout
        self.replies: list[dns.message.Message] = []
        #: (monotonic time before the send, after it) of every query sent (a refused one is
        #: taken out again once the refusal comes back).
        self.sends: list[tuple[float, float]] = []
        #: monotonic time before the send of every query answered, and when it was answered.
        self.answered: list[tuple[float, float]] = []
        self.unanswered = 0
        self.done = threading.Event()

    def run(self) -> None:
        # A connected socket, so a query sent before serve binds fails at once (ICMP port
        # unreachable) instead of waiting out a timeout.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("127.0.0.1", self.port))
            sock.settimeout(self.timeout)
            while not self.done.is_set():
                query = dns.message.make_query(self.name, "A")
                try:
                    before = time.monotonic()
                    sock.send(query.to_wire())
                    self.sends.append((before, time.monotonic()))
                    # One query at a time: a late reply to an earlier one would be read
                    # here, so only the reply to this query counts.
                    while (reply := dns.message.from_wire(sock.recv(4096))).id != query.id:
                        pass
                    self.replies.append(reply)
                    self.answered.append((before, time.monotonic()))
                except ConnectionRefusedError:  # not bound yet
                    if self.sends and self.sends[-1][0] == before:
                        self.sends.pop()  # never read by anyone
                    time.sleep(0.001)
                except TimeoutError:
                    self.unanswered += 1


def _start_once_bound(ip: _Asker, others: list[_Asker]) -> None:
    """Start *others* once the early loop answered *ip* (asking from before serve started).

    Queries of theirs sent before the bind are refused at once; one sent in the instant of
    the bind, before *ip*'s first answer, would be held by the early loop unseen by
    `_read_by_the_early_loop`, and the adoption held for another would let it time out.
    """
    wait_for(lambda: ip.answered, 120, "an answer from the early loop")
    for other in others:
        other.start()


def _read_by_the_early_loop(ip: _Asker, others: list[_Asker]) -> Callable[[], bool]:
    """Return a test: has the early C loop read a query of each of *others* (left for Python)?

    True once each of *others* sent a query after the early loop's first IPv4 answer (so to a
    bound socket) and before an IPv4 query that the early loop answered: the loop reads its
    one UDP socket in order, so it has read that query and holds it for the worker. Only
    while serve's adoption is held back (``ADOPT`` gate) are IPv4 answers the early loop's.
    """

    def test() -> bool:
        answered = list(ip.answered)
        if not answered:
            return False
        bound, last_sent = answered[0][1], answered[-1][0]
        return all(
            any(bound < before and after < last_sent for before, after in list(other.sends))
            for other in others
        )

    return test


def _log_event(log: str, event: str) -> dict[str, str]:
    line = next(line for line in log.splitlines() if event in line)
    return dict(part.split("=", 1) for part in line.split() if "=" in part)


def test_second_start_answers_before_the_imports(tmp_path: Path) -> None:
    """`snapshot build` records a plan; serve answers from it, then the worker takes over.

    A domain query asked during the early phase is left for Python by the C loop; it must be
    answered once the worker takes over, not dropped. The adoption is held back until the
    early loop has read one (a loaded machine may not run the askers in the milliseconds
    between the early bind and the adoption).
    """
    config, port = _listed(tmp_path)
    plan = json.loads(_plan(config).read_text())
    assert plan["config"] == config.read_text()
    assert plan["listen"] == [["127.0.0.1", port]]

    askers = ip_asker, domain_asker = _Asker(port, IP_NAME), _Asker(port, DOMAIN_NAME)
    ip_asker.start()
    _open(config, "load")
    with _held_serve(config) as (proc, log):
        _start_once_bound(ip_asker, [domain_asker])
        read = _read_by_the_early_loop(ip_asker, [domain_asker])
        wait_for(read, 120, "a domain query read by the early loop")
        _open(config, "adopt")
        _wait_ready(proc, log)
        wait_for(lambda: domain_asker.replies, 30, "an answer to the domain query")
        for asker in askers:  # stop asking while the server still answers
            asker.done.set()
            asker.join()
        text = log.read_text()
    adopted = _log_event(text, "early_start_adopted")
    assert int(adopted["left_for_python"]) >= 1
    assert ip_asker.unanswered == domain_asker.unanswered == 0
    assert ip_asker.replies and domain_asker.replies
    for reply in ip_asker.replies:
        assert [r.address for rrset in reply.answer for r in rrset] == ["127.0.0.2"]
    for reply in domain_asker.replies:
        assert [r.address for rrset in reply.answer for r in rrset] == ["127.0.1.7"]


#: `reputable serve` with two start-up steps held back until the test opens them (`_open`):
#: the worker's adoption of the early start ("adopt") and the configuration's full load, the
#: schema check ("load"), which is then made DELAY seconds slower, as a loaded machine makes
#: it (seconds at load 15: docs/benchmarks.md).
HELD_SERVE = """
import sys, time
from pathlib import Path
import reputable.config
from reputable.cli import launch

delay, gates = float(sys.argv.pop(1)), Path(sys.argv.pop(1))
full_load, adopt = reputable.config.load_config, launch._adopt_early

def held(step):
    deadline = time.monotonic() + 120  # the test failed before it opened the step
    while not (gates / step).exists() and time.monotonic() < deadline:
        time.sleep(0.002)

def held_adopt(*args, **kwargs):
    held("adopt")
    return adopt(*args, **kwargs)

def slow_load(path=None):
    held("load")
    time.sleep(delay)
    return full_load(path)

launch._adopt_early = held_adopt
reputable.config.load_config = slow_load
launch.main()
"""


def _open(config: Path, step: str) -> None:
    """Let serve's held start-up *step* ("adopt" or "load": HELD_SERVE) run."""
    gates = config.parent / "gates"
    gates.mkdir(exist_ok=True)
    (gates / step).touch()


@contextmanager
def _held_serve(config: Path, delay: float = 0.0) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """Start serve with HELD_SERVE; yield it and its log file at once (not ready: see `_open`)."""
    log = config.parent / "serve.log"
    gates = config.parent / "gates"
    argv = [sys.executable, "-c", HELD_SERVE, str(delay), str(gates), "--config", str(config)]
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*argv, "serve", "--metrics", f"127.0.0.1:{free_port()}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        try:
            yield proc, log
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def _wait_ready(proc: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until serve logs serve_ready (120 s: a cold start on a loaded machine)."""

    def ready() -> bool:
        text = log.read_text()
        assert proc.poll() is None, text
        return "serve_ready" in text

    wait_for(ready, 120, "serve_ready in serve's log")


@pytest.mark.serial  # a wall-clock limit (CLIENT_TIMEOUT): no other worker's test runs meanwhile
def test_queries_left_for_python_do_not_wait_for_the_config_check(tmp_path: Path) -> None:
    """Issue 16: the worker takes the early start's leftovers before the full config load.

    The early C loop answers the IPv4 zone; domain-zone and IPv6 queries wait for the worker.
    The worker used to start after ``load_config`` (the schema: 0.26 s quiet, seconds under
    load) and the preflight, so a client with a 1 s timeout lost them. Here the load is
    made 1.5 s slower: no query may go unanswered for CLIENT_TIMEOUT all the same.
    """
    config, port = _listed(tmp_path)
    askers = [_Asker(port, name, CLIENT_TIMEOUT) for name in (DOMAIN_NAME, IPV6_NAME, IP_NAME)]
    askers[2].start()
    with _held_serve(config, 1.5) as (proc, log):
        # Adoption waits until the early loop holds a domain and an IPv6 query: otherwise a
        # loaded machine may leave the askers no turn in that window, and the start proves
        # nothing.
        _start_once_bound(askers[2], askers[:2])
        read = _read_by_the_early_loop(askers[2], askers[:2])
        wait_for(read, 120, "a domain and an IPv6 query read by the early loop")
        _open(config, "adopt")
        _open(config, "load")
        _wait_ready(proc, log)
        for asker in askers:
            asker.done.set()
            asker.join()
        text = log.read_text()
    assert int(_log_event(text, "early_start_adopted")["left_for_python"]) >= 1
    assert [a.unanswered for a in askers] == [0, 0, 0]
    domain, ipv6, ip = (a.replies for a in askers)
    assert domain and ipv6 and ip
    assert {tuple(r.address for rrset in m.answer for r in rrset) for m in domain} == {
        ("127.0.1.7",)
    }
    assert {m.rcode() for m in ipv6} == {dns.rcode.NXDOMAIN}
    assert {tuple(r.address for rrset in m.answer for r in rrset) for m in ip} == {("127.0.0.2",)}


def test_a_config_edited_during_the_start_replaces_the_early_worker(tmp_path: Path) -> None:
    """The worker starts from the plan's text; a file edited before the full load wins.

    The full load is held back until the file is edited, after the adoption.
    """
    config, port = _listed(tmp_path)
    _open(config, "adopt")
    with _held_serve(config) as (proc, log):
        wait_for(lambda: "early_start_adopted" in log.read_text(), 120, "the adoption")
        config.write_text(config.read_text().replace("ttl = 900", "ttl = 60", 1))
        _open(config, "load")
        _wait_ready(proc, log)
        query = dns.message.make_query(IP_NAME, "A")
        reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=10)
        assert reply.answer[0].ttl == 60
        text = log.read_text()
    assert text.index("early_start_adopted") < text.index("early_start_discarded")


@pytest.mark.serial  # a wall-clock limit (CLIENT_TIMEOUT): no other worker's test runs meanwhile
def test_no_query_lost_from_the_first_answer_to_http_ready(tmp_path: Path) -> None:
    """Queries of every kind, one after another from before serve binds until its HTTP API is
    up (the seconds the supervisor imports the web app beside the in-process DNS worker):
    each is answered within CLIENT_TIMEOUT."""
    config, port = _listed(tmp_path)
    askers = [_Asker(port, name, CLIENT_TIMEOUT) for name in (DOMAIN_NAME, IPV6_NAME, IP_NAME)]
    for asker in askers:
        asker.start()
    with RunningServer(config) as running:
        deadline = time.monotonic() + 120
        while "http_ready" not in running.log():
            assert time.monotonic() < deadline, running.log()
            time.sleep(0.05)
        time.sleep(0.5)
        for asker in askers:
            asker.done.set()
            asker.join()
    assert "early_start_adopted" in running.log()
    assert [a.unanswered for a in askers] == [0, 0, 0]
    assert all(a.replies for a in askers)


def test_a_plan_that_disagrees_with_the_config_is_discarded(tmp_path: Path) -> None:
    """Same config text, different engine arguments (a tampered plan): the config wins."""
    config, port = _listed(tmp_path)
    plan = json.loads(_plan(config).read_text())
    plan["engine"]["ttl"] = 7
    _plan(config).write_text(json.dumps(plan))
    with RunningServer(config) as running:
        reply = dns.query.udp(
            dns.message.make_query(IP_NAME, "A"), "127.0.0.1", port=port, timeout=10
        )
        assert reply.answer[0].ttl == 900
        assert "early_start_discarded" in running.log()
    assert json.loads(_plan(config).read_text())["engine"]["ttl"] == 900


def test_an_edited_config_is_not_started_early(tmp_path: Path) -> None:
    """Any change to the config text makes the plan unusable: the normal start serves it."""
    config, port = _listed(tmp_path)
    config.write_text(config.read_text().replace("ttl = 900", "ttl = 60", 1))
    with RunningServer(config) as running:
        reply = dns.query.udp(
            dns.message.make_query(IP_NAME, "A"), "127.0.0.1", port=port, timeout=10
        )
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

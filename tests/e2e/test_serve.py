"""`reputable serve` over real loopback sockets, checked with dnspython and dig."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

from reputable.testing import RunningServer, cli, free_port, wait_for, write_config

NAME = "7.100.51.198.bl.reputable.test"


def query(
    port: int, name: str, rdtype: str = "A", *, tcp: bool = False, source: str | None = None
) -> dns.message.Message:
    """Ask the server on 127.0.0.1:*port* one question."""
    q = dns.message.make_query(name, rdtype)
    if tcp:
        return dns.query.tcp(q, "127.0.0.1", port=port, timeout=3)
    return dns.query.udp(q, "127.0.0.1", port=port, timeout=3, source=source)


def codes(reply: dns.message.Message) -> set[str]:
    """Return the A addresses of a reply."""
    return {r.address for rrset in reply.answer for r in rrset if rrset.rdtype == 1}


def start_server(folder: Path) -> Iterator[tuple[Path, int, RunningServer]]:
    """Run a server with a few listings in *folder*, on free loopback ports."""
    port = free_port()
    config = write_config(folder, dns_port=port)
    cli(
        config,
        "list",
        "add",
        "198.51.100.7",
        "--cause",
        "spam",
        "--reason",
        "spam trap hits",
        "--ttl",
        "7d",
    )
    cli(config, "list", "add", "198.51.100.0/24", "--cause", "compromised")
    cli(config, "list", "add", "evil.example", "--cause", "malware_host")
    with RunningServer(config) as running:
        yield config, port, running


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Path, int, RunningServer]]:
    """A server of this test's own (for tests that change listings or read its log)."""
    yield from start_server(tmp_path)


@pytest.fixture(scope="module")
def shared_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, int, RunningServer]]:
    """One server for the module's tests that only ask questions (one start instead of two)."""
    yield from start_server(tmp_path_factory.mktemp("shared"))


def test_answers_over_udp_and_tcp(shared_server: tuple[Path, int, RunningServer]) -> None:
    """The same question gets the same codes over UDP and TCP."""
    _, port, _ = shared_server
    assert codes(query(port, NAME)) == {"127.0.0.2", "127.0.0.4"}
    assert codes(query(port, NAME, tcp=True)) == {"127.0.0.2", "127.0.0.4"}
    assert codes(query(port, "www.evil.example.dbl.reputable.test")) == {"127.0.1.7"}
    assert query(port, "www.example.com").rcode() == dns.rcode.REFUSED


@pytest.mark.skipif(
    shutil.which("dig") is None, reason="dig (Debian package dnsutils/bind9-dnsutils) not installed"
)
def test_dig_sees_the_issue_examples(shared_server: tuple[Path, int, RunningServer]) -> None:
    """dig, an independent client, reads the answers the issue promises."""
    _, port, _ = shared_server

    def dig(*args: str) -> str:
        return subprocess.run(
            ["dig", "@127.0.0.1", "-p", str(port), "+short", "+time=2", "+tries=1", *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout

    assert dig(NAME, "A").split() == ["127.0.0.2", "127.0.0.4"]
    assert "spam trap hits http://127.0.0.1:8080/lookup/198.51.100.7" in dig(NAME, "TXT")
    assert dig("www.evil.example.dbl.reputable.test", "A").strip() == "127.0.1.7"
    full = subprocess.run(
        ["dig", "@127.0.0.1", "-p", str(port), "+tcp", "9.9.9.9.bl.reputable.test"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    assert "status: NXDOMAIN" in full and "SOA" in full


@pytest.mark.serial  # a wall-clock limit: no other worker's test runs meanwhile
def test_cli_change_visible_within_five_seconds(server: tuple[Path, int, RunningServer]) -> None:
    """A listing added with the CLI answers on the running server within 5 s; removal too."""
    config, port, _ = server
    name = "99.2.0.192.bl.reputable.test"
    assert query(port, name).rcode() == dns.rcode.NXDOMAIN
    # Each change waited for past the limit, then timed: a failure says how late it was.
    cli(config, "list", "add", "192.0.2.99", "--cause", "harvest")
    took = wait_for(lambda: codes(query(port, name)) == {"127.0.0.3"}, 30, "the listing")
    assert took < 5.0, f"answered {took:.2f} s after `list add`"
    cli(config, "list", "remove", "192.0.2.99")
    took = wait_for(lambda: query(port, name).rcode() == dns.rcode.NXDOMAIN, 30, "the removal")
    assert took < 5.0, f"still answered {took:.2f} s after `list remove`"


def test_expiry_without_restart(server: tuple[Path, int, RunningServer]) -> None:
    """A listing with a short TTL stops answering when it expires, with no restart."""
    config, port, running = server
    # The listing must be seen answered before it expires, or its end proves nothing; how
    # soon it is seen is the machine's (the CLI's start, the next reload), so a TTL that ran
    # out first is tried again, twice as long: 8 s keeps the usual run short.
    for ttl in (8, 16, 32, 64):
        name = f"{ttl}.2.0.192.bl.reputable.test"
        cli(config, "list", "add", f"192.0.2.{ttl}", "--cause", "spam", "--ttl", f"{ttl}s")
        expired_by = time.monotonic() + ttl  # the CLI stamped the listing before it returned
        while time.monotonic() < expired_by:
            if codes(query(port, name)) == {"127.0.0.2"}:
                break
            time.sleep(0.05)
        else:
            continue  # expired before it was ever answered: a longer TTL
        wait_for(
            lambda name=name: query(port, name).rcode() == dns.rcode.NXDOMAIN,
            ttl + 30,
            "the expiry",
            running.log,
        )
        return
    pytest.fail(f"no listing was answered before its TTL ran out (up to 64 s):\n{running.log()}")


def test_reloads_drop_no_query(server: tuple[Path, int, RunningServer]) -> None:
    """Queries sent while the snapshot is swapped several times are all answered."""
    config, port, running = server
    answered = 0
    lost = 0
    stop = threading.Event()

    def hammer() -> None:
        nonlocal answered, lost
        while not stop.is_set():
            try:
                reply = query(port, NAME)
                answered += codes(reply) == {"127.0.0.2", "127.0.0.4"}
            except dns.exception.Timeout:
                lost += 1

    thread = threading.Thread(target=hammer)
    thread.start()
    for i in range(4):
        cli(config, "list", "add", f"192.0.2.{100 + i}", "--cause", "spam")
        time.sleep(1.2)
    wait_for(lambda: codes(query(port, "103.2.0.192.bl.reputable.test")) == {"127.0.0.2"}, 30)
    stop.set()
    thread.join()
    assert lost == 0
    assert answered > 100
    assert "snapshot_loaded" in running.log()


def test_malformed_packets_keep_the_server_running(server: tuple[Path, int, RunningServer]) -> None:
    """Junk datagrams are counted as errors and the next query is still answered."""
    _, port, running = server
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        for junk in (
            b"",
            b"\x00",
            b"\x12\x34" + b"\xff" * 40,
            b"\x12\x34\x01\x00\x00\x01" + b"\x00" * 6 + b"\x40",
        ):
            sock.sendto(junk, ("127.0.0.1", port))
        sock.sendto(
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",
            ("127.0.0.1", port),
        )
        reply = dns.message.from_wire(sock.recvfrom(4096)[0])
        assert reply.rcode() == dns.rcode.FORMERR
    assert codes(query(port, NAME)) == {"127.0.0.2", "127.0.0.4"}
    metrics = (
        urllib.request.urlopen(f"http://127.0.0.1:{running.metrics_port}/metrics", timeout=5)
        .read()
        .decode()
    )
    wait_for(
        lambda: (
            'zone="-",result="error"} 0'
            not in urllib.request.urlopen(
                f"http://127.0.0.1:{running.metrics_port}/metrics", timeout=5
            )
            .read()
            .decode()
        ),
        30,
    )
    assert "# TYPE reputable_dns_queries_total counter" in metrics


def test_metrics_count_hits(server: tuple[Path, int, RunningServer]) -> None:
    """The Prometheus endpoint reports hits per zone."""
    _, port, running = server
    for _ in range(3):
        query(port, NAME)

    def hits() -> int:
        text = (
            urllib.request.urlopen(f"http://127.0.0.1:{running.metrics_port}/metrics", timeout=5)
            .read()
            .decode()
        )
        for line in text.splitlines():
            if line.startswith(
                'reputable_dns_queries_total{zone="bl.reputable.test",result="hit"}'
            ):
                return int(line.split()[-1])
        return 0

    wait_for(lambda: hits() >= 3, 30)


def test_access_control(tmp_path: Path) -> None:
    """Clients are answered, refused or ignored by network, longest prefix first."""
    port = free_port()
    extra_dns = (
        'access = [{ network = "127.0.0.0/8", action = "answer" },'
        ' { network = "127.0.0.66/32", action = "refuse" },'
        ' { network = "127.0.0.77/32", action = "ignore" }]'
    )
    config = write_config(tmp_path, dns_port=port)
    text = config.read_text()
    start = text.index("access = [")
    end = text.index("]\n", start) + 2
    config.write_text(text[:start] + extra_dns + "\n" + text[end:])
    cli(config, "list", "add", "198.51.100.7", "--cause", "spam")
    with RunningServer(config):
        assert codes(query(port, NAME)) == {"127.0.0.2"}
        assert query(port, NAME, source="127.0.0.66").rcode() == dns.rcode.REFUSED
        with pytest.raises(dns.exception.Timeout):
            dns.query.udp(
                dns.message.make_query(NAME, "A"),
                "127.0.0.1",
                port=port,
                timeout=1,
                source="127.0.0.77",
            )


def test_several_workers_share_the_port(tmp_path: Path) -> None:
    """With workers = 2 both processes answer on the same port."""
    port = free_port()
    config = write_config(tmp_path, dns_port=port, workers="2")
    cli(config, "list", "add", "198.51.100.7", "--cause", "spam")
    with RunningServer(config) as running:
        for _ in range(20):
            assert codes(query(port, NAME)) == {"127.0.0.2"}
        assert running.log().count("dns_worker_ready") == 2


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    """A DNS port already taken makes serve exit with a message naming the address."""
    port = free_port()
    config = write_config(tmp_path, dns_port=port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", port))
        result = subprocess.run(
            [sys.executable, "-m", "reputable", "--config", str(config), "serve", "--metrics", ""],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_snapshot_of_an_older_format_is_rebuilt(tmp_path: Path) -> None:
    """A snapshot written by an older version (format number) is rebuilt at start, not fatal.

    The first start leaves a serve plan, so the second also tries the early C start on it.
    """
    from reputable.config import load_config
    from reputable.publication.snapshot.layout import VERSION, readable

    port = free_port()
    config = write_config(tmp_path, dns_port=port)
    cli(config, "list", "add", "198.51.100.7", "--cause", "spam")
    with RunningServer(config):
        assert codes(query(port, NAME)) == {"127.0.0.2"}
    snapshot = load_config(config).snapshot_path
    raw = snapshot.read_bytes()
    new, old = f'"version": {VERSION}'.encode(), f'"version": {VERSION - 1}'.encode()
    assert raw.count(new) == 1
    snapshot.write_bytes(raw.replace(new, old))
    assert not readable(snapshot)
    with RunningServer(config) as running:
        assert codes(query(port, NAME)) == {"127.0.0.2"}
        assert readable(snapshot)
        assert "error" not in running.log().lower()

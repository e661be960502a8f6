"""The network-log detectors: leaky buckets per scenario, their settings, and memory bounds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reputable.core.cause import Cause
from reputable.core.errors import ConfigError
from reputable.evidence.detectors.net import NetDetector
from reputable.evidence.detectors.netconfig import NetSettings, net_settings
from reputable.evidence.parsers.netbase import NetEvent

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC).timestamp()


def ssh(
    ts: float, ip: str, user: str = "root", event: str = "auth_failed", line: int = 1
) -> NetEvent:
    """Return an sshd attempt event."""
    return NetEvent(line=line, ts=ts, ip=ip, event=event, text=f"{event} {user} {ip}", user=user)


def run(events: list[NetEvent], settings: NetSettings | None = None) -> NetDetector:
    """Feed *events* to a fresh detector and return it."""
    detector = NetDetector(settings or NetSettings(), source="netlog:test")
    for event in events:
        detector.observe(event)
    return detector


def scenarios(detector: NetDetector) -> list[str]:
    """Return the scenario of every piece of evidence found."""
    return [str(e.detail["scenario"]) for e in detector.found]


def test_fast_brute_force_gives_compromised_evidence_with_counts_and_samples() -> None:
    """Six failed logins in six seconds overflow ssh_bruteforce (capacity 5) once."""
    detector = run([ssh(T0 + i, "203.0.113.7", line=10 + i) for i in range(6)])
    assert scenarios(detector) == ["ssh_bruteforce"]
    item = detector.found[0]
    assert item.cause is Cause.COMPROMISED
    assert str(item.subject) == "203.0.113.7"
    assert item.detail["events"] == 6
    assert [s["line"] for s in item.detail["samples"]] == [10, 11, 12]
    assert item.source == "netlog:test"


def test_user_mistyping_a_password_a_few_times_is_not_flagged() -> None:
    """Four wrong passwords typed ten seconds apart, then a login, give no evidence."""
    events = [ssh(T0 + 10 * i, "192.0.2.44", user="alice") for i in range(4)]
    events.append(ssh(T0 + 40, "192.0.2.44", user="alice", event="accepted"))
    assert run(events).found == []


def test_low_and_slow_guessing_across_user_names_is_found() -> None:
    """One guess every 20 minutes with a new user name each time overflows ssh_user_enum."""
    events = [ssh(T0 + 1200 * i, "198.51.100.5", user=f"user{i}") for i in range(30)]
    detector = run(events)
    assert "ssh_user_enum" in scenarios(detector)
    assert "ssh_bruteforce" not in scenarios(detector)
    item = next(e for e in detector.found if e.detail["scenario"] == "ssh_user_enum")
    assert len(item.detail["distinct_user"]) == 6


def test_one_attack_gives_one_piece_of_evidence_per_blackout() -> None:
    """A two-hour attack at one guess a second yields two ssh_bruteforce findings (blackout 1h)."""
    events = [ssh(T0 + i, "203.0.113.8") for i in range(0, 7200, 1)]
    detector = run(events)
    assert scenarios(detector).count("ssh_bruteforce") == 2


def test_capacity_and_leakspeed_come_from_the_detectors_net_section() -> None:
    """[detectors.net.ssh_bruteforce] capacity 2 makes the third guess overflow."""
    settings = net_settings(
        {"detectors": {"net": {"ssh_bruteforce": {"capacity": 2, "leakspeed": "1m"}}}}
    )
    bf = next(s for s in settings.scenarios if s.name == "ssh_bruteforce")
    assert (bf.capacity, bf.leakspeed) == (2.0, 60.0)
    detector = run([ssh(T0 + 20 * i, "203.0.113.9") for i in range(3)], settings)
    assert scenarios(detector) == ["ssh_bruteforce"]


@pytest.mark.parametrize(
    "section",
    [
        {"ssh_bruteforce": {"capacity": -1}},
        {"ssh_bruteforce": {"leakspeed": "soon"}},
        {"ssh_bruteforce": {"size": 3}},
        {"no_such_scenario": {}},
        {"sinkholes": ["not-a-network"]},
    ],
)
def test_bad_settings_are_a_config_error_naming_the_key(section: dict[str, object]) -> None:
    """Every invalid [detectors.net] value raises ConfigError mentioning [detectors.net]."""
    with pytest.raises(ConfigError, match=r"detectors\.net"):
        net_settings({"detectors": {"net": section}})


def packet(ts: float, src: str, dst: str, dport: int, event: str = "packet") -> NetEvent:
    """Return a netfilter packet event."""
    return NetEvent(
        line=1, ts=ts, ip=src, event=event, text="", dst=dst, dport=dport, proto="tcp", packets=1
    )


def test_many_ports_from_one_source_is_a_port_scan() -> None:
    """Sixteen distinct ports within a few seconds overflow port_scan; repeats of one port do not."""
    scan = run([packet(T0 + i * 0.1, "203.0.113.20", "192.0.2.1", 1000 + i) for i in range(16)])
    assert scenarios(scan) == ["port_scan"]
    same = run([packet(T0 + i * 0.1, "203.0.113.21", "192.0.2.1", 443) for i in range(16)])
    assert same.found == []


def test_many_hosts_from_one_source_is_a_host_scan() -> None:
    """Thirty-one hosts on one port within seconds overflow host_scan."""
    events = [packet(T0 + i * 0.1, "203.0.113.22", f"192.0.2.{i + 1}", 23) for i in range(31)]
    assert scenarios(run(events)) == ["host_scan"]


def test_syn_flood_and_flow_packet_flood() -> None:
    """250 SYNs in a quarter second overflow syn_flood; one flow of 200,000 packets overflows packet_flood."""
    syns = [packet(T0 + i * 0.001, "203.0.113.23", "192.0.2.1", 80, "syn") for i in range(250)]
    assert "syn_flood" in scenarios(run(syns))
    flow = NetEvent(
        line=1, ts=T0, ip="203.0.113.24", event="flow", text="", dst="192.0.2.1", dport=80,
        proto="udp", packets=200_000, size=1,
    )  # fmt: skip
    assert scenarios(run([flow])) == ["packet_flood"]


def test_a_single_packet_to_a_sinkhole_lists_the_talker() -> None:
    """One connection from an inside host to a configured C2 address is evidence at once."""
    settings = net_settings({"detectors": {"net": {"sinkholes": ["198.51.100.66/32"]}}})
    detector = run([packet(T0, "192.0.2.77", "198.51.100.66", 443)], settings)
    assert scenarios(detector) == ["sinkhole"]
    assert str(detector.found[0].subject) == "192.0.2.77"


def web(ts: float, ip: str, path: str, status: int, method: str = "GET") -> NetEvent:
    """Return an access-log event."""
    return NetEvent(
        line=1, ts=ts, ip=ip, event="http_request", text="", method=method, path=path, status=status
    )


def test_exploit_path_storm_and_4xx_storm_and_request_flood() -> None:
    """Five exploit paths, twenty-one distinct 404s and 700 requests in 0.7 s each overflow their bucket."""
    probes = ["/.env", "/wp-login.php", "/cgi-bin/test.cgi", "/.git/config", "/phpmyadmin/"]
    exploit = run([web(T0 + i, "203.0.113.30", p, 404) for i, p in enumerate(probes)])
    assert "http_exploit_probe" in scenarios(exploit)
    storm = run([web(T0 + i * 0.1, "203.0.113.31", f"/page{i}", 404) for i in range(21)])
    assert scenarios(storm) == ["http_4xx_storm"]
    flood = run([web(T0 + i * 0.001, "203.0.113.32", "/", 200) for i in range(700)])
    assert scenarios(flood) == ["http_flood"]
    calm = run([web(T0 + i * 2, "192.0.2.10", f"/page{i}", 200) for i in range(300)])
    assert calm.found == []


def test_idle_buckets_are_swept_so_memory_follows_active_addresses() -> None:
    """Fifty thousand one-off addresses, one a minute, leave only the last two hours' buckets."""
    detector = NetDetector(NetSettings(), source="test")
    for i in range(50_000):
        detector.observe(ssh(T0 + 60 * i, f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"))
    largest = max(len(table) for table in detector._tables)
    assert largest < 1_000

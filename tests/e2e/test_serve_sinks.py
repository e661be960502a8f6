"""`serve` keeps [[sinks]] current: each new snapshot rewrites and reloads the firewall set."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from reputable.testing import RunningServer, cli, free_port, write_config
from tests.publication.exports.netns import namespace, reachable, run_in


def wait_until(predicate: object, seconds: float) -> None:
    """Poll *predicate* every 0.1 s; fail after *seconds*."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]  # a callable
            return
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {seconds} s")


@pytest.mark.netns
def test_serve_reloads_the_nft_sink_after_each_snapshot(tmp_path: Path) -> None:
    """A listing added while serve runs is dropped by nft in the namespace within seconds."""
    if shutil.which("nft") is None:
        pytest.skip("needs nft (Debian package nftables)")
    with namespace(["192.0.2.7/32", "198.51.100.9/32", "203.0.113.1/32"]) as ns:
        rpz_path = tmp_path / "out" / "bl.rpz"
        extra = f"""
[[sinks]]
kind = "nftables"
path = "out/bl.nft"
command = ["ip", "netns", "exec", "{ns}", "nft", "-f", "{{path}}"]

[[sinks]]
kind = "rpz"
path = "{rpz_path}"
causes = ["malware_host"]
"""
        config = write_config(tmp_path, dns_port=free_port(), extra=extra)
        with RunningServer(config) as server:
            wait_until((tmp_path / "out" / "bl.nft").exists, 60)
            assert reachable(ns, "203.0.113.1", ["192.0.2.7"]) == {"192.0.2.7": True}
            cli(config, "list", "add", "192.0.2.0/24", "--cause", "compromised")
            cli(config, "list", "add", "bad.example", "--cause", "malware_host")

            def loaded() -> bool:
                out = run_in(ns, ["nft", "list", "set", "inet", "reputable", "bl4"]).stdout
                return "192.0.2.0/24" in out

            wait_until(loaded, 60)
            wait_until(lambda: "bad.example CNAME ." in rpz_path.read_text(), 60)
            verdict = reachable(ns, "203.0.113.1", ["192.0.2.7", "198.51.100.9"])
            log = server.log()
    assert verdict == {"192.0.2.7": False, "198.51.100.9": True}
    assert "sink_loaded" in log
    assert "sink_written" in log


def test_serve_refuses_a_bad_sink_before_starting(tmp_path: Path) -> None:
    """An unknown sink kind stops serve at once with the key and the fix, no traceback."""
    extra = '[[sinks]]\nkind = "iptables"\npath = "x"\n'
    config = write_config(tmp_path, dns_port=free_port(), extra=extra)
    done = cli(config, "serve", "--metrics", "", check=False, timeout=30)
    assert done.returncode == 2
    assert '[[sinks]] #1 kind = "iptables": use one of nftables, ipset or rpz' in done.stderr
    assert "Traceback" not in done.stderr

"""The real crowdsec-firewall-bouncer enforces our listings: its nftables set follows DNS.

`serve` and the bouncer run together inside a network namespace made by this test (so the
bouncer's nftables changes stay there); the test lists and delists through the CLI (the
store is a file) and reads the set with `nft` inside the namespace.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reputable.testing import cli, free_port, wait_for, write_config
from tests.e2e.processes import stop
from tests.publication.exports.netns import netns_missing, pid_namespace, run_in
from tests.web.conftest import Api

BOUNCER = "crowdsec-firewall-bouncer"
TABLE = "reputable_cs"
SET = "reputable-blacklist"
#: This test's namespaces are named NS_PREFIX + the pid of the pytest process that made them.
NS_PREFIX = "api-cs-"

pytestmark = pytest.mark.crowdsec


def _missing() -> str | None:
    if shutil.which(BOUNCER) is None:
        return "needs crowdsec-firewall-bouncer (Debian package crowdsec-firewall-bouncer)"
    if shutil.which("nft") is None:
        return "needs nft (Debian package nftables)"
    return netns_missing()


@pytest.fixture
def namespace() -> Iterator[str]:
    """A fresh network namespace named after this test run (``api-cs-PID``), deleted afterwards
    on every path with whatever still runs in it; a killed run's leftovers go first."""
    reason = _missing()
    if reason:
        pytest.skip(reason)
    with pid_namespace(NS_PREFIX) as ns:
        yield ns


def set_elements(ns: str) -> set[str]:
    """Return the addresses in the bouncer's nftables set (empty before it exists)."""
    out = run_in(ns, ["nft", "-j", "list", "set", "ip", TABLE, SET], timeout=30)
    if out.returncode != 0:
        return set()
    found: set[str] = set()
    for item in json.loads(out.stdout)["nftables"]:
        for element in item.get("set", {}).get("elem", []):
            value = (
                element.get("elem", {}).get("val", element)
                if isinstance(element, dict)
                else element
            )
            if isinstance(value, dict) and "prefix" in value:
                value = f"{value['prefix']['addr']}/{value['prefix']['len']}"
            found.add(str(value))
    return found


def bouncer_config(directory: Path, port: int, key: str) -> Path:
    """Write a bouncer config pointing at our API on the namespace's loopback."""
    path = directory / "bouncer.yaml"
    path.write_text(
        f"""mode: nftables
pid_dir: {directory}
update_frequency: 1s
daemonize: false
log_mode: stdout
log_level: info
api_url: http://127.0.0.1:{port}/
api_key: {key}
disable_ipv6: true
deny_action: DROP
supported_decisions_types:
  - ban
nftables:
  ipv4:
    enabled: true
    set-only: false
    table: {TABLE}
    chain: reputable-chain
  ipv6:
    enabled: false
    set-only: false
    table: {TABLE}6
    chain: reputable6-chain
blacklists_ipv4: {SET}
blacklists_ipv6: {SET}6
prometheus:
  enabled: false
  listen_addr: 127.0.0.1
  listen_port: 60601
""",
        encoding="utf-8",
    )
    return path


def test_bouncer_set_gains_and_loses_a_listing(namespace: str, tmp_path: Path) -> None:
    """A listed address enters the bouncer's nftables set; delisted, it leaves it."""
    http_port, metrics_port = free_port(), free_port()
    config = write_config(tmp_path, dns_port=free_port(), http_port=http_port, interval='"1s"')
    key = cli(config, "token", "add", "fw-1", "--scope", "bouncer").stdout.strip()
    stack = contextlib.ExitStack()
    log = stack.enter_context((tmp_path / "serve.log").open("w"))
    serve = subprocess.Popen(
        ["ip", "netns", "exec", namespace, sys.executable, "-m", "reputable", "--config",
         str(config), "serve", "--metrics", f"127.0.0.1:{metrics_port}"],
        stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    bouncer: subprocess.Popen[str] | None = None
    try:
        wait_for(lambda: "http_ready" in (tmp_path / "serve.log").read_text(), 90)  # start-up
        bouncer_log = stack.enter_context((tmp_path / "bouncer.log").open("w"))
        bouncer = subprocess.Popen(
            ["ip", "netns", "exec", namespace, BOUNCER, "-c",
             str(bouncer_config(tmp_path, http_port, key))],
            stdout=bouncer_log, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        cli(config, "list", "add", "198.51.100.23", "-c", "spam", "-r", "trap hits")
        try:
            wait_for(lambda: "198.51.100.23" in set_elements(namespace), 30)
            cli(config, "list", "remove", "198.51.100.23")
            wait_for(lambda: "198.51.100.23" not in set_elements(namespace), 30)
        except AssertionError:
            print((tmp_path / "bouncer.log").read_text())
            print((tmp_path / "serve.log").read_text())
            raise
    finally:
        stop(bouncer)
        stop(serve)
        stack.close()


def test_stream_and_live_endpoints_speak_crowdsec(fresh_api: Api) -> None:
    """The stream sends new then deleted decisions per bouncer; /v1/decisions answers one IP."""
    api = fresh_api
    key = api.token("fw-2", "bouncer")
    headers = {"X-Api-Key": key}
    cli(api.config, "list", "add", "192.0.2.55", "-c", "compromised", "--ttl", "2h")
    cli(api.config, "list", "add", "203.0.113.0/24", "-c", "network")
    wait_for(lambda: api.dns_codes("55.2.0.192.bl.reputable.test") != set(), 30)
    first = api.client.get("/v1/decisions/stream", params={"startup": "true"}, headers=headers)
    assert first.status_code == 200
    new = {d["value"]: d for d in first.json()["new"]}
    assert first.json()["deleted"] is None
    assert set(new) == {"192.0.2.55", "203.0.113.0/24"}
    host = new["192.0.2.55"]
    assert (host["scope"], host["type"], host["origin"]) == ("Ip", "ban", "reputable")
    assert host["scenario"] == "reputable/compromised"
    assert re.fullmatch(r"1h59m\d+s|2h0m0s", host["duration"]), host["duration"]
    assert new["203.0.113.0/24"]["scope"] == "Range"
    quiet = api.client.get("/v1/decisions/stream", headers=headers).json()
    assert quiet == {"new": None, "deleted": None}
    cli(api.config, "list", "remove", "192.0.2.55")
    wait_for(lambda: api.dns_codes("55.2.0.192.bl.reputable.test") == set(), 30)
    later = api.client.get("/v1/decisions/stream", headers=headers).json()
    assert later["new"] is None
    assert [d["value"] for d in later["deleted"]] == ["192.0.2.55"]
    live = api.client.get("/v1/decisions", params={"ip": "203.0.113.9"}, headers=headers)
    assert [d["value"] for d in live.json()] == ["203.0.113.0/24"]
    none = api.client.get("/v1/decisions", params={"ip": "192.0.2.55"}, headers=headers)
    assert none.json() is None
    refused = httpx.get(f"{api.base}/v1/decisions/stream", timeout=5)
    assert refused.status_code == 401

"""CrowdSec in, against the real CrowdSec Local API (not a stand-in).

The `crowdsec` engine runs with the Local API only (``-no-cs -no-capi``: no acquisition, no
Central API; the config written here has no ``online_client`` and no hub) and a SQLite
database in the test's folder, all inside a network namespace this test creates (loopback
only, so nothing can leave the machine). `cscli` registers a bouncer key and adds decisions
on an address, an IPv6 address and a range; `reputable feed add/sync` (also run in the
namespace) polls the decision stream with that key. The package is used as extracted by
`.ci/run` (``dpkg-deb -x`` into /opt/crowdsec-pkg/root; never ``apt-get install crowdsec``,
whose postinst registers with the online API).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reputable.store.sqlite import SQLiteStore
from reputable.testing import write_config
from tests.e2e.processes import stop
from tests.publication.exports import netns

ROOT = Path(os.environ.get("REPUTABLE_CROWDSEC_ROOT", "/opt/crowdsec-pkg/root"))
CROWDSEC = ROOT / "usr" / "bin" / "crowdsec"
CSCLI = ROOT / "usr" / "bin" / "cscli"
PORT = 21410  # inside the namespace: nothing else listens there
KEY = "reputable-test-bouncer-key-0123456789"

pytestmark = [pytest.mark.slow, pytest.mark.netns]


def _missing() -> str | None:
    if not (CROWDSEC.is_file() and CSCLI.is_file()):
        return (
            f"needs the crowdsec package extracted to {ROOT} (apt-get download crowdsec && "
            f"dpkg-deb -x crowdsec_*.deb {ROOT}; .ci/run does this; never apt-get install it)"
        )
    return netns.netns_missing()


def run_in(ns: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run *cmd* inside namespace *ns*; on failure show its output."""
    done = netns.run_in(ns, cmd, timeout=60)
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )
    return done


@dataclass
class Lapi:
    """A running CrowdSec Local API in a namespace."""

    ns: str
    config: Path
    log: Path

    def cscli(self, *args: str) -> str:
        """Run cscli against this LAPI's config; return its output."""
        done = run_in(self.ns, str(CSCLI), "-c", str(self.config), *args)
        return done.stdout + done.stderr

    def reputable(
        self, config: Path, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``reputable --config CONFIG ARGS`` in the namespace."""
        command = (sys.executable, "-m", "reputable", "--config", str(config), *args)
        return run_in(self.ns, *command, check=check)

    def stream(self, url: str) -> dict[str, list[dict[str, object]] | None]:
        """Return the decision stream at *url* as the bouncer key sees it."""
        fetch = (
            "import sys, urllib.request as u; r = u.Request(sys.argv[1], "
            "headers={'X-Api-Key': sys.argv[2]}); print(u.urlopen(r, timeout=10).read().decode())"
        )
        out = run_in(self.ns, sys.executable, "-c", fetch, url, KEY).stdout
        parsed: dict[str, list[dict[str, object]] | None] = json.loads(out)
        return parsed


def lapi_config(folder: Path) -> Path:
    """Write a CrowdSec config: LAPI on the namespace's loopback, no CAPI, files in *folder*."""
    for sub in ("data", "hub", "notifications", "acquis.d"):
        (folder / sub).mkdir()
    shutil.copy(ROOT / "etc" / "crowdsec" / "profiles.yaml", folder / "profiles.yaml")
    shutil.copy(ROOT / "etc" / "crowdsec" / "simulation.yaml", folder / "simulation.yaml")
    (folder / "acquis.yaml").write_text("")
    config = folder / "config.yaml"
    # No api.server.online_client: the Central API (signals, community blocklist, hub
    # metrics) is off; prometheus off; the database is a file here.
    config.write_text(
        f"""common:
  daemonize: false
  log_media: stdout
  log_level: info
  working_dir: {folder}
config_paths:
  config_dir: {folder}/
  data_dir: {folder}/data/
  simulation_path: {folder}/simulation.yaml
  hub_dir: {folder}/hub/
  index_path: {folder}/hub/.index.json
  notification_dir: {folder}/notifications/
  plugin_dir: {ROOT}/usr/lib/crowdsec/plugins/
crowdsec_service:
  acquisition_path: {folder}/acquis.yaml
  acquisition_dir: {folder}/acquis.d
  parser_routines: 1
cscli:
  output: human
  color: no
db_config:
  log_level: info
  type: sqlite
  use_wal: true
  db_path: {folder}/data/crowdsec.db
  flush:
    max_items: 5000
    max_age: 7d
api:
  client:
    insecure_skip_verify: false
    credentials_path: {folder}/local_api_credentials.yaml
  server:
    log_level: info
    listen_uri: 127.0.0.1:{PORT}
    profiles_path: {folder}/profiles.yaml
    console_path: {folder}/console.yaml
    trusted_ips:
      - 127.0.0.1
      - ::1
prometheus:
  enabled: false
  level: full
  listen_addr: 127.0.0.1
  listen_port: {PORT + 1}
""",
        encoding="utf-8",
    )
    return config


@pytest.fixture
def lapi(tmp_path: Path) -> Iterator[Lapi]:
    """The real CrowdSec LAPI in a fresh namespace, with a machine login and a bouncer key."""
    reason = _missing()
    if reason:
        pytest.skip(reason)
    folder = tmp_path / "crowdsec"
    folder.mkdir()
    config = lapi_config(folder)
    proc: subprocess.Popen[bytes] | None = None
    log = folder / "crowdsec.log"
    # Named enf-cs-PID and deleted on every path (a killed run's leftovers by the next run).
    with netns.pid_namespace("enf-cs-") as ns:
        try:
            running = Lapi(ns, config, log)
            # Both write the database directly: a machine login for `cscli decisions add`,
            # and the bouncer key the feed presents.
            running.cscli("machines", "add", "reputable-test", "--auto", "--force")
            assert KEY in running.cscli("bouncers", "add", "reputable", "-k", KEY)
            with log.open("wb") as sink:
                proc = subprocess.Popen(
                    ["ip", "netns", "exec", ns, str(CROWDSEC), "-c", str(config), "-no-cs",
                     "-no-capi"],
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )  # fmt: skip
            deadline = time.monotonic() + 120
            while "Local API listening" not in log.read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"crowdsec LAPI did not start:\n{log.read_text(errors='replace')}")
                time.sleep(0.1)
            yield running
        finally:
            stop(proc)


def evidence(db: Path) -> list[tuple[str, str, dict[str, object]]]:
    """Return (subject, cause, detail) of every stored evidence row, by subject."""
    store = SQLiteStore(db)
    try:
        rows = store._db.execute(
            "SELECT subject, cause, detail FROM evidence ORDER BY subject, observed_at"
        ).fetchall()
    finally:
        store.close()
    return [(s, c, json.loads(d)) for s, c, d in rows]


def test_real_lapi_decisions_become_evidence(lapi: Lapi, tmp_path: Path) -> None:
    """cscli decisions on addresses become compromised/spam evidence; ranges and deletes don't."""
    lapi.cscli("decisions", "add", "--ip", "192.0.2.7", "--reason", "crowdsecurity/ssh-bf")
    lapi.cscli("decisions", "add", "--ip", "2001:db8::8", "--reason", "crowdsecurity/http-probing")
    lapi.cscli("decisions", "add", "--ip", "203.0.113.25", "--reason", "crowdsecurity/postfix-spam")
    lapi.cscli("decisions", "add", "--range", "198.51.100.0/24", "--reason", "crowdsecurity/ssh-bf")
    base = f"http://127.0.0.1:{PORT}/"
    extra = f'[feeds]\napi_keys = {{ "{base}" = "{KEY}" }}\n'
    rep = tmp_path / "reputable"
    rep.mkdir()
    config = write_config(rep, dns_port=21420, extra=extra)
    url = base + "v1/decisions/stream?startup=true"
    added = lapi.reputable(config, "feed", "add", "cs", url, "--kind", "crowdsec", "--json")
    report = json.loads(added.stdout)["sync"][0]
    assert report["error"] is None and report["evidence"] == 3, report
    first = evidence(rep / "reputable.db")
    subjects = [(s, c) for s, c, _ in first]
    # The range is not one host's behaviour: the feed's contract skips it (no evidence).
    assert subjects == [
        ("192.0.2.7", "compromised"),
        ("2001:db8::8", "compromised"),
        ("203.0.113.25", "spam"),
    ], (subjects, report)
    detail = first[0][2]
    assert detail["scenario"] == "crowdsecurity/ssh-bf"
    assert detail["tool"] == "crowdsec" and detail["origin"] == "cscli"
    assert detail["type"] == "ban" and detail["feed"] == "cs"
    assert isinstance(detail["decision"], int)
    assert first[1][2]["scenario"] == "crowdsecurity/http-probing"

    # A lifted decision leaves the stream's `new` for `deleted`: the attack it recorded did
    # happen, so the evidence stays, and a later sync adds nothing for it (or anyone).
    assert "deleted" in lapi.cscli("decisions", "delete", "--ip", "192.0.2.7")
    stream = lapi.stream(url)
    assert [d["value"] for d in stream["deleted"] or ()] == ["192.0.2.7"], stream
    assert "192.0.2.7" not in [d["value"] for d in stream["new"] or ()], stream
    synced = lapi.reputable(config, "feed", "sync", "cs", "--force", "--json")
    again = json.loads(synced.stdout)[0]
    assert again["error"] is None and again["entries"] == 2, again
    assert evidence(rep / "reputable.db") == first

    # A wrong key is refused by the real LAPI (403), reported, and stores nothing.
    other = tmp_path / "other"
    other.mkdir()
    wrong = write_config(
        other, dns_port=21421, extra=f'[feeds]\napi_keys = {{ "{base}" = "not-the-key" }}\n'
    )
    refused = lapi.reputable(wrong, "feed", "add", "cs", url, "--kind", "crowdsec", check=False)
    assert "403" in refused.stdout + refused.stderr, refused.stdout + refused.stderr

"""`reputable serve` turns new evidence into DNS answers by itself, within seconds."""

from __future__ import annotations

from pathlib import Path

from reputable.testing import RunningServer, cli, free_port, wait_for, write_config
from tests.conftest import use_store
from tests.e2e.several_nodes import a_codes, post_spam


def test_evidence_reaches_dns_and_explain(tmp_path: Path, store_dsn: str) -> None:
    """Spam evidence added with the CLI lists the IP on the running server, and explain says why."""
    port = free_port()
    config = use_store(write_config(tmp_path, dns_port=port), store_dsn)
    config.write_text(config.read_text().replace('interval = "5s"', 'interval = "1s"'))
    name = "7.100.51.198.bl.reputable.test"
    with RunningServer(config) as running:
        assert a_codes(port, name) == set()
        post_spam(config)  # three trap hits on 198.51.100.7
        # Listed by the policy loop ("policy_evaluated") or by the start-up full evaluation
        # (a child whose lines are not in this log) when the CLI's posts came before it read
        # the evidence: both are serve's own, and the order is the machine's.
        wait_for(lambda: a_codes(port, name) == {"127.0.0.2"}, 30, "listed in DNS", running.log)
    explained = cli(config, "explain", "198.51.100.7", "--json", check=False).stdout
    assert '"listed": true' in explained and '"traps": 3' in explained

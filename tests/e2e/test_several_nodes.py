"""Two `serve` nodes on one store: one policy leader, taken over when it dies (issue 16).

On PostgreSQL (the issue's test) the leader holds a session advisory lock and the publisher
listens for NOTIFY; on SQLite the two nodes share one file on one host and the lock is an flock.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.several_nodes import a_codes, leaders, post_spam, sigkill, two_nodes, wait_for
from tests.store.pgnodes_db import fresh_database, needs_postgres_store


@pytest.mark.slow
def test_sqlite_one_leader_and_takeover_after_sigkill(tmp_path: Path) -> None:
    dsn = f"sqlite:///{tmp_path / 'shared.db'}"
    with two_nodes(tmp_path, dsn) as nodes:
        wait_for(lambda: len(leaders(nodes)) == 1, 20, "a policy leader")
        [first] = leaders(nodes)
        follower = 1 - first
        assert "policy_follower" not in nodes[follower][0].log()  # it never led
        sigkill(nodes[first][0])
        wait_for(lambda: leaders(nodes[follower : follower + 1]) == [0], 10, "the takeover")
        post_spam(nodes[follower][1])
        port = nodes[follower][2]
        wait_for(lambda: a_codes(port) == {"127.0.0.2"}, 10, "the listing in DNS")
        assert "policy_evaluated" in nodes[follower][0].log()


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_leader_killed_survivor_lists_new_evidence(tmp_path: Path) -> None:
    """The issue's test: SIGKILL the policy leader; evidence posted next is listed and
    answered in DNS by the surviving node within 10 s."""
    needs_postgres_store()
    with fresh_database() as dsn, two_nodes(tmp_path, dsn) as nodes:
        wait_for(lambda: len(leaders(nodes)) == 1, 20, "a policy leader")
        [first] = leaders(nodes)
        follower = 1 - first
        server, config, port = nodes[follower]
        wait_for(lambda: "change_feed_listening" in server.log(), 10, "the LISTEN")
        sigkill(nodes[first][0])
        post_spam(config)  # the CLI writes to PostgreSQL; no node is told in-process
        posted = time.monotonic()
        wait_for(lambda: a_codes(port) == {"127.0.0.2"}, 10, "the listing in DNS")
        took = time.monotonic() - posted
        assert leaders(nodes[follower : follower + 1]) == [0], server.log()
        assert "policy_evaluated" in server.log()
        print(f"posted -> answered by the survivor: {took:.2f} s")

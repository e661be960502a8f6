"""Two `serve` nodes on one store: one policy leader, taken over when it dies (issue 16).

The PostgreSQL version (the issue's test) lives beside this one; on SQLite the two nodes
share one file on one host and the leader lock is an flock.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.several_nodes import a_codes, leaders, post_spam, sigkill, two_nodes, wait_for


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

"""Webhooks from a running `serve`: signed POSTs, and a SIGKILL mid-delivery loses nothing."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from reputable.store.dsn import open_dsn
from reputable.testing import RunningServer, cli, free_port, write_config
from tests.conftest import use_store
from tests.publication.webhooks.receiver import Receiver, receiving

SECRET = "e2e-secret-0123456789"
SUBJECTS = ["192.0.2.1", "192.0.2.2", "192.0.2.3", "bad.example", "2001:db8::5"]


def wait_log(server: RunningServer, text: str, seconds: float) -> None:
    """Wait until serve's log contains *text*."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in server.log():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in the serve log within {seconds} s:\n{server.log()}")


def test_kill_mid_delivery_loses_nothing_and_repeats_only_the_cut_post(
    tmp_path: Path, store_dsn: str
) -> None:
    """serve killed while a POST is open: after restart every event arrives, only that one twice."""
    receiver = Receiver(secret=SECRET, hold_first=True)
    with receiving(receiver):
        extra = f'[[webhooks]]\nname = "desk"\nurl = "{receiver.url}"\nsecret = "{SECRET}"\n'
        config = use_store(write_config(tmp_path, dns_port=free_port(), extra=extra), store_dsn)
        first = RunningServer(config)
        with first:
            wait_log(first, "webhooks_ready", 60)
            for subject in SUBJECTS:
                cause = "malware_host" if subject.endswith("example") else "spam"
                cli(config, "list", "add", subject, "--cause", cause)
            receiver.wait_for(1, 60)  # the first POST is now held open by the receiver
            assert first.proc is not None
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait(timeout=10)
            receiver.release.set()  # the held POST now answers a dead client
        with RunningServer(config):
            deadline = time.monotonic() + 90  # a restart, then five POSTs: a loaded machine
            while time.monotonic() < deadline and len(set(receiver.ids())) < len(SUBJECTS):
                time.sleep(0.1)
            time.sleep(1.5)  # room for a wrong extra POST to show up
        ids = receiver.ids()
        posts = list(receiver.posts)
    assert sorted(str(p[1]["subject"]) for p in posts if p[0] != ids[0]) == sorted(
        s for s in SUBJECTS if s != posts[0][1]["subject"]
    )
    assert ids.count(ids[0]) == 2  # the cut POST came again, with the same delivery id
    assert all(ids.count(i) == 1 for i in ids if i != ids[0])  # everything else exactly once
    assert all(valid for _, _, valid in posts)
    assert {p[1]["event"] for p in posts} == {"listed"}
    store = open_dsn(store_dsn)
    rows = list(store.webhook_rows())
    store.close()
    assert len(rows) == len(SUBJECTS)
    assert all(delivered is not None for _, _, _, _, delivered, _ in rows)

"""serve's start-up checks beside its first build (cli/launch.py `_check_beside_build`).

While the build child runs, the preflight runs in a thread of lower priority; once the build
is over the thread gets the main thread's priority back (where the process may raise it), and
an error of the checks is raised by the main thread unchanged.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from reputable import config_check
from reputable.cli import launch
from reputable.config import Config, load_config
from reputable.core.errors import ConfigError
from reputable.testing import write_config


def _may_raise_priority() -> bool:
    """True when this process may set a thread's nice value back down (root, RLIMIT_NICE)."""
    if os.geteuid() == 0:
        return True
    soft, _ = resource.getrlimit(resource.RLIMIT_NICE)
    return soft == resource.RLIM_INFINITY or 20 - soft <= os.getpriority(os.PRIO_PROCESS, 0)


def _build(seconds: float) -> subprocess.Popen[bytes]:
    """A stand-in for the build child that runs *seconds* and writes nothing."""
    return subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(write_config(tmp_path, dns_port=1))


def test_the_checks_run_at_low_priority_while_the_build_runs(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, int, str | None]] = []

    def preflight(checked: Config, metrics: str | None) -> None:
        me = threading.get_native_id()
        seen.append((me, os.getpriority(os.PRIO_PROCESS, me), metrics))

    monkeypatch.setattr(config_check, "preflight", preflight)
    build = _build(30)
    try:
        launch._check_beside_build(config, "127.0.0.1:1", build)
    finally:
        build.kill()
        build.wait()
    main_nice = os.getpriority(os.PRIO_PROCESS, 0)
    [(thread, nice, metrics)] = seen
    assert thread != threading.get_native_id()  # not the main thread
    assert nice == min(main_nice + launch.CHECKS_NICENESS, 19)
    assert metrics == "127.0.0.1:1"
    assert os.getpriority(os.PRIO_PROCESS, 0) == main_nice  # the caller's own is untouched


@pytest.mark.skipif(not _may_raise_priority(), reason="may not lower a nice value here")
def test_once_the_build_is_over_the_checks_get_their_priority_back(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = _build(0.3)
    niceness: list[int] = []

    def preflight(checked: Config, metrics: str | None) -> None:
        me = threading.get_native_id()
        niceness.append(os.getpriority(os.PRIO_PROCESS, me))
        build.wait()  # the build ends while the checks still run
        deadline = time.monotonic() + 30
        while os.getpriority(os.PRIO_PROCESS, me) == niceness[0]:
            assert time.monotonic() < deadline, "the priority was never given back"
            time.sleep(0.005)
        niceness.append(os.getpriority(os.PRIO_PROCESS, me))

    monkeypatch.setattr(config_check, "preflight", preflight)
    launch._check_beside_build(config, None, build)
    assert niceness == [
        min(os.getpriority(os.PRIO_PROCESS, 0) + launch.CHECKS_NICENESS, 19),
        os.getpriority(os.PRIO_PROCESS, 0),
    ]


def test_an_error_of_the_checks_is_raised_unchanged(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem = ConfigError("[policy_service] actions: spam = 'EXPLODE' is not an action")

    def preflight(checked: Config, metrics: str | None) -> None:
        raise problem

    monkeypatch.setattr(config_check, "preflight", preflight)
    build = _build(30)
    started = time.monotonic()
    try:
        with pytest.raises(ConfigError) as raised:
            launch._check_beside_build(config, None, build)
        assert time.monotonic() - started < 20  # at once, not after the build
        assert build.poll() is None
    finally:
        build.kill()
        build.wait()
    assert raised.value is problem

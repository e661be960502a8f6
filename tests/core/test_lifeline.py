"""core/lifeline.py: a child that follows its parent ends within 2 s of the parent's SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from reputable.core import lifeline
from tests.e2e.processes import alive

#: The child: follows its parent (or not), says so, then would live a minute.
CHILD = """
import sys, time
from reputable.core import lifeline
if sys.argv[1] == "no-prctl":
    lifeline.set_death_signal = lambda *args: False  # only the parent-pid watch is left
print(lifeline.follow_parent(), flush=True)
time.sleep(60)
"""

#: The parent: names itself (or not) for its children, starts one, prints its pid, waits.
PARENT = """
import subprocess, sys, time
from reputable.core import lifeline
if sys.argv[1] != "unadopted":
    lifeline.adopt_children()
child = subprocess.Popen([sys.executable, "-c", sys.argv[2], sys.argv[1]], stdout=subprocess.PIPE)
print(child.pid, child.stdout.readline().decode().strip(), flush=True)
time.sleep(60)
"""


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def family() -> Iterator[list[int]]:
    """PIDs of the children the test starts; any still running afterwards are killed."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def _start(mode: str, family: list[int]) -> tuple[subprocess.Popen[bytes], int, str]:
    """Start the parent in *mode*; return it, its child's pid and what follow_parent said."""
    env = {k: v for k, v in os.environ.items() if k != lifeline.PARENT_ENV}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, mode, CHILD], stdout=subprocess.PIPE, env=env
    )
    assert parent.stdout is not None
    line = parent.stdout.readline().decode().split()
    parent.stdout.close()  # it prints nothing more
    child = int(line[0])
    family.append(child)
    return parent, child, line[1]


@pytest.mark.serial  # a wall-clock limit: no other worker's test runs meanwhile
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and prctl: Linux")
@pytest.mark.parametrize("mode", ["prctl", "no-prctl"])
def test_child_ends_within_2s_of_its_parents_sigkill(mode: str, family: list[int]) -> None:
    """With PR_SET_PDEATHSIG, and with only the parent-pid watch, the child ends in 2 s."""
    parent, child, following = _start(mode, family)
    assert following == "True"
    assert alive(child)
    parent.kill()
    parent.wait()
    assert _gone_within(child, 2.0), f"child {child} outlived its SIGKILLed parent by 2 s"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc: Linux")
def test_a_child_of_a_parent_that_adopted_nothing_lives_on(family: list[int]) -> None:
    """The control: without the variable the child follows nobody and outlives the parent."""
    parent, child, following = _start("unadopted", family)
    assert following == "False"
    parent.kill()
    parent.wait()
    assert not _gone_within(child, 1.0)


def test_a_variable_naming_a_live_non_parent_is_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Started through something in between (a shell from a sink): not ours to follow."""
    monkeypatch.setenv(lifeline.PARENT_ENV, str(os.getpid()))  # alive, but not our parent
    assert lifeline.follow_parent() is False
    assert os.environ[lifeline.PARENT_ENV] == str(os.getpid())
    monkeypatch.setenv(lifeline.PARENT_ENV, "not-a-pid")
    assert lifeline.follow_parent() is False


def test_adopt_children_names_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(lifeline.PARENT_ENV, raising=False)
    lifeline.adopt_children()
    assert os.environ[lifeline.PARENT_ENV] == str(os.getpid())

"""The test helpers: ports outside the kernel's ephemeral range, never handed out twice; waits."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from reputable import testing


def test_free_port_is_outside_the_ephemeral_range_and_bindable() -> None:
    """A port the kernel could hand to a port-0 bind or an outgoing connection is never chosen."""
    low, high = testing._ephemeral_range()
    ports = [testing.free_port() for _ in range(20)]
    assert len(set(ports)) == 20  # reserved: never handed out twice
    assert all(not low <= port <= high for port in ports), (low, high, ports)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        tcp.bind(("127.0.0.1", ports[0]))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", ports[0]))


def test_free_port_skips_a_port_someone_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    """A candidate another socket has bound is passed over for the next one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        taken = held.getsockname()[1]
        free = testing.free_port()
        monkeypatch.setattr(testing, "_candidates", lambda: iter([taken, free]))
        monkeypatch.setattr(testing, "_reserve", lambda port: True)
        assert testing.free_port() == free


def test_wait_for_asks_once_more_when_the_deadline_is_already_spent() -> None:
    """A deadline used up before the first ask (a loaded machine) still asks the predicate."""
    asked: list[float] = []
    assert testing.wait_for(lambda: asked.append(time.monotonic()) or True, 0) >= 0
    assert len(asked) == 1
    with pytest.raises(AssertionError, match="the thing not met within 0 s"):
        testing.wait_for(lambda: False, 0, "the thing")


def test_wait_for_returns_once_the_condition_holds_and_fails_when_it_never_does() -> None:
    """It waits for a condition that comes true, and still fails one that never does."""
    until = time.monotonic() + 0.2
    took = testing.wait_for(lambda: time.monotonic() >= until, 10, "the clock")
    assert 0.15 <= took < 5
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"never not met within 0\.3 s"):
        testing.wait_for(lambda: False, 0.3, "never")
    assert time.monotonic() - started >= 0.3


def test_wait_for_async_lets_the_loop_run_the_task_it_waits_for() -> None:
    """The async wait yields to the loop, so a task of the same loop can meet the condition."""

    async def scenario() -> list[str]:
        done: list[str] = []

        async def other() -> None:
            await asyncio.sleep(0.1)
            done.append("ran")

        task = asyncio.create_task(other())
        await testing.wait_for_async(lambda: done, 10, "the other task")
        await task
        with pytest.raises(AssertionError, match=r"nothing not met within 0\.1 s"):
            await testing.wait_for_async(lambda: False, 0.1, "nothing")
        return done

    assert asyncio.run(scenario()) == ["ran"]

"""The test helpers' ports: outside the kernel's ephemeral range, bindable, never handed out twice."""

from __future__ import annotations

import socket

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

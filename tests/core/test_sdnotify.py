"""sd_notify: the readiness datagram systemd's Type=notify waits for."""

from __future__ import annotations

import socket
from pathlib import Path

from reputable.core.sdnotify import notify


def test_sends_one_datagram_to_the_notify_socket(tmp_path: Path) -> None:
    """With $NOTIFY_SOCKET set, the state arrives as one datagram on that Unix socket."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.settimeout(2)
        assert notify("READY=1\nSTATUS=answering DNS", {"NOTIFY_SOCKET": str(path)})
        assert server.recv(4096) == b"READY=1\nSTATUS=answering DNS"


def test_abstract_socket_names_start_with_a_nul_byte() -> None:
    """An @name in $NOTIFY_SOCKET is the abstract Linux socket with a leading NUL."""
    name = f"reputable-ops-test-{id(object())}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        server.settimeout(2)
        assert notify("STOPPING=1", {"NOTIFY_SOCKET": "@" + name})
        assert server.recv(4096) == b"STOPPING=1"


def test_without_systemd_it_does_nothing(tmp_path: Path) -> None:
    """No variable, a relative value or a missing socket: nothing sent, no error."""
    assert not notify("READY=1", {})
    assert not notify("READY=1", {"NOTIFY_SOCKET": "relative"})
    assert not notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "absent")})

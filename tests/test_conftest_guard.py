"""The loopback guard itself: it must refuse the outside world and let loopback through."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import NetworkGuardError


def test_guard_refuses_public_udp() -> None:
    """A UDP datagram to a public address is stopped before it leaves."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, pytest.raises(NetworkGuardError):
        sock.sendto(b"x", ("192.0.2.1", 53))


def test_guard_refuses_private_tcp() -> None:
    """A TCP connect to a private-range address is stopped."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
        pytest.raises(NetworkGuardError),
    ):
        sock.connect(("10.1.2.3", 25))


def test_guard_refuses_host_names() -> None:
    """A host name is refused: resolving it would query the machine's resolver."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
        pytest.raises(NetworkGuardError),
    ):
        sock.connect(("localhost", 25))


def test_guard_allows_loopback() -> None:
    """Loopback UDP passes the guard."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx,
    ):
        rx.bind(("127.0.0.1", 0))
        tx.sendto(b"ping", rx.getsockname())
        assert rx.recv(16) == b"ping"


def test_guard_refuses_name_resolution() -> None:
    """Resolving a host name is refused, since it would reach the machine's resolver."""
    with pytest.raises(NetworkGuardError):
        socket.getaddrinfo("example.com", 80)

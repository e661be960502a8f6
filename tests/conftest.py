"""Session-wide guard: tests may only talk to loopback (127.0.0.0/8, ::1) or Unix sockets."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest


class NetworkGuardError(AssertionError):
    """A test tried to reach an address outside loopback."""


def _destination_allowed(family: int, address: Any) -> bool:
    """True for Unix sockets and numeric loopback destinations; host names are refused."""
    if family == getattr(socket, "AF_UNIX", object()):
        return True
    if family == getattr(socket, "AF_NETLINK", object()):
        return True
    if not isinstance(address, tuple) or not address:
        return False
    host = address[0]
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    try:
        ip = ipaddress.ip_address(str(host).split("%", 1)[0])
    except ValueError:
        # A name would be resolved by the machine's resolver: refused on purpose.
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _check(sock: socket.socket, address: Any) -> None:
    if not _destination_allowed(sock.family, address):
        raise NetworkGuardError(f"test tried to reach non-loopback address {address!r}")


def _wrap(original: Callable[..., Any], address_index: int) -> Callable[..., Any]:
    def guarded(self: socket.socket, *args: Any) -> Any:
        if len(args) > address_index:
            _check(self, args[address_index])
        return original(self, *args)

    guarded.__name__ = original.__name__
    return guarded


@pytest.fixture(autouse=True, scope="session")
def loopback_only() -> Iterator[None]:
    """Fail any test whose socket connect/sendto/sendmsg aims outside loopback."""
    cls = socket.socket
    saved = {name: getattr(cls, name) for name in ("connect", "connect_ex", "sendto", "sendmsg")}
    cls.connect = _wrap(saved["connect"], 0)  # type: ignore[method-assign]  # test-only patch
    cls.connect_ex = _wrap(saved["connect_ex"], 0)  # type: ignore[method-assign]  # same

    # sendto(data, address) or sendto(data, flags, address): the address is the last argument.
    def sendto(self: socket.socket, *args: Any) -> Any:
        if len(args) >= 2:
            _check(self, args[-1])
        return saved["sendto"](self, *args)

    def sendmsg(self: socket.socket, *args: Any) -> Any:
        if len(args) >= 4 and args[3] is not None:
            _check(self, args[3])
        return saved["sendmsg"](self, *args)

    cls.sendto = sendto  # type: ignore[method-assign]  # test-only patch
    cls.sendmsg = sendmsg  # type: ignore[method-assign]  # test-only patch
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None:
            text = host.decode() if isinstance(host, bytes) else str(host)
            try:
                ipaddress.ip_address(text.split("%", 1)[0])
            except ValueError:
                raise NetworkGuardError(
                    f"test tried to resolve host name {text!r}; use a numeric loopback address"
                ) from None
        return real_getaddrinfo(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(cls, name, fn)
        socket.getaddrinfo = real_getaddrinfo

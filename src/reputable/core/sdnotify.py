"""systemd's readiness protocol (sd_notify): one datagram to the socket in $NOTIFY_SOCKET.

``Type=notify`` units wait for ``READY=1`` before they count as started; without
$NOTIFY_SOCKET (not run by systemd) every call is a no-op. See sd_notify(3).
"""

from __future__ import annotations

import os
import socket


def notify(state: str, environ: dict[str, str] | None = None) -> bool:
    """Send *state* (``READY=1``, ``STOPPING=1``, ``STATUS=...``) to systemd; True if sent.

    An abstract socket name starts with ``@`` in the variable and a NUL byte on the wire.
    Errors are swallowed: a notification is never worth stopping the server for.
    """
    address = (environ if environ is not None else os.environ).get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "@/":
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError:
        return False
    return True

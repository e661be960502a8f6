"""What the network-log parsers (sshd, web, netfilter, flows) produce: one value per log line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Final

#: Values of ``NetLine.kind``.
OTHER: Final = "other"  # a well-formed line of another program (CRON in auth.log)
UNKNOWN: Final = "unknown"  # a line this parser does not understand


@dataclass(frozen=True, slots=True, kw_only=True)
class NetEvent:
    """One understood log line: who (ip), what (event), when, and the particulars."""

    line: int
    ts: float  # seconds since the epoch, UTC
    ip: str  # the client / source address; "" when the line names none
    event: str
    text: str
    user: str = ""
    pid: int = 0
    via_pid: bool = False  # ip comes from an earlier line of the same sshd process
    method: str = ""
    path: str = ""
    status: int = 0
    dst: str = ""
    dport: int = 0
    proto: str = ""
    packets: int = 0
    size: int = 0
    flags: str = ""
    service: str = ""  # the daemon's process that logged it (Dovecot: imap-login, auth-worker)
    attempts: int = 0  # authentication attempts the line stands for (Dovecot: auth failed, N)

    def to_json(self) -> dict[str, object]:
        """Return the documented ``--jsonl`` object: line, ip, event, at and the non-empty particulars."""
        out: dict[str, object] = {
            "line": self.line,
            "ip": self.ip or None,
            "event": self.event,
            "at": datetime.fromtimestamp(self.ts, UTC).isoformat().replace("+00:00", "Z"),
        }
        for name in (
            "user", "pid", "method", "path", "status", "dst", "dport", "proto", "service",
            "attempts",
        ):  # fmt: skip
            value = getattr(self, name)
            if value:
                out[name] = value
        if self.packets:
            out["packets"] = self.packets
            out["bytes"] = self.size
        if self.flags:
            out["flags"] = self.flags
        if self.via_pid:
            out["via"] = "pid"
        return out


@dataclass(frozen=True, slots=True)
class NetLine:
    """A line that produced no event: another program's line, or one not understood."""

    line: int
    kind: str  # OTHER or UNKNOWN
    text: str


def client_address(text: str) -> IPv4Address | IPv6Address | None:
    """Return *text* as an address (IPv4-mapped IPv6 as IPv4), or None when it is not one."""
    try:
        value = ip_address(text)
    except ValueError:
        return None
    if isinstance(value, IPv6Address) and value.ipv4_mapped is not None:
        return value.ipv4_mapped
    return value

"""Postfix policy delegation protocol: requests in, ``action=...`` out (pure).

A request is ``name=value`` lines ending with an empty line (SMTPD_POLICY_README, "Policy
protocol description"); Postfix waits for ``action=VALUE`` and an empty line before it sends
the next request on the same connection. Values are not escaped; a name may repeat (the
last one counts). Anything else - a line without ``=``, no ``request=smtpd_access_policy``,
an over-long request - is malformed: it still gets an answer (DUNNO), so Postfix neither
fails open nor closed by accident, and the error is counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

MAX_REQUEST: Final = 64 * 1024  # Postfix requests are a few hundred bytes
REQUEST_KIND: Final = "smtpd_access_policy"


@dataclass(frozen=True, slots=True)
class Request:
    """One policy request: its attributes, or why it is malformed."""

    attrs: dict[str, str]
    error: str | None = None

    def get(self, name: str) -> str:
        """Return attribute *name* ("" when absent)."""
        return self.attrs.get(name, "")


def parse_request(block: bytes) -> Request:
    """Return the request in *block* (its lines, without the ending empty line)."""
    text = block.decode("utf-8", "replace").replace("\r\n", "\n")
    try:  # the common case in one pass; a line without "=" falls through to the slow path
        attrs = dict(line.split("=", 1) for line in text.split("\n") if line)
    except ValueError:
        return _malformed(text)
    if "" in attrs:
        return _malformed(text)
    if attrs.get("request") != REQUEST_KIND:
        return Request(
            attrs, f"request={attrs.get('request', '')!r}: only {REQUEST_KIND} is served"
        )
    return Request(attrs)


def _malformed(text: str) -> Request:
    """Return the request of *text* with the first line that is not ``name=value`` named."""
    attrs: dict[str, str] = {}
    error: str | None = None
    for number, line in enumerate(text.split("\n"), 1):
        name, sep, value = line.partition("=")
        if not line:
            continue
        if not sep or not name:
            error = error or f"line {number} {line[:60]!r} is not name=value"
            continue
        attrs[name] = value
    return Request(attrs, error)


def response(action: str) -> bytes:
    """Return the wire form of *action* (one line, then the empty line)."""
    clean = " ".join(action.split())  # a line break in a reason would end the answer early
    return f"action={clean}\n\n".encode()


def split_requests(buffer: bytearray) -> list[bytes]:
    """Remove and return every complete request at the front of *buffer*."""
    found: list[bytes] = []
    start = 0
    while True:
        end = buffer.find(b"\n\n", start)
        if end < 0:
            break
        found.append(bytes(buffer[start:end]))
        start = end + 2
    if start:
        del buffer[:start]
    return found

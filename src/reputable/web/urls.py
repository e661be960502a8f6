"""URL canonicalisation as Google Safe Browsing describes it (pure; no lookups, no network).

https://developers.google.com/safe-browsing/v4/urls-hashing#canonicalization: strip tab/CR/LF
and the fragment, unescape until stable, lower-case the host, trim and collapse its dots,
read numeric IPv4 hosts (decimal, hex, octal), IDNA-encode, resolve ``.``/``..`` and ``//``
in the path, then escape what is not printable ASCII.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Final
from urllib.parse import unquote, urlsplit

from reputable.core.errors import InputError

_CONTROL: Final = re.compile(r"[\t\r\n]")
_DOTS: Final = re.compile(r"\.{2,}")
_MAX_UNQUOTE: Final = 10


@dataclass(frozen=True, slots=True)
class CanonicalUrl:
    """A canonical URL and its host (an IP address text or an ASCII domain)."""

    text: str
    host: str
    is_ip: bool


def _unescape(text: str) -> str:
    for _ in range(_MAX_UNQUOTE):
        decoded = unquote(text, errors="surrogateescape")
        if decoded == text:
            break
        text = decoded
    return text


def _escape(text: str) -> str:
    out = []
    for byte in text.encode("utf-8", "surrogateescape"):
        if byte <= 32 or byte >= 127 or byte in (ord("#"), ord("%")):
            out.append(f"%{byte:02X}")
        else:
            out.append(chr(byte))
    return "".join(out)


def _host(raw: str, url: str) -> tuple[str, bool]:
    host = _DOTS.sub(".", raw.strip(".").lower())
    if not host:
        raise InputError(f"URL {url!r} has no host")
    if host.startswith("[") and host.endswith("]"):
        try:
            return str(IPv6Address(host[1:-1])), True
        except ValueError as exc:
            raise InputError(f"URL {url!r}: bad IPv6 host {host!r}") from exc
    if re.fullmatch(r"[0-9a-fx.]+", host) and any(c.isdigit() for c in host):
        try:  # inet_aton reads 3232235777, 0xc0a80101 and 0300.0250.1.1 as browsers do
            return socket.inet_ntoa(socket.inet_aton(host)), True
        except OSError:
            pass
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError as exc:
        raise InputError(f"URL {url!r}: host {host!r} is not a valid name ({exc})") from exc
    return ascii_host, False


def _path(path: str) -> str:
    parts: list[str] = []
    segments = path.split("/")
    for segment in segments[1:] if path.startswith("/") else segments:
        if segment in ("", "."):
            continue
        if segment == "..":
            if parts:
                parts.pop()
            continue
        parts.append(segment)
    trailing = path.endswith(("/", "/.", "/..")) and bool(parts)
    return "/" + "/".join(parts) + ("/" if trailing else "")


def canonical(url: str) -> CanonicalUrl:
    """Return *url* canonicalised; raise InputError when it has no usable host."""
    text = _CONTROL.sub("", url.strip()).split("#", 1)[0]
    text = _unescape(text)
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InputError(f"URL {url!r}: {exc}") from exc
    netloc = parts.netloc.rsplit("@", 1)[-1]
    raw_host = (
        netloc
        if netloc.startswith("[") and netloc.endswith("]")
        else (netloc.rsplit(":", 1)[0] if port is not None or netloc.endswith(":") else netloc)
    )
    host, is_ip = _host(raw_host, url)
    shown = f"[{host}]" if ":" in host else host
    if port is not None:
        shown += f":{port}"
    query = f"?{parts.query}" if parts.query or text.endswith("?") else ""
    scheme = parts.scheme.lower() or "http"
    return CanonicalUrl(
        f"{scheme}://{shown}{_escape(_path(parts.path))}{_escape(query)}", host, is_ip
    )

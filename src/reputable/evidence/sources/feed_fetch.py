"""Downloading a feed: ``file://`` paths and HTTP(S) with ETag / If-Modified-Since, under a timeout."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from reputable.core.errors import InputError
from reputable.evidence.parsers.feed_model import FeedError, FeedState
from reputable.evidence.sources.settings import FeedSettings

SCHEMES = ("file", "http", "https")


@dataclass(frozen=True, slots=True)
class Fetched:
    """One download: the body (None when the server said 304 Not Modified) and its validators."""

    body: bytes | None
    etag: str | None
    last_modified: str | None


def check_url(url: str) -> str:
    """Return *url* if reputable can fetch it, else raise InputError naming the forms it takes."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or (parts.scheme != "file" and not parts.hostname):
        raise InputError(
            f"feed URL {url!r}: use file:///path/to/list, http://host/path or https://host/path"
        )
    if parts.scheme == "file" and not parts.path:
        raise InputError(f"feed URL {url!r}: file URLs need an absolute path, file:///srv/x.txt")
    return url


def _read_file(path: Path, limit: int) -> bytes:
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise FeedError(f"{path}: larger than feeds.max_bytes ({limit} bytes)")
    return data


async def _http(url: str, state: FeedState, settings: FeedSettings) -> Fetched:
    headers = {"User-Agent": "reputable-feed/0.1", "Accept-Encoding": "gzip"}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    for prefix, key in settings.api_keys:  # e.g. a CrowdSec Local API's bouncer key
        if url.startswith(prefix):
            headers["X-Api-Key"] = key
    # trust_env=False: no proxy or netrc from the environment; the URL says where to go.
    async with (
        httpx.AsyncClient(trust_env=False, follow_redirects=True, max_redirects=5) as client,
        client.stream("GET", url, headers=headers, timeout=settings.timeout) as response,
    ):
        if response.status_code == 304:
            return Fetched(None, state.etag, state.last_modified)
        if response.status_code != 200:
            raise FeedError(f"{url}: HTTP {response.status_code} {response.reason_phrase}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > settings.max_bytes:
                raise FeedError(f"{url}: larger than feeds.max_bytes ({settings.max_bytes} bytes)")
            chunks.append(chunk)
        return Fetched(
            b"".join(chunks), response.headers.get("ETag"), response.headers.get("Last-Modified")
        )


async def fetch(url: str, state: FeedState, settings: FeedSettings) -> Fetched:
    """Download *url*; raise FeedError on any failure, including a body cut off mid-way."""
    parts = urlsplit(check_url(url))
    try:
        async with asyncio.timeout(settings.timeout):
            if parts.scheme == "file":
                path = Path(unquote(parts.path))
                return Fetched(
                    await asyncio.to_thread(_read_file, path, settings.max_bytes), None, None
                )
            return await _http(url, state, settings)
    except TimeoutError as exc:
        raise FeedError(f"{url}: no complete answer within {settings.timeout:g}s") from exc
    except httpx.HTTPError as exc:
        raise FeedError(f"{url}: {type(exc).__name__}: {exc}") from exc
    except OSError as exc:
        raise FeedError(f"{url}: {exc}") from exc

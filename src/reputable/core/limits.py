"""Size limits on what enters from outside, in one place so every entry point agrees."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final, TextIO

#: The longest listing reason, in UTF-8 bytes. It becomes a TXT answer (with the lookup URL),
#: and four 255-byte character-strings keep a typical answer inside one 1,232-byte UDP reply.
MAX_REASON_BYTES: Final = 1024
#: The longest input line importers and feed parsers accept; longer lines are reported as bad.
MAX_LINE_BYTES: Final = 64 * 1024


def reason_problem(reason: str) -> str | None:
    """Return why *reason* is too long to store (naming the limit), or None when it fits."""
    size = len(reason.encode("utf-8", "surrogatepass"))
    if size <= MAX_REASON_BYTES:
        return None
    return (
        f"reason is {size} bytes, the limit is {MAX_REASON_BYTES} (it becomes a DNS TXT"
        " answer); shorten it and link to details instead"
    )


def clip_reason(reason: str) -> str:
    """Return *reason* cut to at most MAX_REASON_BYTES of UTF-8 (for feeds we cannot refuse)."""
    raw = reason.encode("utf-8", "surrogatepass")
    if len(raw) <= MAX_REASON_BYTES:
        return reason
    return raw[: MAX_REASON_BYTES - 3].decode("utf-8", "ignore") + "..."


def bounded_lines(stream: TextIO, limit: int = MAX_LINE_BYTES) -> Iterator[tuple[int, str | None]]:
    """Yield (line number, line without its end) from *stream*; None for a line over *limit*.

    A line longer than *limit* characters is skipped in chunks, never held whole, so one
    endless line costs no more memory than a normal one; the caller reports it as bad.
    """
    lineno = 0
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        lineno += 1
        if len(line) > limit and not line.endswith("\n"):
            while line and not line.endswith("\n"):
                line = stream.readline(limit)
            yield lineno, None
            continue
        yield lineno, line.rstrip("\r\n")

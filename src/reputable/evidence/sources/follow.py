"""Follow a growing log file exactly once across rotation, truncation and crashes (generic I/O).

Usage (any line-oriented consumer; nothing here knows about mail)::

    follower = Follower(Path("/var/log/mail.log"), store, "maillog:/var/log/mail.log")
    state = follower.position.state            # your consumer's saved state, or None
    for batch in follower.batches():           # complete lines available now, then returns
        evidence = consume(batch.text, first_line=batch.first_line)
        follower.commit(batch, evidence, state=my_state_as_json())
    # sleep, call batches() again

``commit`` stores the evidence, the new offset and your state in **one transaction**
(``store.commit_source``), so after a crash the next run starts at the end of the last
committed line with the state that belonged to it: no line counted twice, none missed.
Call ``commit`` for every batch before asking for the next one.

Rotation: when the path names a new file (rename + create), the rest of the old file is
read first from wherever it now lives in the same folder (found by device + inode), then
the new file from its start. ``copytruncate``: when the file shrinks below the offset or
its first bytes change, the rest is read from the copy (a sibling whose first bytes match),
then the truncated file from its start. Compressed rotated files are not followed; read
them in batch mode.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, Protocol

from reputable.core.errors import InputError
from reputable.evidence.model import Evidence

HEAD_BYTES: Final = 256
CHUNK_BYTES: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class Position:
    """Where a follower stopped: which file (device, inode, first bytes) and how far."""

    name: str
    device: int
    inode: int
    head: str  # "N:digest" of the first N bytes
    offset: int  # end of the last consumed complete line
    lines: int  # complete lines consumed from this file
    state: str | None = None  # the consumer's state, as it chose to encode it


@dataclass(frozen=True, slots=True)
class Batch:
    """Complete lines read from one file, and the position just after them."""

    text: str
    first_line: int  # 1-based number of the first line of *text* in its file
    lines: int
    path: Path  # the file they came from (the rotated copy while draining it)
    position: Position


class PositionStore(Protocol):
    """What a follower needs from the store (SQLiteStore implements it)."""

    def source_position(self, name: str) -> Position | None:
        """Return the saved position of *name*."""
        ...

    def commit_source(self, position: Position, evidence: Iterable[Evidence]) -> int:
        """Store *evidence* and *position* atomically; return how many evidence were new."""
        ...


def _head(path: Path, size: int | None = None) -> str:
    with path.open("rb") as f:
        data = f.read(HEAD_BYTES if size is None else size)
    return f"{len(data)}:{hashlib.blake2b(data, digest_size=8).hexdigest()}"


def _same_head(path: Path, head: str) -> bool:
    count = int(head.split(":", 1)[0])
    try:
        return _head(path, count) == head
    except OSError:
        return False


class Follower:
    """Reads the complete lines appended to *path* since the last commit."""

    def __init__(
        self, path: Path, store: PositionStore, name: str, *, chunk_bytes: int = CHUNK_BYTES
    ) -> None:
        self.path = path
        self.store = store
        self.name = name
        self.chunk_bytes = chunk_bytes
        self.position: Position | None = store.source_position(name)

    def batches(self) -> Iterator[Batch]:
        """Yield the complete lines available now (old file's rest first); stop at end of data."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return  # between rename and create: nothing to read yet
        except OSError as exc:
            raise InputError(f"cannot read {self.path}: {exc.strerror}") from exc
        saved = self.position
        pos = saved
        if saved is not None and (saved.device, saved.inode) == (st.st_dev, st.st_ino):
            if st.st_size < saved.offset or not _same_head(self.path, saved.head):
                # copytruncate: finish the copy, then start the truncated file again.
                copy = self._find(
                    lambda p, s: (
                        s.st_ino != st.st_ino
                        and s.st_size >= saved.offset
                        and _same_head(p, saved.head)
                    )
                )
                if copy is not None:
                    yield from self._read(copy, saved)
                pos = self.position = None
        elif saved is not None:
            # Renamed away: drain the old file where it now lives, then start the new one.
            old = self._find(lambda p, s: (s.st_dev, s.st_ino) == (saved.device, saved.inode))
            if old is not None and _same_head(old, saved.head):
                yield from self._read(old, saved)
            pos = self.position = None
        if pos is None:
            pos = Position(self.name, st.st_dev, st.st_ino, _head(self.path), 0, 0, self._state())
        elif int(pos.head.split(":", 1)[0]) < min(HEAD_BYTES, st.st_size):
            pos = replace(pos, head=_head(self.path))  # the head grows until HEAD_BYTES exist
        yield from self._read(self.path, pos)

    def commit(self, batch: Batch, evidence: Iterable[Evidence], *, state: str | None) -> int:
        """Store *evidence* with the position after *batch* and the consumer's *state* atomically."""
        position = replace(batch.position, state=state)
        added = self.store.commit_source(position, evidence)
        self.position = position
        return added

    def save(self, evidence: Iterable[Evidence], *, state: str | None) -> int:
        """Store *evidence* and a new consumer *state* at the current position (nothing read)."""
        if self.position is None:
            return 0
        position = replace(self.position, state=state)
        added = self.store.commit_source(position, evidence)
        self.position = position
        return added

    def _state(self) -> str | None:
        return self.position.state if self.position is not None else None

    def _find(self, test: Callable[[Path, os.stat_result], bool]) -> Path | None:
        for candidate in sorted(self.path.parent.iterdir()):
            if candidate == self.path or not candidate.name.startswith(self.path.name):
                continue
            if candidate.suffix in (".gz", ".bz2", ".xz", ".zst"):
                continue
            try:
                if test(candidate, candidate.stat()):
                    return candidate
            except OSError:
                continue
        return None

    def _read(self, path: Path, start: Position) -> Iterator[Batch]:
        """Yield batches of complete lines of *path* from *start*; a partial last line waits."""
        pos = start
        try:
            f = path.open("rb")
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from exc
        with f:
            f.seek(pos.offset)
            carry = b""
            while True:
                data = f.read(self.chunk_bytes)
                if not data:
                    return
                data = carry + data
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    if len(data) > 16 * self.chunk_bytes:
                        cut = len(data)  # a runaway line: take it rather than grow forever
                    else:
                        carry = data
                        continue
                carry = data[cut:]
                complete = data[:cut]
                lines = complete.count(b"\n")
                after = replace(pos, offset=pos.offset + cut, lines=pos.lines + lines)
                yield Batch(complete.decode("utf-8", "replace"), pos.lines + 1, lines, path, after)
                pos = self.position if self.position is not None else after
                if pos.offset != after.offset:
                    raise InputError(f"{self.name}: commit() each batch before reading the next")
                f.seek(pos.offset)
                carry = b""

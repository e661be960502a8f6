"""The snapshot file: a JSON header and 8-byte-aligned binary sections, loaded with mmap.

::

    b"RPSNAP01" | u32 header length | header JSON | pad to 8 | section | pad | section ...

Sections are flat arrays (``u32`` native order, or raw bytes) so that several DNS worker
processes map one file and share its pages: no Python object per entry. The header records
each section's offset, length and item format.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import sys
from array import array
from pathlib import Path
from typing import Any, Final, TypeAlias

from reputable.core.errors import SnapshotError

MAGIC: Final = b"RPSNAP01"
VERSION: Final = 2  # 2: v4_host_dns (answer value per host) beside v4_host_val
NONE: Final = 0  # value id of "not listed"
EXCLUDED: Final = 0xFFFFFFFF  # domain table marker: allowlisted, never listed
#: One section's data: a flat array, or raw bytes.
Section: TypeAlias = (
    "bytes | bytearray | array[Any]"  # a string: array[...] fails at run time on 3.11
)


def write_snapshot(path: Path, header: dict[str, Any], sections: dict[str, Section]) -> None:
    """Write a snapshot atomically (temporary file in the same folder, fsync, rename).

    The sections are written from their own buffers: a copy of each (``tobytes``) held the
    whole file twice in memory at the end of a build (~630 MB more at ten million hosts).
    """
    layout: dict[str, list[int | str]] = {}
    blobs: list[tuple[str, memoryview]] = []
    for name, data in sections.items():
        view = memoryview(data).cast("B")
        blobs.append((name, view))
        layout[name] = [0, len(data), data.typecode if isinstance(data, array) else "B"]
    # The header holds the offsets, so size it first with placeholder offsets of fixed width.
    full = dict(header, version=VERSION, byteorder=sys.byteorder, sections=layout)
    for entry in layout.values():
        entry[0] = 10**12
    head_len = len(json.dumps(full, sort_keys=True).encode())
    offset = _align(len(MAGIC) + 4 + head_len)
    for name, blob in blobs:
        layout[name][0] = offset
        offset = _align(offset + len(blob))
    head = json.dumps(full, sort_keys=True).encode().ljust(head_len)
    import tempfile  # only writers need it (~4 ms of the DNS start-up)

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(MAGIC + struct.pack("<I", head_len) + head)
            for name, blob in blobs:
                out.write(b"\0" * (int(layout[name][0]) - out.tell()))
                out.write(blob)
            out.write(b"\0" * (_align(out.tell()) - out.tell()))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _align(n: int) -> int:
    return (n + 7) & ~7


class MappedFile:
    """A read-only mapping of one snapshot file and typed views of its sections."""

    def __init__(self, path: Path) -> None:
        try:
            with path.open("rb") as fh:
                self.stat = os.fstat(fh.fileno())
                self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            raise SnapshotError(f"cannot map snapshot {path}: {exc}") from exc
        self.path = path
        view = memoryview(self._map)
        if bytes(view[:8]) != MAGIC:
            raise SnapshotError(
                f"{path} is not a reputable snapshot (bad magic); delete it to rebuild"
            )
        (head_len,) = struct.unpack_from("<I", view, 8)
        try:
            self.header: dict[str, Any] = json.loads(bytes(view[12 : 12 + head_len]))
        except ValueError as exc:
            raise SnapshotError(f"{path}: corrupt header; delete it to rebuild") from exc
        if self.header.get("version") != VERSION or self.header.get("byteorder") != sys.byteorder:
            raise SnapshotError(f"{path}: snapshot of another version or byte order; rebuild it")
        self._view = view

    def section(self, name: str) -> memoryview:
        """Return section *name* as a typed memoryview (``I`` for u32, ``B`` for bytes)."""
        try:
            offset, count, typecode = self.header["sections"][name]
        except KeyError as exc:
            raise SnapshotError(f"{self.path}: missing section {name!r}; rebuild it") from exc
        size = array(typecode).itemsize
        raw = self._view[offset : offset + count * size]
        if len(raw) != count * size:
            raise SnapshotError(f"{self.path}: section {name!r} truncated; rebuild it")
        return raw if typecode == "B" else raw.cast(typecode)

    def buffer(self) -> mmap.mmap:
        """Return the underlying mapping (for the compiled packet loop)."""
        return self._map


def readable(path: Path) -> bool:
    """True when *path* holds a snapshot this version maps (False: missing, older, corrupt).

    ``serve`` builds a new one before answering when this is False, so a snapshot left by
    an older version is rebuilt, not a reason to stop.
    """
    try:
        MappedFile(path)
    except SnapshotError:
        return False
    return True

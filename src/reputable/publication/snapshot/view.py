"""Read side of a snapshot: lookups over the mapped arrays (no Python object per entry)."""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from reputable.core.errors import SnapshotError
from reputable.publication.snapshot.layout import EXCLUDED, NONE, MappedFile

NO_ATOMS: Final[tuple[int, ...]] = ()


class _Keys:
    """A sequence view of fixed-width big-endian keys (bisect compares bytes = numbers)."""

    __slots__ = ("_buf", "_n", "_w")

    def __init__(self, buf: memoryview, width: int) -> None:
        self._buf = buf
        self._w = width
        self._n = len(buf) // width

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> bytes:
        w = self._w
        return bytes(self._buf[i * w : i * w + w])


class _Names:
    """A sequence view of the sorted names of a domain table."""

    __slots__ = ("_blob", "_off")

    def __init__(self, blob: memoryview, off: memoryview) -> None:
        self._blob = blob
        self._off = off

    def __len__(self) -> int:
        return len(self._off) - 1

    def __getitem__(self, i: int) -> bytes:
        return bytes(self._blob[self._off[i] : self._off[i + 1]])


class Snapshot:
    """One immutable snapshot: IPv4/IPv6/domain lookups for the block and allow zones."""

    def __init__(self, path: Path, *, mapped: MappedFile | None = None) -> None:
        self.file = mapped if mapped is not None else MappedFile(path)
        #: Changed addresses answered from a small snapshot beside this one (overlay.py).
        self.overlay: Overlay | None = None
        header = self.file.header
        self.serial: int = int(header["serial"])
        self.built_at: float = float(header["built_at"])
        self.next_expiry: float | None = header.get("next_expiry")
        self.listings: int = int(header["listings"])
        self.allows: int = int(header.get("allows", 0))
        self.fingerprint: str = str(header.get("fingerprint", ""))
        sec = self.file.section
        self.v4_host_addr = sec("v4_host_addr")
        self.v4_host_val = sec("v4_host_val")
        self.v4_range_start = sec("v4_range_start")
        self.v4_range_val = sec("v4_range_val")
        self._v6_start = _Keys(sec("v6_range_start"), 16)
        self._v6_val = sec("v6_range_val")
        self._wl4_start = sec("wl4_range_start")
        self._wl4_val = sec("wl4_range_val")
        self._wl6_start = _Keys(sec("wl6_range_start"), 16)
        self._wl6_val = sec("wl6_range_val")
        self._dom = (_Names(sec("dom_names"), sec("dom_off")), sec("dom_val"))
        self._wldom = (_Names(sec("wldom_names"), sec("wldom_off")), sec("wldom_val"))
        self._val_index = sec("val_index")
        self._val_atoms = sec("val_atoms")
        self.atom_code = sec("atom_code")
        self._txt_off = sec("atom_txt_off")
        self._txt_len = sec("atom_txt_len")
        self._strings = sec("strings")
        self.atoms = lru_cache(maxsize=65536)(self._atoms)
        # Per-listing facts beside each answer (lookup API); absent from older snapshots.
        names = header["sections"]
        self.has_facts = "atom_since" in names and "atom_subject_off" in names
        if self.has_facts:
            self.atom_cause = sec("atom_cause")
            self.atom_since = sec("atom_since")
            self.atom_until = sec("atom_until")
            self._subj_off = sec("atom_subject_off")
            self._subjects = sec("atom_subjects")

    def attach_overlay(self, path: Path) -> bool:
        """Answer the addresses of the overlay at *path* from it, if it was built on this
        snapshot; return True when it was attached (a stale or missing one is ignored)."""
        from reputable.publication.snapshot.overlay import overlay_of

        mapped = overlay_of(self.file, path)
        self.overlay = None if mapped is None else Overlay(mapped)
        return self.overlay is not None

    @property
    def effective_serial(self) -> int:
        """Return the serial of what this snapshot answers (the overlay's when attached)."""
        return self.serial if self.overlay is None else self.overlay.serial

    def intervals(self, *, v6: bool, allow: bool = False) -> tuple[Any, memoryview]:
        """Return (starts, value ids) of the flattened ranges of a block or allow zone."""
        if v6:
            return (self._wl6_start, self._wl6_val) if allow else (self._v6_start, self._v6_val)
        if allow:
            return self._wl4_start, self._wl4_val
        return self.v4_range_start, self.v4_range_val

    def subject(self, atom: int) -> str:
        """Return the listed subject *atom* comes from (an IP, CIDR or domain)."""
        off = self._subj_off
        return bytes(self._subjects[off[atom] : off[atom + 1]]).decode("ascii", "replace")

    # -- values -----------------------------------------------------------------------------
    def _atoms(self, value: int) -> tuple[int, ...]:
        """Return the atom ids of value *value*."""
        if value in (NONE, EXCLUDED):
            return NO_ATOMS
        lo, hi = self._val_index[value], self._val_index[value + 1]
        return tuple(self._val_atoms[lo:hi])

    def template(self, atom: int) -> bytes:
        """Return the TXT template of *atom* (``$`` = queried subject, ``$$`` = a dollar)."""
        off = self._txt_off[atom]
        return bytes(self._strings[off : off + self._txt_len[atom]])

    # -- block zones ------------------------------------------------------------------------
    def v4_value(self, address: int) -> int:
        """Return the value id answering for IPv4 *address* (as an int)."""
        hosts = self.v4_host_addr
        i = bisect_left(hosts, address)
        if i < len(hosts) and hosts[i] == address:
            return int(self.v4_host_val[i])
        return int(self.v4_range_val[bisect_right(self.v4_range_start, address) - 1])

    def v6_value(self, address: bytes) -> int:
        """Return the value id answering for IPv6 *address* (16 bytes, big-endian)."""
        return int(self._v6_val[bisect_right(self._v6_start, address) - 1])

    def domain_atoms(self, name: str) -> tuple[int, ...]:
        """Return the atoms for *name* and its parents (most specific wins per code)."""
        return self._domain_atoms(self._dom, name)[0]

    def domain_match(self, name: str, *, allow: bool = False) -> tuple[tuple[int, ...], str]:
        """Return the atoms for *name* and the most specific listed name among it and its parents.

        That name is what ``$`` stands for in a domain zone's TXT, as in rbldnsd's dnset.
        """
        return self._domain_atoms(self._wldom if allow else self._dom, name)

    # -- allow zone -------------------------------------------------------------------------
    def wl_v4_value(self, address: int) -> int:
        """Return the allowlist value id for IPv4 *address*."""
        return int(self._wl4_val[bisect_right(self._wl4_start, address) - 1])

    def wl_v6_value(self, address: bytes) -> int:
        """Return the allowlist value id for IPv6 *address*."""
        return int(self._wl6_val[bisect_right(self._wl6_start, address) - 1])

    def wl_domain_atoms(self, name: str) -> tuple[int, ...]:
        """Return the allowlist atoms for *name* and its parents."""
        return self._domain_atoms(self._wldom, name)[0]

    def _domain_atoms(
        self, table: tuple[_Names, memoryview], name: str
    ) -> tuple[tuple[int, ...], str]:
        names, vals = table
        found: list[int] = []
        codes: set[int] = set()
        labels = name.split(".")
        key = ""
        listed = ""
        matched: list[int] = []
        for label in reversed(labels):
            key = f"{key}.{label}" if key else label
            raw = key.encode("ascii", "replace")
            i = bisect_left(names, raw)
            if i < len(names) and names[i] == raw:
                value = int(vals[i])
                if value == EXCLUDED:
                    return NO_ATOMS, ""
                matched.append(value)
                listed = key
        for value in reversed(matched):  # most specific first: it wins within its code
            for atom in self.atoms(value):
                code = int(self.atom_code[atom])
                if code not in codes:
                    codes.add(code)
                    found.append(atom)
        return tuple(found), ".".join(reversed(listed.split(".")))

    def domain_names(self, *, allow: bool = False) -> list[str]:
        """Return every name in the domain table of a block or allow zone (zone export)."""
        names = (self._wldom if allow else self._dom)[0]
        return [
            ".".join(reversed(bytes(names[i]).decode("ascii").split(".")))
            for i in range(len(names))
        ]

    def domain_count(self, *, allow: bool = False) -> int:
        """Return how many names the domain table of a block or allow zone holds (a table
        length: no walk)."""
        return len((self._wldom if allow else self._dom)[0])

    def domain_has_children(self, name: str, *, allow: bool = False) -> bool:
        """True when some entry lies strictly below *name* (so *name* is an empty non-terminal)."""
        names = (self._wldom if allow else self._dom)[0]
        prefix = (".".join(reversed(name.split("."))) + ".").encode("ascii", "replace")
        i = bisect_left(names, prefix)
        return i < len(names) and names[i].startswith(prefix)


class Overlay:
    """The overlay's snapshot and the addresses it answers for (the rest is the base's)."""

    def __init__(self, mapped: MappedFile) -> None:
        meta = mapped.header.get("overlay")
        if not isinstance(meta, dict):
            raise SnapshotError(f"{mapped.path}: not an overlay; delete it")
        self.snapshot = Snapshot(mapped.path, mapped=mapped)
        self.serial = self.snapshot.serial
        self.v4: frozenset[int] = frozenset(int(a) for a in meta["v4"])
        self.v6: frozenset[bytes] = frozenset(bytes.fromhex(str(a)) for a in meta["v6"])
        #: The IPv4 addresses, sorted, for the compiled loop (it leaves them to Python).
        self.v4_sorted = array("I", sorted(self.v4))

    def __len__(self) -> int:
        return len(self.v4) + len(self.v6)

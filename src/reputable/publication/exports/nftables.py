"""nftables script: our own table with interval sets of listed sources, replaced atomically (pure).

``nft -f FILE`` runs a whole file as one transaction, so the script first makes sure the
table exists (``add table``), deletes it, and declares it again with its sets and drop
chains: the kernel swaps the old table for the new one in one step, with no instant where a
listed source passes or the set is half-filled. The table belongs to reputable; operators
keep their own rules in their own tables (nftables evaluates every base chain of a hook).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, groupby, islice
from operator import itemgetter
from typing import Final

from reputable.core.errors import InputError
from reputable.publication.exports.ranges import ListedSpace, Range, range_text

NAME: Final = "nftables"
HOOKS: Final = ("input", "forward")
#: Elements per line: nft parses long lines fine, shorter ones keep diffs readable.
PER_LINE: Final = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class NftOptions:
    """Names and behaviour of the generated table."""

    table: str = "reputable"
    set4: str = "bl4"
    set6: str = "bl6"
    hooks: tuple[str, ...] = ("input",)
    priority: int = -10  # before the usual filter chains (priority 0)
    action: str = "drop"  # or "reject"
    comment: str = ""


def check_options(options: NftOptions) -> None:
    """Raise InputError when a name or hook would make nft refuse the script."""
    for label, value in (("table", options.table), ("set", options.set4), ("set", options.set6)):
        if not value or not (value[0].isalpha() and value.replace("_", "a").isalnum()):
            raise InputError(
                f"nftables {label} name {value!r}: use letters, digits and _ (starting with a letter)"
            )
    for hook in options.hooks:
        if hook not in HOOKS:
            raise InputError(f"nftables hook {hook!r}: use {' or '.join(HOOKS)}")
    if options.action not in ("drop", "reject"):
        raise InputError(f"nftables action {options.action!r}: use drop or reject")


def render(space: ListedSpace, options: NftOptions = NftOptions()) -> str:
    """Return an ``nft -f`` script replacing table *options.table* with the listed *space*."""
    ranges = chain(((4, r) for r in space.v4), ((6, r) for r in space.v6))
    return "".join(render_stream(ranges, options))


def render_stream(
    ranges: Iterable[tuple[int, Range]], options: NftOptions = NftOptions()
) -> Iterator[str]:
    """Yield the script of `render` in pieces for (version, range) *ranges*, IPv4 first.

    The header counts the ranges, so the sets go to a temporary file first and are copied
    after it: memory stays flat however many ranges there are.
    """
    check_options(options)
    t = options.table
    counts = {4: 0, 6: 0}
    groups = groupby(ranges, key=itemgetter(0))
    pending = next(groups, None)
    with tempfile.TemporaryFile("w+", encoding="utf-8") as body:
        for name, kind, version in (
            (options.set4, "ipv4_addr", 4),
            (options.set6, "ipv6_addr", 6),
        ):
            body.write(f"\tset {name} {{\n\t\ttype {kind}\n\t\tflags interval\n")
            items: Iterator[str] = iter(())
            if pending is not None and pending[0] == version:
                items = (range_text(a, b, version) for _, (a, b) in pending[1])
            for line in _elements(items, counts, version):
                body.write(line + "\n")
            if pending is not None and pending[0] == version:
                pending = next(groups, None)
            body.write("\t}\n")
        if pending is not None:
            raise ValueError(f"ranges out of order: IP version {pending[0]} after IPv6")
        head = [
            f"# reputable export for nftables: {counts[4]} IPv4 and {counts[6]} IPv6 ranges"
            + (f", {options.comment}" if options.comment else ""),
            "# load atomically with: nft -f THIS_FILE",
            f"add table inet {t}",
            f"delete table inet {t}",
            f"table inet {t} {{",
        ]
        yield "\n".join(head) + "\n"
        body.seek(0)
        while piece := body.read(1 << 16):
            yield piece
    tail: list[str] = []
    for hook in options.hooks:
        tail += [
            f"\tchain {hook} {{",
            f"\t\ttype filter hook {hook} priority {options.priority}; policy accept;",
            f"\t\tip saddr @{options.set4} {options.action}",
            f"\t\tip6 saddr @{options.set6} {options.action}",
            "\t}",
        ]
    tail.append("}")
    yield "\n".join(tail) + "\n"


def _elements(items: Iterable[str], counts: dict[int, int], version: int) -> Iterator[str]:
    """Yield the ``elements = { ... }`` lines of *items*, PER_LINE a line; none when empty.

    nft refuses ``elements = { }``; every line but the last ends with a comma.
    """
    iterator = iter(items)
    previous: str | None = None
    while batch := list(islice(iterator, PER_LINE)):
        counts[version] += len(batch)
        if previous is None:
            yield "\t\telements = {"
        else:
            yield f"\t\t\t{previous},"
        previous = ", ".join(batch)
    if previous is not None:
        yield f"\t\t\t{previous}"
        yield "\t\t}"

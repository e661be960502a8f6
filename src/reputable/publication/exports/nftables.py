"""nftables script: our own table with interval sets of listed sources, replaced atomically (pure).

``nft -f FILE`` runs a whole file as one transaction, so the script first makes sure the
table exists (``add table``), deletes it, and declares it again with its sets and drop
chains: the kernel swaps the old table for the new one in one step, with no instant where a
listed source passes or the set is half-filled. The table belongs to reputable; operators
keep their own rules in their own tables (nftables evaluates every base chain of a hook).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from reputable.core.errors import InputError
from reputable.publication.exports.ranges import ListedSpace, range_text

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
    check_options(options)
    t = options.table
    lines = [
        f"# reputable export for nftables: {len(space.v4)} IPv4 and {len(space.v6)} IPv6 ranges"
        + (f", {options.comment}" if options.comment else ""),
        "# load atomically with: nft -f THIS_FILE",
        f"add table inet {t}",
        f"delete table inet {t}",
        f"table inet {t} {{",
    ]
    for name, kind, ranges, version in (
        (options.set4, "ipv4_addr", space.v4, 4),
        (options.set6, "ipv6_addr", space.v6, 6),
    ):
        lines += [f"\tset {name} {{", f"\t\ttype {kind}", "\t\tflags interval"]
        lines += _elements([range_text(a, b, version) for a, b in ranges])
        lines.append("\t}")
    for hook in options.hooks:
        lines += [
            f"\tchain {hook} {{",
            f"\t\ttype filter hook {hook} priority {options.priority}; policy accept;",
            f"\t\tip saddr @{options.set4} {options.action}",
            f"\t\tip6 saddr @{options.set6} {options.action}",
            "\t}",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _elements(items: Sequence[str]) -> list[str]:
    if not items:
        return []  # nft refuses "elements = { }"
    rows = [", ".join(items[i : i + PER_LINE]) for i in range(0, len(items), PER_LINE)]
    return [
        "\t\telements = {",
        *(f"\t\t\t{row}," for row in rows[:-1]),
        f"\t\t\t{rows[-1]}",
        "\t\t}",
    ]

"""ipset restore file: fill a fresh set, then swap it with the live one (pure).

``ipset restore`` reads the whole file; the new contents are built in a temporary set and
exchanged with the live set by ``swap`` (atomic in the kernel), so iptables rules using
``-m set --match-set NAME src`` never see a half-filled set. hash:net holds CIDR networks,
so each listed range is written as the fewest networks covering it exactly. Both sets are
created with the same fixed parameters: ``create -exist`` only passes when they are equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, groupby
from operator import itemgetter
from typing import Final

from reputable.core.errors import InputError
from reputable.publication.exports.ranges import ListedSpace, Range, networks

NAME: Final = "ipset"
#: hash:net allocates per element, so a high ceiling costs nothing; it only must not move
#: between runs (a live set created with another maxelem would make ``create -exist`` fail).
MAXELEM: Final = 4_194_304


@dataclass(frozen=True, slots=True, kw_only=True)
class IpsetOptions:
    """Set names (the IPv6 set is ``<name>6``)."""

    name: str = "reputable"


def render(space: ListedSpace, options: IpsetOptions = IpsetOptions()) -> str:
    """Return an ``ipset restore`` script that swaps in the listed *space*."""
    ranges = chain(((4, r) for r in space.v4), ((6, r) for r in space.v6))
    return "".join(render_stream(ranges, options))


def render_stream(
    ranges: Iterable[tuple[int, Range]], options: IpsetOptions = IpsetOptions()
) -> Iterator[str]:
    """Yield the script of `render`, a line at a time, for (version, range) *ranges*.

    IPv4 ranges first (as the store's sorted read gives them); memory stays flat. More than
    MAXELEM networks in one set raises InputError part way: write through a temporary file.
    """
    base = options.name
    if not base or len(base) > 24 or not base.replace("-", "a").replace("_", "a").isalnum():
        raise InputError(
            f"ipset name {base!r}: use up to 24 letters, digits, - and _ (ipset's name limit"
            " is 31 including the '6-new' suffixes)"
        )
    yield "# reputable export for ipset: load with `ipset restore -file THIS_FILE`\n"
    groups = groupby(ranges, key=itemgetter(0))
    pending = next(groups, None)
    for version, family in ((4, "inet"), (6, "inet6")):
        live = base if version == 4 else base + "6"
        fresh = live + "-new"
        params = f"hash:net family {family} hashsize 1024 maxelem {MAXELEM}"
        yield f"create {live} {params} -exist\ncreate {fresh} {params} -exist\nflush {fresh}\n"
        if pending is not None and pending[0] == version:
            nets = networks((r for _, r in pending[1]), version)
            for count, net in enumerate(nets, start=1):
                if count > MAXELEM:
                    raise InputError(
                        f"ipset {live}: more than {MAXELEM} networks exceed maxelem {MAXELEM};"
                        " use the nftables export (interval sets have no such limit)"
                    )
                yield f"add {fresh} {net}\n"
            pending = next(groups, None)
        yield f"swap {fresh} {live}\ndestroy {fresh}\n"

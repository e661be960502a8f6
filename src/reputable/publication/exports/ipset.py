"""ipset restore file: fill a fresh set, then swap it with the live one (pure).

``ipset restore`` reads the whole file; the new contents are built in a temporary set and
exchanged with the live set by ``swap`` (atomic in the kernel), so iptables rules using
``-m set --match-set NAME src`` never see a half-filled set. hash:net holds CIDR networks,
so each listed range is written as the fewest networks covering it exactly. Both sets are
created with the same fixed parameters: ``create -exist`` only passes when they are equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from reputable.core.errors import InputError
from reputable.publication.exports.ranges import ListedSpace, networks

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
    base = options.name
    if not base or len(base) > 24 or not base.replace("-", "a").replace("_", "a").isalnum():
        raise InputError(
            f"ipset name {base!r}: use up to 24 letters, digits, - and _ (ipset's name limit"
            " is 31 including the '6-new' suffixes)"
        )
    lines = ["# reputable export for ipset: load with `ipset restore -file THIS_FILE`"]
    for version, family, ranges in ((4, "inet", space.v4), (6, "inet6", space.v6)):
        live = base if version == 4 else base + "6"
        fresh = live + "-new"
        nets = list(networks(ranges, version))
        if len(nets) > MAXELEM:
            raise InputError(
                f"ipset {live}: {len(nets)} networks exceed maxelem {MAXELEM};"
                " use the nftables export (interval sets have no such limit)"
            )
        params = f"hash:net family {family} hashsize 1024 maxelem {MAXELEM}"
        lines.append(f"create {live} {params} -exist")
        lines.append(f"create {fresh} {params} -exist")
        lines.append(f"flush {fresh}")
        lines += [f"add {fresh} {net}" for net in nets]
        lines.append(f"swap {fresh} {live}")
        lines.append(f"destroy {fresh}")
    return "\n".join(lines) + "\n"

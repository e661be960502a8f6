"""Plain IP/CIDR lists: one address or network per line; ``#`` and ``;`` start comments.

A line may carry a reason after the address (``192.0.2.0/24  # scanner``), which becomes
the listing's reason.
"""

from __future__ import annotations

import re
from typing import Final

from reputable.core.errors import SubjectError
from reputable.evidence.parsers.feed_model import CsvMapping, FeedContent, NetworkEntry, Tally
from reputable.evidence.parsers.feed_net import feed_network

NAME: Final = "plain"
_COMMENT: Final = re.compile(r"\s*[#;]\s*")


def parse(text: str, mapping: CsvMapping) -> FeedContent:
    """Return the networks listed in *text*."""
    tally = Tally()
    found: list[NetworkEntry] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        body, *rest = _COMMENT.split(raw.strip(), maxsplit=1)
        if not body:
            continue
        tally.lines += 1
        head = body.split()[0]
        try:
            found.append(NetworkEntry(network=feed_network(head), reason=" ".join(rest).strip()))
        except SubjectError as exc:
            tally.bad(lineno, raw, str(exc))
    return tally.content(networks=found)

"""Spamhaus DROP/EDROP/DROPv6: ``CIDR ; SBLnnnnnn`` per line, ``;`` starts a comment.

Example::

    ; Spamhaus DROP List 2026/01/01 - (c) 2026 The Spamhaus Project SLU
    1.10.16.0/20 ; SBL256894
"""

from __future__ import annotations

from typing import Final

from reputable.core.errors import SubjectError
from reputable.evidence.parsers.feed_model import CsvMapping, FeedContent, NetworkEntry, Tally
from reputable.evidence.parsers.feed_net import feed_network

NAME: Final = "drop"


def parse(text: str, mapping: CsvMapping) -> FeedContent:
    """Return the networks of a DROP list, each with its SBL reference as reason."""
    tally = Tally()
    found: list[NetworkEntry] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        body, _, ref = raw.partition(";")
        body = body.strip()
        if not body:
            continue
        tally.lines += 1
        try:
            network = feed_network(body)
        except SubjectError as exc:
            tally.bad(lineno, raw, str(exc))
            continue
        ref = ref.strip()
        found.append(NetworkEntry(network=network, reason=f"Spamhaus DROP {ref}".strip()))
    return tally.content(networks=found)

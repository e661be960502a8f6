"""The hot path of the policy service: :func:`decide`'s answers, memoised per snapshot.

``decide`` over ``parse_request`` is the specification; this module gives the same action
for the same request and snapshot (tests/policyd/test_fast.py checks it on random requests)
at a fraction of the cost. Measured on the 2-core sandbox with 1M listings (cProfile over
``PolicyConnection.data_received``): 95.6 us of CPU per request before, mostly building a
``Request``, an ``ip_network`` and a full ``Lookup`` (TXT expanded, timestamps converted)
per subject, none of which a policy answer needs; the whole server went from 108-132 to
62-71 us per decision (bench/policy_service.py, docs/benchmarks.md).

What is memoised, and why it cannot answer from an older snapshot:

* a request's attributes are parsed by one regular expression (in C) and only requests it
  parses cleanly take this path; anything else goes to ``parse_request`` and its errors;
* an IPv4 client address is parsed by ``inet_pton`` (dotted quad only, no leading zeros,
  the strings ``ipaddress`` accepts) and looked up with the snapshot's own two bisects; the
  answer is memoised per pair of *value ids* (block, allowlist): addresses with the same
  pair get the same listings by construction of the snapshot; an address changed since the
  snapshot was built (its overlay, snapshot/overlay.py) is looked up fresh, not memoised: its
  value ids are the overlay's;
* names (HELO, client name, sender domain) are memoised by their text.

Both memos belong to one snapshot object and are emptied when the snapshot changes (a new
overlay is a new object too: snapshot/holder.py) or when they reach their size.
"""

from __future__ import annotations

import re
import socket
from ipaddress import IPv4Address, ip_network
from typing import Final

from reputable.core.cause import Cause
from reputable.policyd.decide import _domain, action_text
from reputable.policyd.protocol import REQUEST_KIND
from reputable.policyd.settings import DUNNO, PREPEND, STRENGTH, PolicySettings
from reputable.publication.lookup import Lookup, Zones, lookup, lookup_address, v4_source
from reputable.publication.snapshot.view import Snapshot

_PAIR: Final = re.compile(r"^([^=\n]+)=(.*)$", re.MULTILINE)
NAME_ROLES: Final = ("client_name", "helo_name", "sender")

#: What one subject answers, reduced to what an action needs: allowlisted, the subject's
#: canonical text, and (cause, zone name, zone kind) of each block-zone answer in code order.
Found = tuple[bool, str, tuple[tuple[Cause, str, str], ...]]
Verdict = tuple[str, str]  # (verb, action line)
_DUNNO: Final[Verdict] = (DUNNO, DUNNO)


def parse_clean(block: bytes) -> dict[str, str] | None:
    """Return the attributes of a well-formed request, or None to use ``parse_request``.

    Well-formed: every line ``name=value`` with a non-empty name, no carriage return, and
    ``request=smtpd_access_policy``; the last value of a repeated name wins, as there.
    """
    text = block.decode("utf-8", "replace")
    if "\r" in text:
        return None
    pairs = _PAIR.findall(text)
    if len(pairs) != text.count("\n") + 1:
        return None  # an empty line or a line without a name and "=": the slow path names it
    attrs = dict(pairs)
    if attrs.get("request") != REQUEST_KIND:
        return None
    return attrs


def _reduce(result: Lookup) -> Found:
    return (
        result.allowlisted,
        result.subject,
        tuple((a.cause, a.zone, a.kind) for a in result.listings),
    )


class Decider:
    """Answers well-formed requests over one snapshot at a time, with memos (see module)."""

    def __init__(self, settings: PolicySettings, zones: Zones, size: int = 65536) -> None:
        self.settings = settings
        self.zones = zones
        self.size = size
        self.snapshot: Snapshot | None = None
        self.values: dict[tuple[int, int], Found] = {}
        self.names: dict[str, Found | None] = {}

    def decide(self, snapshot: Snapshot, attrs: dict[str, str]) -> Verdict:
        """Return (verb, action line) for the request *attrs* against *snapshot*."""
        if (
            snapshot is not self.snapshot
            or len(self.values) >= self.size
            or len(self.names) >= self.size
        ):
            self.values.clear()
            self.names.clear()
            self.snapshot = snapshot
        hits: list[tuple[str, str, Cause, str, str]] = []
        address = attrs.get("client_address", "")
        if address and "/" not in address:
            found = self._address(snapshot, address)
            if found is not None:
                if found[0]:
                    return _DUNNO  # an allowlisted client: whatever else is listed
                if found[2]:  # most clients are not listed: no list to build
                    text = found[1]
                    hits = [("client_address", text, c, z, k) for c, z, k in found[2]]
        names = self.names
        seen: set[str] | None = None  # name subjects already counted (made on the first)
        for role in NAME_ROLES:
            value = attrs.get(role)
            if not value:
                continue
            value = value.strip()
            if role == "sender":
                value = value.rpartition("@")[2] if "@" in value else ""
            if not value or value == "unknown" or value.startswith("[") or "." not in value:
                continue
            try:
                named = names[value]
            except KeyError:
                named = names[value] = self._name(snapshot, value)
            if named is None:
                continue
            if seen is None:
                seen = {named[1]}
            elif named[1] in seen:
                continue
            else:
                seen.add(named[1])
            if named[0] or not named[2]:
                continue  # an allowlisted name clears only itself; an unlisted adds nothing
            hits.extend([(role, named[1], c, z, k) for c, z, k in named[2]])
        if not hits:
            return _DUNNO
        actions = self.settings.actions
        best = hits[0]
        if len(hits) > 1:
            strength = STRENGTH[actions[best[2]]]
            for hit in hits[1:]:
                if STRENGTH[actions[hit[2]]] > strength:
                    best, strength = hit, STRENGTH[actions[hit[2]]]
        verb = actions[best[2]]
        if self.settings.soft and verb != DUNNO:
            verb = PREPEND
        role, subject, cause, zone, kind = best
        return verb, action_text(verb, role, subject, zone, kind, cause, self.settings, self.zones)

    def _address(self, snapshot: Snapshot, address: str) -> Found | None:
        """Return what the zones answer for client *address* (None: not an address)."""
        if ":" not in address:
            try:
                packed = socket.inet_pton(socket.AF_INET, address)
            except (OSError, ValueError):
                packed = b""
            if packed:
                n = int.from_bytes(packed, "big")
                layer = v4_source(snapshot, n)
                if layer is not snapshot:  # a changed address: its value ids are the overlay's
                    fresh = _reduce(lookup_address(snapshot, IPv4Address(n), self.zones))
                    return fresh[0], address, fresh[2]
                key = (snapshot.v4_value(n), snapshot.wl_v4_value(n))
                found = self.values.get(key)
                if found is None:
                    found = _reduce(lookup_address(snapshot, IPv4Address(n), self.zones))
                    self.values[key] = found
                return found[0], address, found[2]  # inet_pton took it: canonical text
        try:
            network = ip_network(address)
        except ValueError:
            return None
        return _reduce(lookup(snapshot, network, self.zones))

    def _name(self, snapshot: Snapshot, value: str) -> Found | None:
        """Return what the domain zones answer for *value* (None: not a domain name)."""
        domain = _domain(value)
        if domain is None:
            return None
        return _reduce(lookup(snapshot, domain, self.zones))

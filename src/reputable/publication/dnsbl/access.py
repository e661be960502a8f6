"""Per-client access control: answer, refuse (REFUSED) or ignore (no reply), longest prefix wins."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv6Address, ip_address

from reputable.publication.settings import AccessRule


class Access:
    """Decides what to do with a query from a client address."""

    def __init__(self, rules: Sequence[AccessRule]) -> None:
        self._rules = sorted(rules, key=lambda r: r.network.prefixlen, reverse=True)
        #: True when every client is answered, so the hot path can skip the check.
        self.open = all(r.action == "answer" for r in rules)

    def action(self, host: str) -> str:
        """Return "answer", "refuse" or "ignore" for the client at *host*."""
        try:
            address = ip_address(host.split("%", 1)[0])
        except ValueError:
            return "ignore"
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        for rule in self._rules:
            if address.version == rule.network.version and address in rule.network:
                return rule.action
        return "refuse"

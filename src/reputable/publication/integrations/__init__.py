"""`reputable integrate TARGET`: ready configuration for the programs that enforce our lists.

Each target is one function in its own module, registered in :data:`TARGETS`; each takes
the :class:`~reputable.publication.integrations.context.Context` drawn from this server's
configuration (zones, return codes, DNS and policy-service addresses) and returns the text
to paste or include. All of them are pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from reputable.publication.integrations import filters, firewall, mta, resolvers
from reputable.publication.integrations.context import Context

TARGETS: Final[Mapping[str, Callable[[Context], str]]] = {
    "postfix": mta.postfix,
    "postscreen": mta.postscreen,
    "exim": mta.exim,
    "rspamd": filters.rspamd,
    "spamassassin": filters.spamassassin,
    "unbound": resolvers.unbound,
    "bind": resolvers.bind,
    "knot-resolver": resolvers.knot_resolver,
    "nftables": firewall.nftables,
    "crowdsec-bouncer": firewall.crowdsec_bouncer,
}

"""Firewalls: an nftables boot file with our empty table, and the CrowdSec bouncer (pure)."""

from __future__ import annotations

from reputable.publication.exports import nftables as nft_export
from reputable.publication.exports.ranges import ListedSpace
from reputable.publication.integrations.context import Context


def nftables(ctx: Context) -> str:
    """Return a boot-time nft file (our table, empty sets) and the [[sinks]] entry filling it."""
    empty = nft_export.render(ListedSpace(v4=(), v6=()), nft_export.NftOptions(comment="empty"))
    return f"""\
# reputable: /etc/nftables.d/reputable.nft, loaded at boot so the table exists before
# `reputable serve` first fills it. Add to reputable.toml:
#   [[sinks]]
#   kind = "nftables"
#   path = "{ctx.nft_file}"
#   command = ["nft", "-f", "{{path}}"]
# and serve replaces the whole table in one transaction after every snapshot.
{empty}"""


def crowdsec_bouncer(ctx: Context) -> str:
    """Return a crowdsec-firewall-bouncer.yaml polling our HTTP API's decision stream."""
    return f"""\
# reputable: /etc/crowdsec/bouncers/crowdsec-firewall-bouncer.yaml
# `reputable serve` answers the CrowdSec Local API decision stream on its HTTP API
# (docs/api.md), so the stock firewall bouncer drops our listed addresses. Make its key with
#   reputable token add fw-1 --scope bouncer
# The bouncer keeps its own nftables tables (crowdsec, crowdsec6); our [[sinks]] table
# (`reputable integrate nftables`) is another way to the same result: use one of them.
mode: nftables
pid_dir: /var/run/
update_frequency: 10s
daemonize: true
log_mode: file
log_dir: /var/log/
log_level: info
api_url: {ctx.http_url}
api_key: REPLACE_WITH_THE_BOUNCER_TOKEN
disable_ipv6: false
deny_action: DROP
deny_log: false
supported_decisions_types:
  - ban
nftables:
  ipv4:
    enabled: true
    set-only: false
    table: crowdsec
    chain: crowdsec-chain
    priority: -5
  ipv6:
    enabled: true
    set-only: false
    table: crowdsec6
    chain: crowdsec6-chain
    priority: -5
prometheus:
  enabled: false
  listen_addr: 127.0.0.1
  listen_port: 60601
"""

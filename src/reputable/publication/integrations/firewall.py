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
    """Return a crowdsec-firewall-bouncer.yaml in nftables mode beside our own table."""
    return """\
# reputable: /etc/crowdsec/bouncers/crowdsec-firewall-bouncer.yaml
# The bouncer keeps CrowdSec's decisions in its own nftables tables (crowdsec, crowdsec6);
# our listings live in table inet reputable (`reputable integrate nftables`), so both drop
# without touching each other. CrowdSec's decisions flow into reputable as evidence through
# a feed of kind "crowdsec" (docs/enforcement.md), not through this file.
mode: nftables
pid_dir: /var/run/
update_frequency: 10s
daemonize: true
log_mode: file
log_dir: /var/log/
log_level: info
api_url: http://127.0.0.1:8080/
api_key: REPLACE_WITH_cscli_bouncers_add_KEY
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

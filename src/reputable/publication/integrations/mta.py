"""Mail servers: Postfix (restrictions and policy service), postscreen, Exim ACLs (pure)."""

from __future__ import annotations

from reputable.core.cause import LISTING_CAUSES
from reputable.publication.integrations.context import REJECT_CAUSES, WEIGHT, Context, octet_list


def _rbl(zone: str, codes: str | None) -> str:
    return f"{zone}={codes}" if codes else zone


def postfix(ctx: Context) -> str:
    """Return main.cf lines: our policy service first, then the DNS lists as a second line."""
    ip_codes = octet_list(ctx.ip_zone.codes_for(REJECT_CAUSES))
    dom_codes = octet_list(ctx.domain_zone.codes_for(REJECT_CAUSES))
    policy = f"inet:{ctx.policy_host}:{ctx.policy_port}"
    bl, dbl = _rbl(ctx.ip_zone.name, ip_codes), _rbl(ctx.domain_zone.name, dom_codes)
    return f"""\
# reputable: Postfix main.cf (add to /etc/postfix/main.cf, then `postfix reload`).
# The policy service ({policy}, `reputable serve` with [policy_service]) decides from the
# same snapshot as our DNS and turns trap recipients into evidence at once. The DNS checks
# below it need a resolver on port 53 that forwards our zones to {ctx.dns_host}:{ctx.dns_port}
# (`reputable integrate unbound`). default_action=DUNNO: mail flows if the service is down.
smtpd_policy_service_default_action = DUNNO
smtpd_recipient_restrictions =
    permit_mynetworks,
    reject_unauth_destination,
    check_policy_service {{ {policy}, timeout=10s, default_action=DUNNO }},
    permit_dnswl_client {ctx.allow_zone.name}={ctx.allow_zone.allow_code},
    reject_rbl_client {bl},
    reject_rhsbl_client {dbl},
    reject_rhsbl_helo {dbl},
    reject_rhsbl_sender {dbl}
# The reply names the zone and our TXT (cause and lookup URL), e.g.
#   554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using {ctx.ip_zone.name}; ...
"""


def postscreen(ctx: Context) -> str:
    """Return main.cf lines for postscreen: a weight per return code, negative for the allowlist."""
    sites: list[str] = []
    for cause in LISTING_CAUSES:
        code = ctx.ip_zone.codes[cause]
        sites.append(f"{ctx.ip_zone.name}={code}*{WEIGHT[cause]}")
    sites.append(f"{ctx.allow_zone.name}={ctx.allow_zone.allow_code}*-3")
    joined = ",\n    ".join(sites)
    return f"""\
# reputable: postscreen (main.cf). In master.cf, `smtp inet n - y - 1 postscreen`,
# `smtpd pass - - y - - smtpd`, `dnsblog unix - - y - 0 dnsblog` and
# `tlsproxy unix - - y - 0 tlsproxy` replace the plain `smtp inet ... smtpd` line.
# A client scoring 3 or more is rejected; the allowlist zone takes 3 off.
postscreen_dnsbl_sites =
    {joined}
postscreen_dnsbl_threshold = 3
postscreen_dnsbl_allowlist_threshold = -1
postscreen_dnsbl_action = enforce
postscreen_greet_action = enforce
"""


def exim(ctx: Context) -> str:
    """Return Exim ACL statements for acl_check_rcpt (allowlist first, then the block zones)."""
    ip_codes = ",".join(str(c) for c in ctx.ip_zone.codes_for(REJECT_CAUSES))
    dom_codes = ",".join(str(c) for c in ctx.domain_zone.codes_for(REJECT_CAUSES))
    return f"""\
# reputable: Exim ACL statements; put them in acl_check_rcpt before the final accept.
# Exim asks the system resolver: forward our zones to {ctx.dns_host}:{ctx.dns_port}
# (`reputable integrate unbound`).
  accept  dnslists      = {ctx.allow_zone.name}={ctx.allow_zone.allow_code}
  deny    dnslists      = {ctx.ip_zone.name}={ip_codes}
          message       = $sender_host_address is listed in $dnslist_domain: $dnslist_text
  deny    dnslists      = {ctx.domain_zone.name}={dom_codes}/$sender_address_domain
          message       = $sender_address_domain is listed in $dnslist_domain: $dnslist_text
  deny    dnslists      = {ctx.domain_zone.name}={dom_codes}/$sender_helo_name
          message       = HELO $sender_helo_name is listed in $dnslist_domain: $dnslist_text
"""

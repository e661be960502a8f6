"""Content filters: rspamd's rbl module and SpamAssassin rules, one symbol per cause (pure)."""

from __future__ import annotations

from reputable.core.cause import LISTING_CAUSES
from reputable.publication.integrations.context import WEIGHT, Context

#: Filter score per unit of weight: a weight-3 cause alone reaches the usual reject score.
SCORE_PER_WEIGHT = 2.5


def _symbol(prefix: str, cause: str) -> str:
    return f"{prefix}_{cause.upper()}"


def rspamd(ctx: Context) -> str:
    """Return /etc/rspamd/local.d/rbl.conf: our three zones with a symbol per return code."""
    ip_codes = "\n".join(
        f'      {_symbol("REPUTABLE_BL", c.value)} = "{ctx.ip_zone.codes[c]}";'
        for c in LISTING_CAUSES
    )
    dom_codes = "\n".join(
        f'      {_symbol("REPUTABLE_DBL", c.value)} = "{ctx.domain_zone.codes[c]}";'
        for c in LISTING_CAUSES
    )
    scores = "\n".join(
        f"  {_symbol(p, c.value)} {{ weight = {WEIGHT[c] * SCORE_PER_WEIGHT}; }}"
        for p in ("REPUTABLE_BL", "REPUTABLE_DBL")
        for c in LISTING_CAUSES
    )
    return f"""\
# reputable: /etc/rspamd/local.d/rbl.conf (rspamd asks its resolver: forward our zones to
# {ctx.dns_host}:{ctx.dns_port}, see `reputable integrate unbound`).
rbls {{
  reputable_bl {{
    symbol = "REPUTABLE_BL";
    rbl = "{ctx.ip_zone.name}";
    ipv4 = true;
    ipv6 = true;
    from = true;
    received = false;
    returncodes {{
{ip_codes}
    }}
  }}
  reputable_dbl {{
    symbol = "REPUTABLE_DBL";
    rbl = "{ctx.domain_zone.name}";
    ignore_defaults = true;
    no_ip = true;
    helo = true;
    emails_domainonly = true;
    urls = true;
    returncodes {{
{dom_codes}
    }}
  }}
  reputable_wl {{
    symbol = "REPUTABLE_WL";
    rbl = "{ctx.allow_zone.name}";
    ipv4 = true;
    ipv6 = true;
    from = true;
    is_whitelist = true;
  }}
}}
# /etc/rspamd/local.d/rbl_group.conf
# symbols {{
{chr(10).join("# " + line for line in scores.splitlines())}
#   REPUTABLE_WL {{ weight = -5.0; }}
# }}
"""


def spamassassin(ctx: Context) -> str:
    """Return a SpamAssassin .cf: check_rbl on the last external relay, a rule per cause."""
    bl, dbl, wl = ctx.ip_zone.name, ctx.domain_zone.name, ctx.allow_zone.name
    lines = [
        "# reputable: /etc/spamassassin/reputable.cf (SpamAssassin asks its resolver: forward",
        f"# our zones to {ctx.dns_host}:{ctx.dns_port}, see `reputable integrate unbound`).",
        f"header   __RCVD_IN_REPUTABLE eval:check_rbl('reputable-lastexternal', '{bl}.')",
        "tflags   __RCVD_IN_REPUTABLE net",
    ]
    for cause in LISTING_CAUSES:
        rule = _symbol("RCVD_IN_REPUTABLE", cause.value)
        lines += [
            f"header   {rule} eval:check_rbl_sub('reputable-lastexternal',"
            f" '{ctx.ip_zone.codes[cause]}')",
            f"describe {rule} Relay listed in {bl} for {cause.value}",
            f"tflags   {rule} net",
            f"score    {rule} {WEIGHT[cause] * SCORE_PER_WEIGHT:.1f}",
        ]
    for cause in LISTING_CAUSES:
        rule = _symbol("URIBL_REPUTABLE", cause.value)
        lines += [
            f"urirhssub {rule} {dbl}. A {ctx.domain_zone.codes[cause]}",
            f"body     {rule} eval:check_uridnsbl('{rule}')",
            f"describe {rule} Contains a URL listed in {dbl} for {cause.value}",
            f"tflags   {rule} net domains_only",
            f"score    {rule} {WEIGHT[cause] * SCORE_PER_WEIGHT:.1f}",
        ]
    lines += [
        f"header   RCVD_IN_REPUTABLE_WL eval:check_rbl('reputable-wl-firsttrusted', '{wl}.')",
        f"describe RCVD_IN_REPUTABLE_WL Sender listed in {wl}",
        "tflags   RCVD_IN_REPUTABLE_WL net nice",
        "score    RCVD_IN_REPUTABLE_WL -5.0",
    ]
    return "\n".join(lines) + "\n"

"""Recursive resolvers: our zones forwarded to our DNS, and the RPZ loaded (pure)."""

from __future__ import annotations

from reputable.publication.integrations.context import Context


def _zones(ctx: Context) -> list[str]:
    return [ctx.ip_zone.name, ctx.domain_zone.name, ctx.allow_zone.name]


def unbound(ctx: Context) -> str:
    """Return an unbound.conf include: stub zones to our DNS and our RPZ as a policy zone."""
    stubs = "".join(
        f'stub-zone:\n    name: "{z}"\n    stub-addr: {ctx.dns_host}@{ctx.dns_port}\n'
        for z in _zones(ctx)
    )
    insecure = "".join(f'    domain-insecure: "{z}"\n' for z in _zones(ctx))
    nodefault = ""
    if any(z.endswith(".test") for z in _zones(ctx)):  # Unbound answers NXDOMAIN for test.
        nodefault = '    local-zone: "test." nodefault\n'
    return f"""\
# reputable: /etc/unbound/unbound.conf.d/reputable.conf
# Our zones are asked from `reputable serve` at {ctx.dns_host}:{ctx.dns_port} (so Postfix,
# Exim, rspamd and SpamAssassin can use them through this resolver on port 53), and the
# response policy zone that `reputable export rpz -o {ctx.rpz_file}` (or a [[sinks]] entry of
# kind "rpz") writes makes listed domains and addresses answer NXDOMAIN.
server:
    module-config: "respip validator iterator"
    do-not-query-localhost: no
{insecure}{nodefault}{stubs}rpz:
    name: "{ctx.rpz_origin}"
    zonefile: "{ctx.rpz_file}"
    rpz-log: yes
    rpz-log-name: "reputable"
"""


def bind(ctx: Context) -> str:
    """Return named.conf statements: response-policy, the RPZ zone, forward zones for ours."""
    forwards = "".join(
        f'zone "{z}" {{\n    type forward;\n    forward only;\n'
        f"    forwarders {{ {ctx.dns_host} port {ctx.dns_port}; }};\n}};\n"
        for z in _zones(ctx)
    )
    return f"""\
// reputable: named.conf statements (merge the options block into yours: BIND allows one).
options {{
    directory "/var/cache/bind";
    response-policy {{ zone "{ctx.rpz_origin}"; }};
}};
zone "{ctx.rpz_origin}" {{
    type primary;
    file "{ctx.rpz_file}";
    allow-query {{ none; }};
}};
{forwards}"""


def knot_resolver(ctx: Context) -> str:
    """Return kresd.conf Lua: the RPZ as a deny policy, our zones stubbed to our DNS."""
    names = ", ".join(f"'{z}'" for z in _zones(ctx))
    return f"""\
-- reputable: /etc/knot-resolver/kresd.conf additions, BEFORE your own FORWARD/STUB rules
-- (kresd applies the first policy rule that matches). Listed domains in the RPZ answer
-- NXDOMAIN; the file is watched for changes (needs the lua-cqueues package).
policy.add(policy.rpz(policy.DENY, '{ctx.rpz_file}', true))
-- our DNSBL zones go straight to `reputable serve`
policy.add(policy.suffix(policy.STUB({{'{ctx.dns_host}@{ctx.dns_port}'}}), policy.todnames({{{names}}})))
"""

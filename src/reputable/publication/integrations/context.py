"""What every integration snippet needs to know about this server (pure values)."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, Final

from reputable.core.cause import LISTING_CAUSES, Cause

#: Causes an MTA should reject outright; the others (rdns) only defer or tag.
REJECT_CAUSES: Final = frozenset(LISTING_CAUSES) - {Cause.RDNS}
#: postscreen / scoring weight per cause: 3 = enough alone, 1 = needs company.
WEIGHT: Final[dict[Cause, int]] = {
    Cause.SPAM: 3,
    Cause.HARVEST: 2,
    Cause.COMPROMISED: 3,
    Cause.OPEN_RELAY: 3,
    Cause.OPEN_PROXY: 3,
    Cause.MALWARE_HOST: 3,
    Cause.RDNS: 1,
    Cause.NETWORK: 2,
    Cause.MANUAL: 3,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Zone:
    """One of our zones: its name and return code per cause."""

    name: str
    codes: dict[Cause, IPv4Address]

    @property
    def allow_code(self) -> IPv4Address:
        """The one code an allowlist zone answers (that of ``manual``, as the snapshot does)."""
        return self.codes[Cause.MANUAL]

    def codes_for(self, causes: frozenset[Cause] | None = None) -> list[IPv4Address]:
        """Return the distinct codes of *causes* (all listing causes when None), sorted."""
        wanted = LISTING_CAUSES if causes is None else [c for c in LISTING_CAUSES if c in causes]
        return sorted({self.codes[c] for c in wanted})


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """This server's zones and addresses as an MTA, filter, resolver or firewall sees them."""

    ip_zone: Zone
    domain_zone: Zone
    allow_zone: Zone
    dns_host: str
    dns_port: int
    policy_host: str
    policy_port: int
    lookup_url: str
    rpz_origin: str
    rpz_file: Path
    nft_file: Path
    http_url: str = "http://127.0.0.1:8080/"  # the HTTP API (CrowdSec bouncers poll it)


def context_of(
    config: Any, *, rpz_file: Path | None = None, nft_file: Path | None = None
) -> Context:
    """Return the integration context of *config* (a reputable Config)."""
    host, port = config.dns.listen[0]
    policy = config.extra.get("policy_service", {})
    listen = str(policy.get("listen", "127.0.0.1:10040")) if isinstance(policy, dict) else ""
    p_host, _, p_port = listen.rpartition(":")
    return Context(
        ip_zone=Zone(name=config.ip_zone.name, codes=dict(config.ip_zone.codes)),
        domain_zone=Zone(name=config.domain_zone.name, codes=dict(config.domain_zone.codes)),
        allow_zone=Zone(name=config.allow_zone.name, codes=dict(config.allow_zone.codes)),
        dns_host="127.0.0.1" if host in ("0.0.0.0", "", "::") else host,
        dns_port=port,
        policy_host=p_host.strip("[]") or "127.0.0.1",
        policy_port=int(p_port) if p_port.isdigit() else 10040,
        lookup_url=config.ip_zone.lookup_url,
        rpz_origin="rpz.reputable.test",
        rpz_file=rpz_file or config.data_dir / "bl.rpz",
        nft_file=nft_file or config.data_dir / "bl.nft",
        http_url=_http_url(config.extra.get("http")),
    )


def _http_url(section: Any) -> str:
    """Return the base URL of ``http.listen`` (the default when unset or switched off)."""
    listen = str(section.get("listen", "")) if isinstance(section, dict) else ""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        return "http://127.0.0.1:8080/"
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def octet_list(codes: list[IPv4Address]) -> str | None:
    """Return *codes* in Postfix's ``127.0.0.[2;3;4]`` form, or None when they span /24s."""
    prefixes = {str(c).rsplit(".", 1)[0] for c in codes}
    if len(prefixes) != 1:
        return None
    if len(codes) == 1:
        return str(codes[0])
    last = ";".join(str(c).rsplit(".", 1)[1] for c in codes)
    return f"{prefixes.pop()}.[{last}]"

"""Running one probe end to end: parse the target, check allow-list and rate limits, probe, store."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final, Protocol

from reputable.core.address import IPAddress, IPNetwork, parse_address
from reputable.core.errors import ConfigError, InputError
from reputable.evidence.model import Evidence, EvidenceRecord
from reputable.evidence.sources.probes import proxy, rdns, relay
from reputable.evidence.sources.probes.guard import RateLimiter, in_networks, refusal
from reputable.evidence.sources.probes.model import REFUSED, ProbeResult, evidence_of
from reputable.evidence.sources.resolver import DnsResolver, Resolver
from reputable.evidence.sources.settings import SourceSettings

KINDS: Final = ("relay", "proxy", "rdns")
#: Evidence from these sources does not show that an address talked to the operator's servers.
_NOT_SEEN: Final = ("feed:", "probe:")


class ProbeStore(Protocol):
    """What probes need from the store."""

    def evidence_records(self, subjects: Sequence[str], limit: int = 200) -> list[EvidenceRecord]:
        """Return the newest evidence about *subjects*."""
        ...

    def add_evidence(self, items: Iterable[Evidence]) -> int:
        """Store evidence; return how many were new."""
        ...


def parse_target(kind: str, text: str) -> tuple[IPAddress, int | None]:
    """Return the address and port of a probe target (``IP``, ``IP:PORT``, ``[IPv6]:PORT``)."""
    raw = text.strip()
    port_text = ""
    if raw.startswith("["):
        host, _, rest = raw[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif raw.count(":") == 1:
        host, port_text = raw.split(":")
    else:
        host = raw
    try:
        address = parse_address(host)
    except InputError as exc:
        raise InputError(f"{exc}; probes take an IP address, never a host name") from exc
    if kind == "rdns":
        if port_text:
            raise InputError(f"probe rdns takes an address without port, got {text!r}")
        return address, None
    if not port_text:
        if kind == "proxy":
            raise InputError(f"probe proxy needs HOST:PORT, e.g. {host}:3128")
        return address, relay.DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InputError(f"bad port in {text!r}: use 1-65535")
    return address, int(port_text)


def _seen(store: ProbeStore, address: IPAddress) -> bool:
    records = store.evidence_records([str(address)], limit=50)
    return any(r.subject == str(address) and not r.source.startswith(_NOT_SEEN) for r in records)


def _last_probe(store: ProbeStore, kind: str, address: IPAddress) -> float | None:
    times = [
        r.observed_at.timestamp()
        for r in store.evidence_records([str(address)], limit=50)
        if r.source == f"probe:{kind}" and r.subject == str(address)
    ]
    return max(times, default=None)


def _refused(kind: str, address: IPAddress, port: int | None, why: str) -> ProbeResult:
    return ProbeResult(
        kind=kind,
        address=address,
        port=port,
        result=REFUSED,
        transcript=(f"-- {REFUSED}: {why}",),
        reason=why,
    )


async def run_probe(
    kind: str,
    target: str,
    *,
    settings: SourceSettings,
    store: ProbeStore,
    now: datetime,
    allow: Sequence[IPNetwork] = (),
    limiter: RateLimiter | None = None,
    resolver: Resolver | None = None,
) -> ProbeResult:
    """Probe *target* with probe *kind* if allowed, store the evidence, and return the result."""
    if kind not in KINDS:
        raise InputError(f"unknown probe {kind!r}; use one of {', '.join(KINDS)}")
    address, port = parse_target(kind, target)
    conf = settings.probes
    networks = (*conf.allow, *allow)
    seen = conf.allow_seen and not in_networks(address, networks) and _seen(store, address)
    why = refusal(address, networks, seen=seen)
    if why is None:
        gate = limiter or RateLimiter(conf.per_target, conf.per_minute)
        key = f"{kind} {address}"
        why = gate.refusal(key, now.timestamp(), last_probe=_last_probe(store, kind, address))
    if why is not None:
        return _refused(kind, address, port, why)
    if kind == "relay":
        result = await relay.probe_relay(
            address,
            port or relay.DEFAULT_PORT,
            helo=conf.helo,
            sender=conf.relay_from,
            recipient=conf.relay_to,
            timeout=conf.timeout,
        )
    elif kind == "proxy":
        if conf.proxy_canary is None:
            raise ConfigError(
                'probe proxy needs [probes] proxy_canary = "IP:PORT", a host and port you run'
            )
        result = await proxy.probe_proxy(
            address, port or 0, canary=conf.proxy_canary, timeout=conf.timeout
        )
    else:
        result = await rdns.probe_rdns(address, resolver or DnsResolver(settings.resolver))
    found = evidence_of(result, now)
    if found is not None:
        store.add_evidence([found])
    return result

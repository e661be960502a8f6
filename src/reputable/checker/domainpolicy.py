"""The rest of a mail domain's picture: MTA-STS, TLS-RPT, BIMI record syntax, DNSSEC status.

- MTA-STS (RFC 8461): the ``_mta-sts`` TXT record, then the policy file fetched over HTTPS from
  ``mta-sts.<domain>``. The HTTPS client never resolves through the system: the policy host's
  address comes from the configured nameserver (or, in tests, an explicit address map), the
  certificate is checked against the system CAs or a given CA file, for the policy host name.
- TLS-RPT (RFC 8460): the ``_smtp._tls`` TXT record and its report addresses.
- BIMI (the BIMI group's draft): ``default._bimi`` TXT syntax; logos show only with DMARC at
  quarantine or reject.
- DNSSEC: whether the configured resolver marks the domain's answers as validated (AD bit).

All findings use cause ``mail_auth``; none of these records is required, so missing ones are
``info``, broken ones ``warning`` or ``error``.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

import httpx

from reputable.checker.mailauth import lookup_failure, unchecked
from reputable.checker.model import MAIL_AUTH, Finding, Severity
from reputable.core.dnsclient import Lookup, Nameserver, Outcome, Resolver

POLICY_PATH: Final = "/.well-known/mta-sts.txt"
MAX_POLICY: Final = 64 * 1024  # RFC 8461 §3.3: senders may limit the size; real ones are tiny
MAX_AGE: Final = 31_557_600  # RFC 8461 §3.2: at most one year
_STS_ID: Final = re.compile(r"^[A-Za-z0-9]{1,32}$")


def _f(check: str, severity: Severity, message: str, remediation: str = "") -> Finding:
    return Finding(
        check=check, cause=MAIL_AUTH, severity=severity, message=message, remediation=remediation
    )


def tags(record: str) -> dict[str, str]:
    """Return the ``k=v; k=v`` tags of a TXT record, keys lower-cased, values stripped."""
    out: dict[str, str] = {}
    for part in record.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            out.setdefault(key.strip().lower(), value.strip())
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """A parsed MTA-STS policy file (RFC 8461 §3.2)."""

    mode: str
    mx: tuple[str, ...]
    max_age: int


def parse_policy(text: str) -> tuple[Policy | None, str]:
    """Return the policy in *text*, or None and what is wrong with it."""
    fields: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            return None, f"line {line[:40]!r} is not 'key: value'"
        fields.setdefault(key.strip().lower(), []).append(value.strip())
    if fields.get("version") != ["STSv1"]:
        return None, "version must be STSv1"
    mode = (fields.get("mode") or [""])[0]
    if mode not in ("enforce", "testing", "none"):
        return None, f"mode must be enforce, testing or none, got {mode!r}"
    age = (fields.get("max_age") or [""])[0]
    if not age.isdigit() or int(age) > MAX_AGE:
        return None, f"max_age must be a number of seconds up to {MAX_AGE}, got {age!r}"
    mx = tuple(m.lower().rstrip(".") for m in fields.get("mx", []))
    if mode != "none" and not mx:
        return None, "no mx: line (every MX host must be listed)"
    return Policy(mode=mode, mx=mx, max_age=int(age)), ""


def mx_matches(host: str, pattern: str) -> bool:
    """True when MX *host* matches a policy ``mx`` pattern (``*.`` covers one label, §4.1)."""
    host = host.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return host == pattern


class PolicyFetchError(Exception):
    """The policy file could not be fetched (connection, TLS, HTTP status, size)."""


async def fetch_policy(
    host: str, address: str, port: int, context: ssl.SSLContext, timeout: float
) -> str:
    """Return the policy file served by *host* at *address*:*port* over HTTPS (never DNS).

    The connection goes to *address*; TLS uses *host* for SNI and the certificate check, and
    HTTP sends it as Host, so the system resolver is never asked (RFC 8461 §3.3: no redirects).
    """
    netloc = f"[{address}]" if ":" in address else address
    url = f"https://{netloc}:{port}{POLICY_PATH}"
    try:
        async with (
            httpx.AsyncClient(verify=context, timeout=timeout, follow_redirects=False) as client,
            client.stream(
                "GET", url, headers={"Host": host}, extensions={"sni_hostname": host}
            ) as response,
        ):
            if response.status_code != 200:
                raise PolicyFetchError(f"HTTP {response.status_code} (RFC 8461 needs 200)")
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_POLICY:
                    raise PolicyFetchError(f"larger than {MAX_POLICY} bytes")
    except httpx.HTTPError as exc:
        raise PolicyFetchError(str(exc) or type(exc).__name__) from exc
    return body.decode("utf-8", "replace")


def _policy_findings(domain: str, policy: Policy, mx_hosts: Sequence[str]) -> list[Finding]:
    findings = []
    uncovered = [h for h in mx_hosts if not any(mx_matches(h, p) for p in policy.mx)]
    if uncovered and policy.mode != "none":
        findings.append(
            _f(
                "mta-sts",
                Severity.ERROR,
                f"MTA-STS policy of {domain} does not cover MX {', '.join(uncovered)}",
                "Add an mx: line for each MX host to the policy file, then change the id= of"
                f" the _mta-sts.{domain} TXT record so senders fetch it again.",
            )
        )
    if policy.mode == "enforce":
        findings.append(
            _f(
                "mta-sts",
                Severity.OK,
                f"MTA-STS of {domain}: mode enforce, mx {', '.join(policy.mx)}",
            )
        )
    else:
        findings.append(
            _f(
                "mta-sts",
                Severity.INFO,
                f"MTA-STS of {domain}: mode {policy.mode} (senders report, but do not enforce)",
                "Move to mode: enforce once TLS-RPT reports show every sender reaches you over TLS.",
            )
        )
    return findings


async def mta_sts(
    resolver: Resolver,
    domain: str,
    mx_hosts: Sequence[str],
    *,
    context: ssl.SSLContext,
    addresses: Mapping[str, tuple[str, int]] | None = None,
    timeout: float = 10.0,
) -> list[Finding]:
    """Return the MTA-STS findings of *domain*: TXT record, policy file, MX coverage.

    *addresses* maps the policy host to (address, port) (tests); otherwise its A/AAAA record
    from the configured nameserver is used, on port 443.
    """
    lookup = await resolver.lookup(f"_mta-sts.{domain}", "TXT")
    if lookup_failure(lookup):
        return [unchecked("mta-sts", f"MTA-STS of {domain}", lookup_failure(lookup))]
    records = [r for r in lookup.records if r.startswith("v=STSv1")]
    if not records:
        return [
            _f(
                "mta-sts",
                Severity.INFO,
                f"{domain} publishes no MTA-STS policy",
                "Optional: MTA-STS (RFC 8461) makes senders insist on TLS to your MX hosts.",
            )
        ]
    if len(records) > 1 or not _STS_ID.match(tags(records[0]).get("id", "")):
        return [
            _f(
                "mta-sts",
                Severity.WARNING,
                f"MTA-STS TXT record of {domain} is malformed: {records[0]!r}",
                f'Publish exactly one _mta-sts.{domain} TXT "v=STSv1; id=<1-32 letters or'
                ' digits>" (RFC 8461 §3.1).',
            )
        ]
    host = f"mta-sts.{domain}"
    try:
        address, port = await _policy_address(resolver, host, addresses)
        text = await fetch_policy(host, address, port, context, timeout)
    except PolicyFetchError as exc:
        return [
            _f(
                "mta-sts",
                Severity.ERROR,
                f"MTA-STS of {domain}: the TXT record is published but the policy at"
                f" https://{host}{POLICY_PATH} cannot be fetched: {exc}",
                f"Serve the policy file at https://{host}{POLICY_PATH} with a certificate"
                f" valid for {host}, or remove the TXT record.",
            )
        ]
    policy, why = parse_policy(text)
    if policy is None:
        return [
            _f(
                "mta-sts",
                Severity.ERROR,
                f"MTA-STS policy of {domain} is invalid: {why}",
                "Write the policy as version: STSv1, mode: enforce|testing|none, one mx: line"
                " per MX host, max_age: seconds (RFC 8461 §3.2).",
            )
        ]
    return _policy_findings(domain, policy, mx_hosts)


async def _policy_address(
    resolver: Resolver, host: str, addresses: Mapping[str, tuple[str, int]] | None
) -> tuple[str, int]:
    if addresses is not None:
        if host not in addresses:
            raise PolicyFetchError(f"no address given for {host}")
        return addresses[host]
    found = await asyncio.gather(resolver.lookup(host, "A"), resolver.lookup(host, "AAAA"))
    for lookup in found:
        if lookup.outcome is Outcome.ANSWER and lookup.records:
            return lookup.records[0], 443
    raise PolicyFetchError(f"{host} has no A/AAAA record at the configured nameserver")


async def tls_rpt(resolver: Resolver, domain: str) -> list[Finding]:
    """Return the TLS-RPT finding of *domain* (RFC 8460 §3)."""
    lookup = await resolver.lookup(f"_smtp._tls.{domain}", "TXT")
    if lookup_failure(lookup):
        return [unchecked("tls-rpt", f"TLS-RPT of {domain}", lookup_failure(lookup))]
    records = [r for r in lookup.records if r.startswith("v=TLSRPTv1")]
    if not records:
        return [
            _f(
                "tls-rpt",
                Severity.INFO,
                f"{domain} asks for no TLS reports (no _smtp._tls TXT record)",
                f'Optional: publish _smtp._tls.{domain} TXT "v=TLSRPTv1; rua=mailto:tls@{domain}"'
                " to learn when senders fail to reach you over TLS.",
            )
        ]
    rua = [u.strip() for u in tags(records[0]).get("rua", "").split(",") if u.strip()]
    bad = [u for u in rua if not u.startswith(("mailto:", "https://"))]
    if len(records) > 1 or not rua or bad:
        return [
            _f(
                "tls-rpt",
                Severity.WARNING,
                f"TLS-RPT record of {domain} is malformed: {records[0]!r}",
                "Publish one record: v=TLSRPTv1; rua=mailto:... or https://... (RFC 8460 §3).",
            )
        ]
    return [_f("tls-rpt", Severity.OK, f"TLS reports of {domain} go to {', '.join(rua)}")]


async def bimi(resolver: Resolver, domain: str) -> list[Finding]:
    """Return the BIMI record finding of *domain* (syntax only: the logo is not fetched)."""
    lookup = await resolver.lookup(f"default._bimi.{domain}", "TXT")
    if lookup_failure(lookup):
        return [unchecked("bimi", f"BIMI of {domain}", lookup_failure(lookup))]
    records = [r for r in lookup.records if r.lower().startswith("v=bimi1")]
    if not records:
        return [_f("bimi", Severity.INFO, f"{domain} publishes no BIMI record (optional)")]
    found = tags(records[0])
    problems = []
    if not records[0].startswith("v=BIMI1"):
        problems.append("it must start with v=BIMI1")
    logo, authority = found.get("l", ""), found.get("a", "")
    if logo and not (logo.startswith("https://") and logo.lower().endswith(".svg")):
        problems.append(f"l= must be an https URL of an SVG file, got {logo!r}")
    if authority and not authority.startswith("https://"):
        problems.append(f"a= must be an https URL of the mark certificate, got {authority!r}")
    if "l" not in found:
        problems.append("no l= tag")
    if problems or len(records) > 1:
        return [
            _f(
                "bimi",
                Severity.WARNING,
                f"BIMI record of {domain} is malformed: {'; '.join(problems) or 'several records'}",
                f'Publish one default._bimi.{domain} TXT "v=BIMI1; l=https://.../logo.svg;'
                ' a=https://.../vmc.pem" (mailbox providers show the logo only with DMARC at'
                " p=quarantine or p=reject).",
            )
        ]
    return [_f("bimi", Severity.OK, f"BIMI of {domain}: logo {logo or '(declined)'}")]


@runtime_checkable
class Validating(Protocol):
    """A resolver that can report the AD bit (DnsClient.authenticated)."""

    async def authenticated(
        self, name: str, rdtype: str, server: Nameserver | None = None
    ) -> tuple[Lookup, bool]:
        """Return the lookup and whether the answer was marked DNSSEC-validated."""
        ...


async def dnssec(resolver: Resolver, domain: str) -> list[Finding]:
    """Return whether the configured resolver validated *domain*'s answers (its SOA, AD bit)."""
    if not isinstance(resolver, Validating):
        return []
    lookup, validated = await resolver.authenticated(domain, "SOA")
    if lookup_failure(lookup):
        return [unchecked("dnssec", f"DNSSEC of {domain}", lookup_failure(lookup))]
    if validated:
        return [
            _f("dnssec", Severity.OK, f"answers for {domain} are DNSSEC-validated (AD bit set)")
        ]
    return [
        _f(
            "dnssec",
            Severity.INFO,
            f"answers for {domain} are not marked DNSSEC-validated (AD bit clear): the domain"
            " is unsigned, or --nameserver does not validate",
            "Optional: sign the zone (and publish its DS at the registrar); DANE for SMTP"
            " (RFC 7672) needs it. Check with a validating resolver to tell the two apart.",
        )
    ]


async def domain_policies(
    resolver: Resolver,
    domain: str,
    mx_hosts: Sequence[str],
    *,
    context: ssl.SSLContext | None = None,
    addresses: Mapping[str, tuple[str, int]] | None = None,
) -> list[Finding]:
    """Return the MTA-STS, TLS-RPT, BIMI and DNSSEC findings of *domain*, checked at once."""
    parts = await asyncio.gather(
        mta_sts(
            resolver,
            domain,
            mx_hosts,
            context=context or ssl.create_default_context(),
            addresses=addresses,
        ),
        tls_rpt(resolver, domain),
        bimi(resolver, domain),
        dnssec(resolver, domain),
    )
    return [finding for part in parts for finding in part]

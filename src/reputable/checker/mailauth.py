"""SPF, DMARC, DKIM and MX diagnostics of a sending domain (cause ``mail_auth``).

SPF syntax and lookup counting and DMARC parsing come from checkdmarc, SPF evaluation for the
sending IP from pyspf, DKIM key parsing from dkimpy; all of them ask only the configured
nameserver (see libdns.py). They block, so the callers run them in a worker thread.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any, Final

import checkdmarc.dmarc  # type: ignore[import-untyped]  # the library ships no type hints
import checkdmarc.spf  # type: ignore[import-untyped]  # the library ships no type hints
import dkim.crypto  # type: ignore[import-untyped]  # the library ships no type hints
import dkim.util  # type: ignore[import-untyped]  # the library ships no type hints
import dns.resolver
import spf  # type: ignore[import-untyped]  # the library ships no type hints

from reputable.checker import libdns
from reputable.checker.model import MAIL_AUTH, Finding, Severity
from reputable.checker.transport import Outcome, Resolver
from reputable.core.address import IPAddress

#: Selectors tried when the user names none: the defaults of common providers and MTAs.
COMMON_SELECTORS: Final = (
    "default", "dkim", "mail", "selector1", "selector2", "google", "k1", "k2", "s1", "s2",
    "smtp", "mx", "key1", "sig1", "dkim1", "mandrill", "everlytickey1", "mxvault",
)  # fmt: skip


def _f(check: str, severity: Severity, message: str, remediation: str = "") -> Finding:
    return Finding(
        check=check, cause=MAIL_AUTH, severity=severity, message=message, remediation=remediation
    )


def spf_record_findings(domain: str, result: Mapping[str, Any]) -> list[Finding]:
    """Return findings from checkdmarc's SPF result: presence, syntax, lookups, the ``all`` rule."""
    if not result.get("valid", False):
        error = str(result.get("error", "invalid SPF record"))
        if "not exist" in error or "does not have" in error or "No SPF" in error:
            return [
                _f(
                    "spf",
                    Severity.ERROR,
                    f"{domain} publishes no SPF record",
                    'Publish one TXT record like "v=spf1 mx ip4:<your server> -all" listing'
                    " every server that sends for the domain.",
                )
            ]
        return [
            _f(
                "spf",
                Severity.ERROR,
                f"SPF of {domain} is broken: {error}",
                "Fix the record: exactly one v=spf1 TXT record, valid mechanisms, at most 10"
                " DNS-querying terms (include, a, mx, ptr, exists, redirect) after flattening.",
            )
        ]
    lookups = int(result.get("dns_lookups", 0))
    findings = [
        _f(
            "spf",
            Severity.OK,
            f"SPF of {domain}: {result.get('record', '')} ({lookups} of 10 DNS lookups)",
        )
    ]
    if lookups >= 9:
        findings.append(
            _f(
                "spf",
                Severity.WARNING,
                f"SPF of {domain} uses {lookups} of the 10 allowed DNS lookups",
                "Flatten or drop includes before one more"
                " provider pushes it over the limit (RFC 7208 §4.6.4).",
            )
        )
    rule = str(result.get("parsed", {}).get("all", "")).lower()
    if rule == "pass":
        findings.append(
            _f(
                "spf",
                Severity.ERROR,
                f"SPF of {domain} ends in +all: it authorises every host on the internet",
                "Replace +all with -all (or ~all while testing) after listing your real senders.",
            )
        )
    elif rule == "neutral":
        findings.append(
            _f(
                "spf",
                Severity.WARNING,
                f"SPF of {domain} ends in ?all, which protects nothing",
                "End the record with -all or ~all.",
            )
        )
    findings.extend(
        _f("spf", Severity.WARNING, f"SPF of {domain}: {w}") for w in result.get("warnings", ())
    )
    return findings


def spf_eval_finding(domain: str, address: IPAddress, result: str, why: str) -> Finding:
    """Return the finding for pyspf's verdict on mail from *address* for *domain*."""
    if result == "pass":
        return _f("spf", Severity.OK, f"SPF of {domain} authorises {address}")
    if result in ("fail", "softfail"):
        return _f(
            "spf",
            Severity.ERROR,
            f"SPF of {domain} does not authorise {address} ({result}: {why})",
            f"Add ip4:/ip6:{address} (or the include: of the service"
            " that sends for you) to the SPF record.",
        )
    if result in ("temperror", "permerror"):
        return _f(
            "spf",
            Severity.WARNING,
            f"SPF check of {address} for {domain}: {result} ({why})",
            "Fix the SPF record so receivers can evaluate it.",
        )
    return _f(
        "spf",
        Severity.WARNING,
        f"SPF of {domain} says {result} for {address}",
        f"List {address} explicitly and end the record with -all.",
    )


def dmarc_findings(domain: str, result: Mapping[str, Any]) -> list[Finding]:
    """Return findings from checkdmarc's DMARC result: presence, policy, alignment, reports."""
    if not result.get("valid", False):
        error = str(result.get("error", ""))
        return [
            _f(
                "dmarc",
                Severity.WARNING,
                f"{domain} has no valid DMARC record: {error}",
                'Publish _dmarc.<domain> TXT "v=DMARC1; p=none; rua=mailto:dmarc@<domain>",'
                " read the reports, then move to p=quarantine or p=reject.",
            )
        ]
    tags = result.get("tags", {})

    def tag(name: str) -> Any:
        return tags.get(name, {}).get("value")

    policy = str(tag("p") or "none")
    findings = [
        _f(
            "dmarc",
            Severity.OK if policy != "none" else Severity.WARNING,
            f"DMARC of {domain}: policy p={policy}",
            ""
            if policy != "none"
            else "p=none only monitors: move to p=quarantine or"
            " p=reject once reports show your own mail passes.",
        )
    ]
    align = f"adkim={tag('adkim') or 'r'}, aspf={tag('aspf') or 'r'}"
    findings.append(_f("dmarc", Severity.INFO, f"DMARC alignment of {domain}: {align}"))
    rua = tag("rua") or []
    addresses = [str(u.get("address", u)) if isinstance(u, Mapping) else str(u) for u in rua]
    if addresses:
        findings.append(
            _f("dmarc", Severity.OK, f"DMARC reports of {domain} go to {', '.join(addresses)}")
        )
    else:
        findings.append(
            _f(
                "dmarc",
                Severity.INFO,
                f"DMARC of {domain} asks for no aggregate reports (no rua=)",
                "Add rua=mailto:... to learn who sends as you.",
            )
        )
    findings.extend(
        _f("dmarc", Severity.WARNING, f"DMARC of {domain}: {w}") for w in result.get("warnings", ())
    )
    return findings


def dkim_key_finding(domain: str, selector: str, record: str) -> Finding:
    """Return the finding for the DKIM key record of *selector* (parsed with dkimpy)."""
    where = f"{selector}._domainkey.{domain}"
    try:
        tags = dkim.util.parse_tag_value(record.encode())
    except dkim.util.InvalidTagValueList as exc:
        return _f(
            "dkim",
            Severity.ERROR,
            f"DKIM record {where} is malformed: {exc}",
            "Re-publish the record exactly as your signing software generated it.",
        )
    key = tags.get(b"p", b"")
    if not key:
        return _f(
            "dkim",
            Severity.WARNING,
            f"DKIM key {where} is revoked (empty p=)",
            "Remove the selector from signing or publish a new key.",
        )
    if tags.get(b"k", b"rsa") == b"ed25519":
        return _f("dkim", Severity.OK, f"DKIM key {where}: ed25519")
    try:
        parsed = dkim.crypto.parse_public_key(base64.b64decode(key))
    except (binascii.Error, dkim.crypto.UnparsableKeyError) as exc:
        return _f(
            "dkim",
            Severity.ERROR,
            f"DKIM key {where} cannot be parsed: {exc}",
            "Re-publish the public key; long keys must be split into several strings"
            " of one TXT record, not several records.",
        )
    bits = int(parsed["modulus"]).bit_length()
    if bits < 1024:
        return _f(
            "dkim",
            Severity.ERROR,
            f"DKIM key {where} is RSA-{bits}, too short",
            "Generate a 2048-bit key; receivers ignore signatures with keys under 1024 bits.",
        )
    return _f("dkim", Severity.OK, f"DKIM key {where}: RSA-{bits}")


async def dkim_findings(
    resolver: Resolver, domain: str, selectors: Sequence[str] = ()
) -> list[Finding]:
    """Look up DKIM keys of the given selectors (or the common ones) and assess them."""
    tried = tuple(selectors) or COMMON_SELECTORS
    findings: list[Finding] = []
    for selector in tried:
        lookup = await resolver.lookup(f"{selector}._domainkey.{domain}", "TXT")
        if lookup.outcome is Outcome.ANSWER:
            findings.extend(
                dkim_key_finding(domain, selector, r) for r in lookup.records if "p=" in r
            )
        elif selectors:
            findings.append(
                _f(
                    "dkim",
                    Severity.ERROR,
                    f"no DKIM key at {selector}._domainkey.{domain}",
                    "Publish the public key of"
                    " this selector, or sign with a selector that is published.",
                )
            )
    if not findings:
        findings.append(
            _f(
                "dkim",
                Severity.INFO,
                f"no DKIM key found for {domain} under {len(tried)} common selectors",
                "Pass --dkim-selector NAME (see"
                " the s= tag of a DKIM-Signature header of your mail).",
            )
        )
    return findings


async def mx_findings(resolver: Resolver, domain: str) -> tuple[list[Finding], list[str]]:
    """Return the MX findings of *domain* and its MX host names, most preferred first."""
    lookup = await resolver.lookup(domain, "MX")
    if lookup.outcome is not Outcome.ANSWER:
        return [
            _f(
                "mx",
                Severity.WARNING,
                f"{domain} has no MX record ({lookup.outcome})",
                "Publish an MX record if the domain receives mail (bounces and DMARC reports"
                ' need it); publish "MX 0 ." (RFC 7505) if it never does.',
            )
        ], []
    pairs = sorted((int(p), h.rstrip(".").lower()) for p, h in (r.split() for r in lookup.records))
    hosts = [h for _, h in pairs if h]
    if not hosts:
        return [_f("mx", Severity.INFO, f"{domain} publishes a null MX: it receives no mail")], []
    return [_f("mx", Severity.OK, f"MX of {domain}: {', '.join(hosts)}")], hosts


def spf_dmarc(
    domain: str, address: IPAddress | None, helo: str, resolver: dns.resolver.Resolver
) -> list[Finding]:
    """Run checkdmarc's SPF and DMARC checks and pyspf's evaluation (blocking: use a thread)."""
    findings = spf_record_findings(domain, checkdmarc.spf.check_spf(domain, resolver=resolver))
    if address is not None and findings[0].severity is Severity.OK:
        with libdns.bound(resolver):
            result, why = spf.check2(
                i=str(address),
                s=f"postmaster@{domain}",
                h=helo or domain,
                timeout=resolver.lifetime,
            )
        findings.append(spf_eval_finding(domain, address, result, why))
    findings.extend(dmarc_findings(domain, checkdmarc.dmarc.check_dmarc(domain, resolver=resolver)))
    return findings

"""SPF, DMARC, DKIM and MX diagnostics of a sending domain (cause ``mail_auth``).

SPF syntax and lookup counting and DMARC parsing come from checkdmarc, SPF evaluation for the
sending IP from pyspf, DKIM key parsing from dkimpy (the ``checker`` extra, imported when used:
see extra.py); all of them ask only the configured nameserver (see libdns.py). They block, so :func:`mail_auth` runs them in worker threads, next
to the DKIM lookups, all at once.

A nameserver that gives no usable answer (timeout, SERVFAIL, REFUSED) says nothing about the
records: such a check becomes an *inconclusive* finding ("could not check SPF ...") with advice
about the resolver, never "missing" or "broken". Before handing a domain to checkdmarc, its
record is looked up once on the event loop, so a silent domain costs one timeout and retry.
checkdmarc reports DNS failures only as text (dnspython's messages: "The resolution lifetime
expired ...", "All nameservers failed to answer ... answered SERVFAIL|REFUSED"), pyspf as the
result ``temperror`` (RFC 7208 §2.6.6); :func:`dns_failure` maps both.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import dns.resolver

from reputable.checker import libdns
from reputable.checker.model import MAIL_AUTH, Finding, Severity
from reputable.core.address import IPAddress
from reputable.core.dnsclient import Lookup, Outcome, Resolver

#: Selectors tried when the user names none: the defaults of common providers and MTAs.
COMMON_SELECTORS: Final = (
    "default", "dkim", "mail", "selector1", "selector2", "google", "k1", "k2", "s1", "s2",
    "smtp", "mx", "key1", "sig1", "dkim1", "mandrill", "everlytickey1", "mxvault",
)  # fmt: skip


#: What to do when the nameserver gave no usable answer: the record itself is unknown.
RESOLVER_FIX: Final = (
    "Nothing is known to be wrong with the record: the nameserver did not answer usefully."
    " Check that --nameserver (or nameserver in [checker]) is a working recursive resolver that"
    " can reach the domain's authoritative servers (dig TXT <domain> @<resolver>), then check"
    " again; if only this domain fails, its own nameservers are down or lame."
)
_ANSWERED: Final = (Outcome.ANSWER, Outcome.NXDOMAIN, Outcome.NODATA)


def _f(check: str, severity: Severity, message: str, remediation: str = "") -> Finding:
    return Finding(
        check=check, cause=MAIL_AUTH, severity=severity, message=message, remediation=remediation
    )


def unchecked(check: str, what: str, reason: str) -> Finding:
    """Return the inconclusive finding for a check the nameserver did not let us make."""
    return Finding(
        check=check,
        cause=MAIL_AUTH,
        severity=Severity.WARNING,
        message=f"could not check {what}: {reason}",
        remediation=RESOLVER_FIX,
        inconclusive=True,
    )


def lookup_failure(lookup: Lookup) -> str:
    """Return why *lookup* gave no usable answer, or "" when it did (records, NXDOMAIN, NODATA)."""
    if lookup.outcome in _ANSWERED:
        return ""
    if lookup.outcome is Outcome.TIMEOUT:
        return "no answer from the nameserver (timeout)"
    if lookup.outcome is Outcome.SERVFAIL:
        return "the nameserver failed to resolve it (SERVFAIL)"
    if lookup.outcome is Outcome.REFUSED:
        return "the nameserver refused the query (REFUSED)"
    return f"no usable answer from the nameserver ({lookup.detail or lookup.outcome})"


def dns_failure(error: str) -> str:
    """Return why a library's DNS error text means "no answer", or "" for a real record problem.

    The texts are dnspython's, passed on by checkdmarc (Timeout, NoNameservers) and pyspf.
    """
    low = error.lower()
    if "lifetime expired" in low or "timed out" in low or "timeout" in low:
        return "no answer from the nameserver (timeout)"
    if "all nameservers failed" in low or "no nameservers" in low:
        if "refused" in low:
            return "the nameserver refused the query (REFUSED)"
        return "the nameserver failed to resolve it (SERVFAIL)"
    return ""


#: Remediation of checkdmarc's warnings, by the words they contain (first match wins).
_WARNING_FIXES: Final = (
    (r"does not have any (A/AAAA|MX) records|does not exist",
     "Remove the term or publish the missing records: a term that resolves to nothing is a void"
     " lookup, and more than 2 make the whole SPF record fail (RFC 7208 §4.6.4)."),
    (r"duplicate include", "Remove the repeated include: each one costs one of the 10 lookups."),
    (r"ptr mechanism",
     "Replace ptr with ip4:/ip6: or a: terms; ptr is slow and deprecated (RFC 7208 §5.5)."),
    (r"bytes",
     "Shorten the record: replace long ip4: lists with an include: of your own subdomain,"
     " and keep each TXT string under 255 bytes."),
    (r"all mechanism",
     "Keep exactly one all mechanism, as the last term (e.g. -all); remove what follows it."),
    (r"sender id|spf2\.0", "Delete the spf2.0/... record: only the v=spf1 record is used."),
    (r"missing p tag", "Add p=none (monitoring) or p=quarantine/p=reject right after v=DMARC1."),
    (r"\bsp tag value of none",
     "Set sp=quarantine or sp=reject (or drop sp= to inherit p=) once subdomains pass DMARC."),
    (r"p tag value of none|\bp=none",
     "Move to p=quarantine, then p=reject, once the aggregate reports show your mail passes."),
    (r"rua tag",
     "Add rua=mailto:dmarc-reports@<domain> to receive aggregate reports."),
    (r"email address|uses the",
     "Reports to another domain need that domain's consent: publish"
     " <your domain>._report._dmarc.<their domain> TXT \"v=DMARC1\" there (RFC 7489 §7.1)."),
    (r"unknown .*tag|support for the .* tag was removed|modifier",
     "Remove the tag or modifier the warning names; receivers ignore it."),
    (r"whitespace", "Remove the leading whitespace: the record must start with v=DMARC1."),
    (r"p tag does not immediately follow|p tag",
     "Write the record as v=DMARC1; p=...; followed by the other tags."),
    (r"must be located at|root of",
     "Publish the DMARC record at _dmarc.<domain> and delete the misplaced one."),
    (r"organizational domain", "Publish the DMARC record at the organizational domain."),
)  # fmt: skip


def warning_fix(check: str, warning: str) -> str:
    """Return what to do about a checkdmarc *warning* of an SPF or DMARC record."""
    for pattern, fix in _WARNING_FIXES:
        if re.search(pattern, warning, re.IGNORECASE):
            return fix
    record = "SPF TXT record" if check == "spf" else "_dmarc TXT record"
    return f"Edit the {record} as the warning says, then run the check again."


def spf_error_fix(error: str) -> str:
    """Return what to do about a fatal SPF error reported by checkdmarc."""
    low = error.lower()
    if "multiple spf" in low:
        return (
            "Merge the SPF records into one TXT record starting v=spf1 and delete the others:"
            " with more than one, receivers return permerror and SPF fails for every"
            " message (RFC 7208 §4.5)."
        )
    if "dns lookup" in low or "lookups" in low:
        return (
            "Bring the record to at most 10 DNS-querying terms (include, a, mx, ptr, exists,"
            " redirect, counted through every include): drop unused includes, replace a/mx with"
            " ip4:/ip6:, or flatten a provider's include into its addresses (RFC 7208 §4.6.4)."
        )
    if "loop" in low:
        return "Remove the include:/redirect= that points back to a record already included."
    if "expected" in low or "syntax" in low or "position" in low:
        return (
            "Correct the term at the marked position: valid mechanisms are all, include:, a,"
            " mx, ptr, ip4:, ip6:, exists: with qualifiers + - ~ ?, plus redirect= and exp=."
        )
    return (
        "Fix the record: exactly one v=spf1 TXT record, valid mechanisms, at most 10"
        " DNS-querying terms (include, a, mx, ptr, exists, redirect) after flattening."
    )


def spf_record_findings(domain: str, result: Mapping[str, Any]) -> list[Finding]:
    """Return findings from checkdmarc's SPF result: presence, syntax, lookups, the ``all`` rule."""
    if not result.get("valid", False):
        error = str(result.get("error", "invalid SPF record"))
        failure = dns_failure(error)
        if failure:
            return [unchecked("spf", f"SPF of {domain}", failure)]
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
                spf_error_fix(error),
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
        _f("spf", Severity.WARNING, f"SPF of {domain}: {w}", warning_fix("spf", str(w)))
        for w in result.get("warnings", ())
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
    if result == "temperror":
        return unchecked(
            "spf", f"whether SPF of {domain} authorises {address}", f"temperror ({why})"
        )
    if result == "permerror":
        return _f(
            "spf",
            Severity.ERROR,
            f"SPF check of {address} for {domain}: permerror ({why})",
            "Receivers cannot evaluate the record and treat it as failing: fix what the error"
            " names (syntax, more than 10 lookups or 2 void lookups, a missing include).",
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
        failure = dns_failure(error)
        if failure:
            return [unchecked("dmarc", f"DMARC of {domain}", failure)]
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
        _f("dmarc", Severity.WARNING, f"DMARC of {domain}: {w}", warning_fix("dmarc", str(w)))
        for w in result.get("warnings", ())
        if not _SAID_ALREADY.search(str(w))
    )
    return findings


#: checkdmarc's warnings that repeat the policy finding above (p=none was counted twice).
_SAID_ALREADY: Final = re.compile(r"\bp tag value of none", re.IGNORECASE)


def dkim_key_finding(domain: str, selector: str, record: str) -> Finding:
    """Return the finding for the DKIM key record of *selector* (parsed with dkimpy)."""
    # The checker extra's libraries are imported when used (extra.py): the CLI loads without them.
    import dkim.crypto  # type: ignore[import-untyped]  # no type hints; see above
    import dkim.util  # type: ignore[import-untyped]  # no type hints; see above

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
    """Look up DKIM keys of the given selectors (or the common ones), all at once, and assess them."""
    tried = tuple(selectors) or COMMON_SELECTORS
    lookups = await asyncio.gather(
        *(resolver.lookup(f"{selector}._domainkey.{domain}", "TXT") for selector in tried)
    )
    findings: list[Finding] = []
    failures: list[tuple[str, str]] = []
    for selector, lookup in zip(tried, lookups, strict=True):
        failure = lookup_failure(lookup)
        if failure:
            failures.append((selector, failure))
        elif lookup.outcome is Outcome.ANSWER:
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
    if selectors:
        findings += [
            unchecked("dkim", f"DKIM key {s}._domainkey.{domain}", why) for s, why in failures
        ]
    elif failures and not findings:
        reasons = sorted({why for _, why in failures})
        findings.append(
            unchecked(
                "dkim",
                f"DKIM keys of {domain} ({len(failures)} of {len(tried)} common selectors)",
                "; ".join(reasons),
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
    failure = lookup_failure(lookup)
    if failure:
        return [unchecked("mx", f"MX of {domain}", failure)], []
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


def spf_blocking(
    domain: str, address: IPAddress | None, helo: str, resolver: dns.resolver.Resolver
) -> list[Finding]:
    """Run checkdmarc's SPF check and pyspf's evaluation for *address* (blocking: use a thread)."""
    import checkdmarc.spf  # type: ignore[import-untyped]  # the extra; no hints
    import spf  # type: ignore[import-untyped]  # the extra; no type hints

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
    return findings


def dmarc_blocking(domain: str, resolver: dns.resolver.Resolver) -> list[Finding]:
    """Run checkdmarc's DMARC check (blocking: use a thread)."""
    import checkdmarc.dmarc  # type: ignore[import-untyped]  # the extra; no hints

    return dmarc_findings(domain, checkdmarc.dmarc.check_dmarc(domain, resolver=resolver))


def spf_dmarc(
    domain: str, address: IPAddress | None, helo: str, resolver: dns.resolver.Resolver
) -> list[Finding]:
    """Run checkdmarc's SPF and DMARC checks and pyspf's evaluation (blocking: use a thread)."""
    return spf_blocking(domain, address, helo, resolver) + dmarc_blocking(domain, resolver)


async def _spf(
    resolver: Resolver,
    sync: dns.resolver.Resolver,
    domain: str,
    address: IPAddress | None,
    helo: str,
) -> list[Finding]:
    failure = lookup_failure(await resolver.lookup(domain, "TXT"))
    if failure:
        return [unchecked("spf", f"SPF of {domain}", failure)]
    return await asyncio.to_thread(spf_blocking, domain, address, helo, sync)


async def _dmarc(resolver: Resolver, sync: dns.resolver.Resolver, domain: str) -> list[Finding]:
    failure = lookup_failure(await resolver.lookup(f"_dmarc.{domain}", "TXT"))
    if failure:
        return [unchecked("dmarc", f"DMARC of {domain}", failure)]
    return await asyncio.to_thread(dmarc_blocking, domain, sync)


async def mail_auth(
    resolver: Resolver,
    sync: dns.resolver.Resolver | None,
    domain: str,
    address: IPAddress | None = None,
    helo: str = "",
    selectors: Sequence[str] = (),
) -> list[Finding]:
    """Return the SPF, DMARC and DKIM findings of *domain*, all checked at once.

    The blocking libraries run in the default thread pool (bounded by asyncio); without a
    blocking resolver (*sync* None) only DKIM is checked.
    """
    parts = [dkim_findings(resolver, domain, selectors)]
    if sync is not None:
        parts = [
            _spf(resolver, sync, domain, address, helo),
            _dmarc(resolver, sync, domain),
            *parts,
        ]
    results = await asyncio.gather(*parts)
    return [finding for part in results for finding in part]

"""A sample message's sending setup: DKIM signature, alignment, one-click unsubscribe, From/Return-Path.

``reputable check --message FILE.eml`` reads one message as sent (headers and body, e.g. saved
from a receiving mailbox with "show original"). The checks are those the large mailbox
providers require of bulk senders since 2024:

- a DKIM signature that verifies (dkimpy, keys looked up only at the configured nameserver);
- DMARC alignment (RFC 7489 §3.1): the From domain shares its organizational domain with the
  DKIM ``d=`` domain of a verifying signature, or with the Return-Path domain;
- one-click unsubscribe (RFC 8058): ``List-Unsubscribe`` with an https URI,
  ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``, both covered by the DKIM signature;
- exactly one From address; a Return-Path (the envelope sender that SPF checks).

dkimpy is part of the ``checker`` extra (extra.py) and imported when a message is checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any, Final

import dns.exception
import dns.resolver

from reputable.checker.model import MAIL_AUTH, Finding, Severity
from reputable.core.ptrname import registrable_name

ONE_CLICK: Final = "List-Unsubscribe=One-Click"
#: Largest sample message read (a bulk message with images stays far below).
MAX_BYTES: Final = 10 * 1024 * 1024


def _f(check: str, severity: Severity, message: str, remediation: str = "") -> Finding:
    return Finding(
        check=check, cause=MAIL_AUTH, severity=severity, message=message, remediation=remediation
    )


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().rstrip(".>").lower() if "@" in address else ""


def aligned(a: str, b: str) -> bool:
    """True when *a* and *b* share their organizational domain (DMARC relaxed alignment)."""
    return bool(a and b) and registrable_name(a) == registrable_name(b)


class DnsUnanswered(Exception):
    """The nameserver gave no usable answer for a DKIM key (timeout, SERVFAIL, REFUSED)."""


def txt_lookup(resolver: dns.resolver.Resolver) -> Callable[..., bytes | None]:
    """Return a dkimpy ``dnsfunc`` that asks only *resolver*; no record is None."""

    def lookup(name: bytes | str, timeout: float = 5) -> bytes | None:
        text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        try:
            answer = resolver.resolve(text, "TXT", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except dns.exception.DNSException as exc:
            raise DnsUnanswered(f"{text}: {exc}") from exc
        return b"".join(b"".join(r.strings) for r in answer)

    return lookup


def _signature_tags(value: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in re.sub(r"\s+", "", value).split(";"):
        key, _, val = part.partition("=")
        if key:
            tags[key.lower()] = val
    return tags


def _dkim(raw: bytes, resolver: dns.resolver.Resolver) -> tuple[list[Finding], str, set[str]]:
    """Verify the first DKIM signature; return findings, its d= when it verified, signed headers."""
    import dkim  # type: ignore[import-untyped]  # the checker extra; ships no type hints

    parsed = message_from_bytes(raw, policy=policy.compat32)
    signatures = parsed.get_all("DKIM-Signature") or []
    if not signatures:
        return (
            [
                _f(
                    "message-dkim",
                    Severity.ERROR,
                    "the message carries no DKIM signature",
                    "Sign outgoing mail with DKIM (OpenDKIM, rspamd, or your sending service's"
                    " domain authentication) and publish the selector's public key.",
                )
            ],
            "",
            set(),
        )
    tags = _signature_tags(str(signatures[0]))
    domain, selector = tags.get("d", "").lower(), tags.get("s", "")
    signed = {h.strip().lower() for h in tags.get("h", "").split(":") if h.strip()}
    where = f"d={domain} s={selector}"
    try:
        good = dkim.DKIM(raw).verify(dnsfunc=txt_lookup(resolver))
    except DnsUnanswered as exc:
        return (
            [
                Finding(
                    check="message-dkim",
                    cause=MAIL_AUTH,
                    severity=Severity.WARNING,
                    message=f"could not check the DKIM signature ({where}): no DNS answer ({exc})",
                    remediation="Check that --nameserver answers TXT lookups, then check again.",
                    inconclusive=True,
                )
            ],
            "",
            signed,
        )
    except dkim.DKIMException as exc:
        good, why = False, str(exc)
    else:
        why = "the body or signed headers changed, or the key does not match"
    if good:
        return (
            [_f("message-dkim", Severity.OK, f"DKIM signature verifies ({where})")],
            domain,
            signed,
        )
    return (
        [
            _f(
                "message-dkim",
                Severity.ERROR,
                f"DKIM signature does not verify ({where}): {why}",
                f"Publish the public key at {selector}._domainkey.{domain} that matches the"
                " signing key, and make sure nothing rewrites the message after signing.",
            )
        ],
        "",
        signed,
    )


def _addresses(parsed: EmailMessage, header: str) -> list[str]:
    values = [str(v) for v in parsed.get_all(header) or []]
    return [address for _, address in getaddresses(values) if address]


def _unsubscribe(parsed: EmailMessage, signed: set[str]) -> Finding:
    header = str(parsed.get("List-Unsubscribe", "") or "")
    post = str(parsed.get("List-Unsubscribe-Post", "") or "")
    https = re.findall(r"<(https://[^>]+)>", header)
    fix = (
        "Add List-Unsubscribe: <https://...> (a URL that unsubscribes on POST) and"
        f" List-Unsubscribe-Post: {ONE_CLICK}, and sign both with DKIM (RFC 8058)."
    )
    if not header:
        return _f("list-unsubscribe", Severity.ERROR, "no List-Unsubscribe header", fix)
    if not https:
        return _f(
            "list-unsubscribe",
            Severity.ERROR,
            "List-Unsubscribe has no https URI (one-click needs one)",
            fix,
        )
    if post.strip() != ONE_CLICK:
        return _f(
            "list-unsubscribe",
            Severity.ERROR,
            f"List-Unsubscribe-Post is {post.strip()!r}, not {ONE_CLICK!r}",
            fix,
        )
    unsigned = {"list-unsubscribe", "list-unsubscribe-post"} - signed
    if unsigned:
        return _f(
            "list-unsubscribe",
            Severity.ERROR,
            f"one-click unsubscribe headers not covered by the DKIM signature:"
            f" {', '.join(sorted(unsigned))}",
            "Add List-Unsubscribe and List-Unsubscribe-Post to the signed headers (h=) of"
            " the DKIM signature (RFC 8058 §4).",
        )
    return _f("list-unsubscribe", Severity.OK, f"one-click unsubscribe: {https[0]} (RFC 8058)")


def assess(raw: bytes, resolver: dns.resolver.Resolver) -> list[Finding]:
    """Return the findings of one sample message (blocking: DKIM keys are looked up; use a thread)."""
    parsed: Any = message_from_bytes(raw, policy=policy.default)
    findings: list[Finding] = []
    senders = _addresses(parsed, "From")
    from_domain = _domain_of(senders[0]) if len(senders) == 1 else ""
    if len(senders) != 1:
        findings.append(
            _f(
                "from",
                Severity.ERROR,
                f"the message has {len(senders)} From addresses; DMARC needs exactly one",
                "Send with exactly one address in From (RFC 7489 §6.6.1).",
            )
        )
    paths = _addresses(parsed, "Return-Path")
    path_domain = _domain_of(paths[0]) if paths else ""
    if path_domain:
        findings.append(
            _f(
                "from",
                Severity.OK,
                f"From domain {from_domain or '?'}, Return-Path domain {path_domain}",
            )
        )
    else:
        findings.append(
            _f(
                "from",
                Severity.INFO,
                "no Return-Path header: save the message as received (the receiving server"
                " adds it) to check SPF alignment",
            )
        )
    dkim_findings, dkim_domain, signed = _dkim(raw, resolver)
    findings += dkim_findings
    findings.append(_alignment(from_domain, dkim_domain, path_domain))
    findings.append(_unsubscribe(parsed, signed))
    return findings


def _alignment(from_domain: str, dkim_domain: str, path_domain: str) -> Finding:
    if not from_domain:
        return _f("alignment", Severity.ERROR, "no single From domain to align with")
    if aligned(from_domain, dkim_domain):
        return _f(
            "alignment",
            Severity.OK,
            f"DKIM d={dkim_domain} is aligned with From domain {from_domain}",
        )
    if aligned(from_domain, path_domain):
        return _f(
            "alignment",
            Severity.OK,
            f"Return-Path domain {path_domain} is aligned with From domain {from_domain}"
            " (SPF must pass for it)",
        )
    return _f(
        "alignment",
        Severity.ERROR,
        f"neither a verified DKIM d= ({dkim_domain or 'none'}) nor the Return-Path domain"
        f" ({path_domain or 'none'}) is aligned with From domain {from_domain}",
        f"Sign with d={from_domain} (or a subdomain of it), or send with a Return-Path in"
        f" {from_domain}; DMARC passes only with one aligned, passing identifier.",
    )


def from_domain(raw: bytes) -> str:
    """Return the domain of the single From address of *raw*, or ""."""
    senders = _addresses(message_from_bytes(raw, policy=policy.default), "From")
    return _domain_of(senders[0]) if len(senders) == 1 else ""
